/**
 * The Lua behind call-state.ts. Each script is one atomic step of a device's push within a call,
 * so the api (call-ended) and any worker (picking the push up, settling it) never both act on
 * one device: a push is either withdrawn before it reaches Apple/Google, or followed by its
 * "call ended" message — never both, never neither.
 *
 * Call hash fields: `e:<username>` / `e:<username>@<domain>` = end reason of that callee (any
 * domain / one domain); `s:<jid> <device_id>` = the device's push state; `m:<jid> <device_id>` =
 * JSON of what a "call ended" message needs.
 * Push states: queued -> sending -> accepted | queued (retry) | failed.
 * call-ended turns queued into withdrawn; accepted into notify_due (message to queue) or ended
 * (no message exists for it); sending into end_pending (its outcome decides). A device in
 * notify_due becomes notified once its message is safely queued; until then every repeat of the
 * step that found it hands it out again (the message's dedup id stops a double).
 */

/** Shared helpers: the callee's end reason for a device, and whether a message exists. */
const HELPERS = `
local function user_of(jid)
  local at = string.find(jid, '@', 1, true)
  if not at then return jid end
  return string.sub(jid, 1, at - 1)
end
local function end_reason(key, jid)
  return redis.call('HGET', key, 'e:' .. user_of(jid)) or redis.call('HGET', key, 'e:' .. jid)
end
local function has_message(meta_json, reason)
  if not meta_json or not reason then return false end
  local meta = cjson.decode(meta_json)
  if meta.platform == 'android' then return true end
  return meta.alert_token ~= nil and meta.alert_token ~= cjson.null and (reason == 'cancelled' or reason == 'timeout')
end
`;

/**
 * KEYS: call. ARGV: username, ttl ms, then (device, meta JSON) pairs. Returns the devices to push
 * (those whose callee's call has not ended); none when the call ended.
 */
export const BEGIN = `${HELPERS}
if redis.call('HEXISTS', KEYS[1], 'e:' .. ARGV[1]) == 1 then return {} end
local live = {}
for i = 3, #ARGV, 2 do
  local jid = string.match(ARGV[i], '^(%S+) ')
  if redis.call('HEXISTS', KEYS[1], 'e:' .. (jid or '')) == 0 then
    redis.call('HSETNX', KEYS[1], 's:' .. ARGV[i], 'queued')
    redis.call('HSET', KEYS[1], 'm:' .. ARGV[i], ARGV[i + 1])
    table.insert(live, ARGV[i])
  end
end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return live
`;

/**
 * KEYS: call. ARGV: username, domain ('' = any), reason, ttl ms.
 * Returns {withdrawn, notified, device, meta, ...}: the devices whose message is to be queued now.
 * Devices in flight count as notified: their message follows their push's outcome. A repeat
 * returns {0, 0, ...} with any device whose message was not confirmed queued yet.
 */
export const END = `${HELPERS}
local efield = ARGV[2] == '' and ('e:' .. ARGV[1]) or ('e:' .. ARGV[1] .. '@' .. ARGV[2])
local repeated = redis.call('HEXISTS', KEYS[1], efield) == 1
if not repeated then redis.call('HSET', KEYS[1], efield, ARGV[3]) end
local withdrawn, notified, out = 0, 0, {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local f = all[i]
  if string.sub(f, 1, 2) == 's:' then
    local device = string.sub(f, 3)
    local jid = string.match(device, '^(%S+) ') or ''
    local at = string.find(jid, '@', 1, true)
    if at and string.sub(jid, 1, at - 1) == ARGV[1] and (ARGV[2] == '' or string.sub(jid, at + 1) == ARGV[2]) then
      local state = all[i + 1]
      local meta = redis.call('HGET', KEYS[1], 'm:' .. device)
      if repeated then
        if state == 'notify_due' then
          table.insert(out, device)
          table.insert(out, meta)
        end
      elseif state == 'queued' then
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
          redis.call('HSET', KEYS[1], f, 'notify_due')
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

/** KEYS: call. ARGV: devices. Their "call ended" messages are in the queue: notify_due -> notified. */
export const CONFIRM = `
for i = 1, #ARGV do
  local f = 's:' .. ARGV[i]
  if redis.call('HGET', KEYS[1], f) == 'notify_due' then redis.call('HSET', KEYS[1], f, 'notified') end
