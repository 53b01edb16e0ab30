/**
 * The Lua behind call-state.ts. Each script is one atomic step of a device's push within a call,
 * so the api (call-ended) and any worker (picking the push up, settling it) never both act on
 * one device: a push is either withdrawn before it reaches Apple/Google, or accepted and then
 * told the call ended — never both, never neither.
 *
 * Call hash fields: `e:<username>` = end reason of that callee; `s:<jid> <device_id>` = the
 * device's push state; `m:<jid> <device_id>` = JSON of what a "call ended" message needs.
 * Push states: queued -> sending -> accepted | queued (retry) | failed;
 * call-ended turns queued into withdrawn, sending into end_pending (message after acceptance)
 * or ended (no message exists), accepted into notified or ended.
 */

/** Whether a "call ended" message exists for a device (meta JSON) and reason. */
const HAS_MESSAGE = `
local function has_message(meta_json, reason)
  if not meta_json then return false end
  local meta = cjson.decode(meta_json)
  if meta.platform == 'android' then return true end
  return meta.alert_token ~= nil and meta.alert_token ~= cjson.null and (reason == 'cancelled' or reason == 'timeout')
end
`;

/** KEYS: call. ARGV: username, ttl ms, then (device, meta JSON) pairs. 0 when the call has ended. */
export const BEGIN = `
if redis.call('HEXISTS', KEYS[1], 'e:' .. ARGV[1]) == 1 then return 0 end
for i = 3, #ARGV, 2 do
  redis.call('HSETNX', KEYS[1], 's:' .. ARGV[i], 'queued')
  redis.call('HSET', KEYS[1], 'm:' .. ARGV[i], ARGV[i + 1])
end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
`;

/**
 * KEYS: call. ARGV: username, domain ('' = any), reason, ttl ms.
 * Returns {withdrawn, notified, device, meta, device, meta, ...} with the devices whose message
 * is to be queued now; devices in flight are counted in `notified` and messaged by the worker
 * once their push is accepted. A call that already ended returns {0, 0}.
 */
export const END = `${HAS_MESSAGE}
local efield = 'e:' .. ARGV[1]
if redis.call('HEXISTS', KEYS[1], efield) == 1 then return {0, 0} end
redis.call('HSET', KEYS[1], efield, ARGV[3])
local withdrawn, notified, out = 0, 0, {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local f = all[i]
  if string.sub(f, 1, 2) == 's:' then
    local device = string.sub(f, 3)
    local jid = string.match(device, '^(%S+) ')
    local at = string.find(jid, '@', 1, true)
    if string.sub(jid, 1, at - 1) == ARGV[1] and (ARGV[2] == '' or string.sub(jid, at + 1) == ARGV[2]) then
      local state = all[i + 1]
      local meta = redis.call('HGET', KEYS[1], 'm:' .. device)
      if state == 'queued' then
        redis.call('HSET', KEYS[1], f, 'withdrawn')
        withdrawn = withdrawn + 1
      elseif state == 'sending' then
        if has_message(meta, ARGV[3]) then
          redis.call('HSET', KEYS[1], f, 'end_pending')
          notified = notified + 1
        else
          redis.call('HSET', KEYS[1], f, 'ended')
        end
      elseif state == 'accepted' then
        if has_message(meta, ARGV[3]) then
          redis.call('HSET', KEYS[1], f, 'notified')
          notified = notified + 1
          table.insert(out, device)
          table.insert(out, meta)
        else
          redis.call('HSET', KEYS[1], f, 'ended')
        end
      end
    end
  end
end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
local result = {withdrawn, notified}
for _, v in ipairs(out) do table.insert(result, v) end
return result
`;

/**
 * KEYS: call. ARGV: device, username. Before a worker sends a call push:
 * 'go' (marked sending), 'withdrawn' (the call ended first) or 'done' (already accepted once:
 * a stalled job run again must not ring twice).
 */
export const START = `
local f = 's:' .. ARGV[1]
local state = redis.call('HGET', KEYS[1], f)
if not state then
  if redis.call('HEXISTS', KEYS[1], 'e:' .. ARGV[2]) == 1 then return 'withdrawn' end
  return 'go'
end
if state == 'queued' or state == 'sending' or state == 'failed' then
  redis.call('HSET', KEYS[1], f, 'sending')
  return 'go'
end
if state == 'withdrawn' or state == 'end_pending' then
  redis.call('HSET', KEYS[1], f, 'withdrawn')
  return 'withdrawn'
end
return 'done'
`;

/**
 * KEYS: call, pushed (the user's recent pushes), wake-due. ARGV: device, outcome
 * (accepted | retry | failed), now ms, ttl ms, platform.
 * Returns {'ok'}, {'withdrawn'} (a retry that the call's end cancels) or
 * {'notify', reason, meta} (accepted after call-ended counted it: the worker queues the message).
 */
export const SETTLE = `
local f = 's:' .. ARGV[1]
local state = redis.call('HGET', KEYS[1], f)
local outcome = ARGV[2]
if outcome == 'accepted' then
  local stamp = ARGV[3] .. ' ' .. ARGV[5]
  redis.call('HSET', KEYS[2], ARGV[1], stamp)
  if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
  redis.call('ZADD', KEYS[3], tonumber(ARGV[3]) + tonumber(ARGV[4]), ARGV[1] .. ' ' .. stamp)
  if state == 'end_pending' then
    redis.call('HSET', KEYS[1], f, 'notified')
    local user = string.match(ARGV[1], '^([^@]+)@')
    return {'notify', redis.call('HGET', KEYS[1], 'e:' .. user), redis.call('HGET', KEYS[1], 'm:' .. ARGV[1])}
  end
  if state == 'sending' then redis.call('HSET', KEYS[1], f, 'accepted') end
  return {'ok'}
end
if outcome == 'retry' then
  if state == 'end_pending' or state == 'ended' or state == 'withdrawn' then
    redis.call('HSET', KEYS[1], f, 'withdrawn')
    return {'withdrawn'}
  end
  if state == 'sending' then redis.call('HSET', KEYS[1], f, 'queued') end
  return {'ok'}
end
if state then redis.call('HSET', KEYS[1], f, 'failed') end
return {'ok'}
`;

/** KEYS: pushed, wake-due. ARGV: device, stamp as read. 1 when this caller took the wake. */
export const CREDIT = `
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1] .. ' ' .. ARGV[2])
return 1
`;

/** KEYS: wake-due. ARGV: now ms, limit. Takes the pushes whose wake window closed (each once). */
export const TAKE_DUE = `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
return due
`;
