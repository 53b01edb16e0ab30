import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropCallState, testQueueName, TEST_REDIS_URL } from '../../testkit/src/queue.ts';
import { createCallState, type CallState, type EndedDevice } from './call-state.ts';

// The push state machine's corner cases against real Redis: the steps a crash, a retry or a
// failed enqueue can interleave, which the end-to-end tests cannot time reliably.

let redis: Redis;
let calls: CallState;
const base = testQueueName('call-state');
beforeAll(() => {
  redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  calls = createCallState(redis, { base, ttlSeconds: 30 });
});
afterAll(async () => {
  await dropCallState(base);
  redis.disconnect();
});

const android = (jid = 'bob@example.com'): EndedDevice => ({
  jid, device_id: randomUUID(), platform: 'android', push_token: `fcm-${randomUUID()}`, alert_token: null, app_id: null,
  apns_environment: null, caller_name: 'Alice', call_type: 'audio',
});
const callId = () => `c-${randomUUID()}`;

describe('call state', () => {
  it('a message handed out by call-ended is handed out again until confirmed queued', async () => {
    const id = callId();
    const d = android();
    await calls.begin(id, 'bob', [d]);
    expect(await calls.startPush(id, d.jid, d.device_id, 'android', Date.now())).toEqual({ action: 'go' });
    expect((await calls.settlePush(id, d.jid, d.device_id, 'accepted', 'android', Date.now())).action).toBe('ok');
    const first = await calls.end(id, 'bob', null, 'cancelled');
    expect(first).toMatchObject({ withdrawn: 0, notified: 1 });
    expect(first.devices.map((x) => x.device_id)).toEqual([d.device_id]);
    // The enqueue failed (no confirm): a repeat answers 0/0 but hands the device out again.
    const again = await calls.end(id, 'bob', null, 'cancelled');
    expect(again).toMatchObject({ withdrawn: 0, notified: 0 });
    expect(again.devices.map((x) => x.device_id)).toEqual([d.device_id]);
    await calls.confirmNotified(id, again.devices);
    expect((await calls.end(id, 'bob', null, 'cancelled')).devices).toEqual([]);
  });

  it('a push in flight when the call ended gets its message whatever its outcome, also after a crash', async () => {
    for (const outcome of ['accepted', 'retry', 'failed'] as const) {
      const id = callId();
      const d = android();
      await calls.begin(id, 'bob', [d]);
      await calls.startPush(id, d.jid, d.device_id, 'android', Date.now());
      expect(await calls.end(id, 'bob', null, 'timeout')).toMatchObject({ withdrawn: 0, notified: 1, devices: [] });
      const settled = await calls.settlePush(id, d.jid, d.device_id, outcome, 'android', Date.now());
      expect(settled).toMatchObject({ action: 'notify', reason: 'timeout', device: { device_id: d.device_id, push_token: d.push_token } });
    }
    // The worker died mid-push after call-ended counted it: its next run sends the message.
    const id = callId();
    const d = android();
    await calls.begin(id, 'bob', [d]);
    await calls.startPush(id, d.jid, d.device_id, 'android', Date.now());
    await calls.end(id, 'bob', null, 'cancelled');
    expect(await calls.startPush(id, d.jid, d.device_id, 'android', Date.now())).toMatchObject({ action: 'notify', reason: 'cancelled' });
    // ... and, until that message is confirmed queued, a further run does too; then never again.
    expect(await calls.startPush(id, d.jid, d.device_id, 'android', Date.now())).toMatchObject({ action: 'notify' });
    await calls.confirmNotified(id, [d]);
    expect(await calls.startPush(id, d.jid, d.device_id, 'android', Date.now())).toEqual({ action: 'done' });
  });

  it('a call ended for one domain leaves the same username on another domain ringing', async () => {
    const id = callId();
    const a = android('bob@a.example');
    const b = android('bob@b.example');
    await calls.begin(id, 'bob', [a, b]);
    expect(await calls.end(id, 'bob', 'a.example', 'cancelled')).toMatchObject({ withdrawn: 1 });
    expect(await calls.startPush(id, a.jid, a.device_id, 'android', Date.now())).toEqual({ action: 'withdrawn' });
    expect(await calls.startPush(id, b.jid, b.device_id, 'android', Date.now())).toEqual({ action: 'go' });
    expect(await calls.view(id, b.jid)).toEqual({ state: 'ringing' });
    expect(await calls.view(id, a.jid)).toEqual({ state: 'ended', reason: 'cancelled' });
    // A retransmitted call-notify pushes only the callee whose call has not ended.
    expect((await calls.begin(id, 'bob', [a, b])).map((d) => d.jid)).toEqual([b.jid]);
  });

  it('a wake handed back after Postgres failed keeps an expiry (no key lives forever)', async () => {
    const d = android('wakey@example.com');
    const id = callId();
    await calls.begin(id, 'wakey', [d]);
    await calls.startPush(id, d.jid, d.device_id, 'android', Date.now());
    await calls.settlePush(id, d.jid, d.device_id, 'accepted', 'android', Date.now());
    const [wake] = await calls.pendingWakes('wakey', Date.now());
    expect(wake).toMatchObject({ device_id: d.device_id, credited: false });
    expect(await calls.creditWake('wakey', wake!)).toBe(true);
    expect(await calls.creditWake('wakey', wake!)).toBe(false);
    expect((await calls.pendingWakes('wakey', Date.now()))[0]).toMatchObject({ credited: true });
    await calls.returnWake('wakey', wake!);
    expect((await calls.pendingWakes('wakey', Date.now()))[0]).toMatchObject({ credited: false });
    const keys = await redis.keys(`{${base}:calls}:pushed:*`);
    for (const key of keys) expect(await redis.pttl(key)).toBeGreaterThan(0);
  });

  it('a REGISTER that beats the worker to Apple\'s answer still finds the push, and keeps its credit', async () => {
    const d = android('early@example.com');
    const id = callId();
    await calls.begin(id, 'early', [d]);
    expect(await calls.startPush(id, d.jid, d.device_id, 'android', Date.now())).toEqual({ action: 'go' });
    const [wake] = await calls.pendingWakes('early', Date.now());
    expect(wake).toMatchObject({ device_id: d.device_id, credited: false });
    expect(await calls.creditWake('early', wake!)).toBe(true);
    // Apple's 200 is read afterwards: the wake stays credited, nothing becomes due as unanswered.
    await calls.settlePush(id, d.jid, d.device_id, 'accepted', 'android', Date.now());
    expect((await calls.pendingWakes('early', Date.now()))[0]).toMatchObject({ credited: true });
    expect((await calls.takeUnanswered(Date.now() + 60_000, 100)).filter((w) => w.jid === d.jid)).toEqual([]);
  });

  it('a push that was not accepted leaves no pending wake', async () => {
    const d = android('failed@example.com');
    const id = callId();
    await calls.begin(id, 'failed', [d]);
    await calls.startPush(id, d.jid, d.device_id, 'android', Date.now());
    await calls.settlePush(id, d.jid, d.device_id, 'failed', 'android', Date.now());
    expect(await calls.pendingWakes('failed', Date.now())).toEqual([]);
  });
});