end
return 1
`;

/**
 * KEYS: call, pushed (the user's recent pushes). ARGV: device, now ms, ttl ms, platform.
 * Before a worker sends a call push:
 * {'go'} (marked sending), {'withdrawn'} (the call ended first), {'done'} (already accepted once:
 * a stalled job run again must not ring twice), or {'notify', reason, meta} (a run that died
 * after call-ended counted it: its outcome is unknown, so the "call ended" message goes anyway).
 * On 'go' the push is also recorded as a pending wake, stamped now: a phone can wake and REGISTER
 * before this worker has read Apple's or Google's answer, and that REGISTER must find the push.
 */
export const START = `${HELPERS}
local f = 's:' .. ARGV[1]
local jid = string.match(ARGV[1], '^(%S+) ') or ''
local state = redis.call('HGET', KEYS[1], f)
local function go()
  local current = redis.call('HGET', KEYS[2], ARGV[1])
  if not current or not string.find(current, 'credited', 1, true) then
    redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ' ' .. ARGV[4])
    if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
  end
  return {'go'}
end
if not state then
  if end_reason(KEYS[1], jid) then return {'withdrawn'} end
  return go()
end
if state == 'queued' or state == 'sending' or state == 'failed' then
  redis.call('HSET', KEYS[1], f, 'sending')
  return go()
end
if state == 'end_pending' or state == 'notify_due' then
  redis.call('HSET', KEYS[1], f, 'notify_due')
  return {'notify', end_reason(KEYS[1], jid), redis.call('HGET', KEYS[1], 'm:' .. ARGV[1])}
end
if state == 'withdrawn' then return {'withdrawn'} end
return {'done'}
`;

/**
 * KEYS: call, pushed (the user's recent pushes), wake-due. ARGV: device, outcome
 * (accepted | retry | failed), now ms, ttl ms, platform.
 * Returns {'ok'}, {'withdrawn'} (a retry the call's end cancels) or {'notify', reason, meta}
 * (call-ended counted this in-flight push as notified: the worker queues its message, whatever
 * the push's outcome, so the answer call-ended gave stays true).
 */
export const SETTLE = `${HELPERS}
local f = 's:' .. ARGV[1]
local jid = string.match(ARGV[1], '^(%S+) ') or ''
local state = redis.call('HGET', KEYS[1], f)
local outcome = ARGV[2]
local pending = redis.call('HGET', KEYS[2], ARGV[1])
local credited = pending and string.find(pending, 'credited', 1, true)
if outcome == 'accepted' then
  -- Re-stamped with the acceptance time and due for the unanswered count, unless the REGISTER
  -- already came (between sending and now): that wake is credited and stays so.
  if not credited then
    local stamp = ARGV[3] .. ' ' .. ARGV[5]
    redis.call('HSET', KEYS[2], ARGV[1], stamp)
    if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
    redis.call('ZADD', KEYS[3], tonumber(ARGV[3]) + tonumber(ARGV[4]), ARGV[1] .. ' ' .. stamp)
    -- Emptied by the api's sweeper every second; the expiry (refreshed by every push) only bounds
    -- what a deployment that stopped for good leaves behind.
    if redis.call('PTTL', KEYS[3]) < 86400000 then redis.call('PEXPIRE', KEYS[3], 86400000) end
  end
elseif pending and not credited then
  -- Not accepted (this attempt): nothing was delivered, so nothing can wake from it yet.
  redis.call('HDEL', KEYS[2], ARGV[1])
end
if state == 'end_pending' then
  redis.call('HSET', KEYS[1], f, 'notify_due')
  return {'notify', end_reason(KEYS[1], jid), redis.call('HGET', KEYS[1], 'm:' .. ARGV[1])}
end
if outcome == 'accepted' then
  if state == 'sending' then redis.call('HSET', KEYS[1], f, 'accepted') end
  return {'ok'}
end
if outcome == 'retry' then
  if state == 'ended' or state == 'withdrawn' or end_reason(KEYS[1], jid) then
    redis.call('HSET', KEYS[1], f, 'withdrawn')
    return {'withdrawn'}
  end
  if state == 'sending' then redis.call('HSET', KEYS[1], f, 'queued') end
  return {'ok'}
end
if state then redis.call('HSET', KEYS[1], f, 'failed') end
return {'ok'}
`;

/**
 * KEYS: pushed, wake-due. ARGV: device, stamp as read. 1 when this caller took the wake. The
 * entry stays, marked, until it expires: "exactly one device was pushed" still counts it.
 */
export const CREDIT = `
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' credited')
redis.call('ZREM', KEYS[2], ARGV[1] .. ' ' .. ARGV[2])
return 1
`;

/** KEYS: pushed, wake-due. ARGV: device, stamp, due ms, ttl ms. Undoes CREDIT (the wake could not be stored). */
export const UNCREDIT = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1] .. ' ' .. ARGV[2])
return 1
`;

/** KEYS: wake-due. ARGV: now ms, limit. Takes the pushes whose wake window closed (each once). */
export const TAKE_DUE = `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
return due
`;
