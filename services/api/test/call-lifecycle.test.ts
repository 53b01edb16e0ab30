import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { upsertRegistration } from '@veil/db/registrations';
import type { PushWorkers } from '../../worker/src/push-workers.ts';
import { androidToken, iosToken, startHarness, type Harness } from '../../worker/test/support/harness.ts';
import { call, startApi, type RunningApi } from './support/api.ts';
import { hsToken } from './support/tokens.ts';

// The whole loop on real parts: this api and a worker share one queue base (so one call state),
// the worker pushes to the local APNs/FCM stand-ins, Postgres is the suite's own schema.

let h: Harness;
let api: RunningApi;
let worker: PushWorkers | null = null;

beforeAll(async () => {
  h = await startHarness({ ttlSeconds: 20, maxAttempts: 4, requestTimeoutMs: 3000 });
  api = await startApi({ db: h.db, queueBase: h.queueBase, env: { PUSH_TTL_SECONDS: '20', PUSH_MAX_ATTEMPTS: '4' } });
});
afterAll(async () => {
  await api?.close();
  await h?.close();
});
beforeEach(() => {
  h.apns.reset();
  h.fcm.reset();
});
afterEach(async () => {
  await worker?.close();
  worker = null;
});

const startWorker = () => (worker = h.startWorker());

interface Device { jid: string; device_id: string; platform: 'ios' | 'android'; push_token: string; app_id: string | null; alert_token?: string | null }

/** A fresh callee (its own username) with the given devices registered. */
async function callee(...kinds: ('ios' | 'ios+alert' | 'android')[]): Promise<{ username: string; jid: string; devices: Device[] }> {
  const username = `u${randomUUID().slice(0, 8)}`;
  const jid = `${username}@example.com`;
  const devices: Device[] = [];
  for (const kind of kinds) {
    const d: Device =
      kind === 'android'
        ? { jid, device_id: randomUUID(), platform: 'android', push_token: androidToken(), app_id: null }
        : { jid, device_id: randomUUID(), platform: 'ios', push_token: iosToken(), app_id: null, alert_token: kind === 'ios+alert' ? iosToken() : null };
    await upsertRegistration(h.db, d);
    devices.push(d);
  }
  return { username, jid, devices };
}

const notify = (username: string, callId: string) =>
  call(`${api.url}/api/v1/push/call-notify`, { body: { callee_username: username, caller_username: 'alice', caller_display_name: 'Alice', call_id: callId, call_type: 'video' } });
const ended = (username: string, callId: string, reason: string) =>
  call(`${api.url}/api/v1/push/call-ended`, { body: { callee_username: username, call_id: callId, reason } });
const callState = (jid: string, callId: string) =>
  call(`${api.url}/api/v1/push/calls/${encodeURIComponent(callId)}`, { method: 'GET', token: hsToken({ jid }) });

const apnsTo = (token: string) => h.apns.requests.filter((r) => r.token === token);
const fcmTo = (token: string) => h.fcm.requests.filter((r) => r.body?.message?.token === token);

describe('call-ended', () => {
  it('before any worker picked the pushes up: all withdrawn, nothing ever sent', async () => {
    const bob = await callee('ios', 'android');
    const callId = `c-${randomUUID()}`;
    expect((await notify(bob.username, callId)).body).toEqual({ status: 'queued', devices: 2 });
    expect(await ended(bob.username, callId, 'cancelled')).toMatchObject({ status: 200, body: { status: 'ended', withdrawn: 2, notified: 0 } });

    startWorker();
    await vi.waitFor(() => expect(h.logsWith('Push withdrawn: the call ended before it was sent').filter((l) => l.call_id === callId)).toHaveLength(2), { timeout: 10_000 });
    expect(apnsTo(bob.devices[0]!.push_token)).toHaveLength(0);
    expect(fcmTo(bob.devices[1]!.push_token)).toHaveLength(0);
  });

  it('after the pushes were accepted: Android gets call_ended, iOS with an alert token a missed-call alert, iOS without nothing', async () => {
    const bob = await callee('android', 'ios+alert', 'ios');
    const [pixel, iphone, ipad] = bob.devices as [Device, Device, Device];
    const callId = `c-${randomUUID()}`;
    startWorker();
    await notify(bob.username, callId);
    await vi.waitFor(() => {
      expect(fcmTo(pixel.push_token)).toHaveLength(1);
      expect(apnsTo(iphone.push_token)).toHaveLength(1);
      expect(apnsTo(ipad.push_token)).toHaveLength(1);
    });
    // "accepted" is recorded just after the provider answers; wait for the worker to finish.
    await vi.waitFor(() => expect(h.logsWith('push delivered').filter((l) => l.call_id === callId)).toHaveLength(3));

    expect(await ended(bob.username, callId, 'cancelled')).toMatchObject({ status: 200, body: { status: 'ended', withdrawn: 0, notified: 2 } });
    await vi.waitFor(() => {
      expect(fcmTo(pixel.push_token)).toHaveLength(2);
      expect(apnsTo(iphone.alert_token!)).toHaveLength(1);
    });
    const message = fcmTo(pixel.push_token)[1]!;
    expect(message.problems).toEqual([]);
    expect(message.body).toEqual({ message: { token: pixel.push_token, data: { type: 'call_ended', call_id: callId, reason: 'cancelled' }, android: { priority: 'high', ttl: '20s' } } });

    const alert = apnsTo(iphone.alert_token!)[0]!;
    expect(alert.problems).toEqual([]);
    expect(alert.headers['apns-push-type']).toBe('alert');
    expect(alert.headers['apns-topic']).toBe('com.example.veil');
    expect(alert.headers['apns-collapse-id']!.length).toBeLessThanOrEqual(64);
    const expiresIn = Number(alert.headers['apns-expiration']) - Date.now() / 1000;
    expect(expiresIn).toBeGreaterThan(86400 - 60);
    expect(expiresIn).toBeLessThanOrEqual(86400);
    expect(alert.body).toEqual({ aps: { alert: { title: 'Missed call', body: 'Alice' } }, type: 'missed_call', call_id: callId, call_type: 'video' });
    // Never anything but the call to the VoIP tokens.
    expect(apnsTo(iphone.push_token)).toHaveLength(1);
    expect(apnsTo(ipad.push_token)).toHaveLength(1);

    // Repeating it changes nothing: no second message to anyone.
    expect((await ended(bob.username, callId, 'cancelled')).body).toEqual({ status: 'ended', withdrawn: 0, notified: 0 });
    const sent = h.fcm.requests.length + h.apns.requests.length;
    await vi.waitFor(() => expect(h.logsWith('Call ended message delivered').length + h.logsWith('Missed-call alert delivered').length).toBeGreaterThanOrEqual(2));
    expect(h.fcm.requests.length + h.apns.requests.length).toBe(sent);
  });

  it('answered: the Android phone still ringing is dismissed; iOS gets no alert for an answered call', async () => {
    const bob = await callee('android', 'ios+alert');
    const [pixel, iphone] = bob.devices as [Device, Device];
    const callId = `c-${randomUUID()}`;
    startWorker();
    await notify(bob.username, callId);
    await vi.waitFor(() => expect(h.logsWith('push delivered').filter((l) => l.call_id === callId)).toHaveLength(2));
    expect((await ended(bob.username, callId, 'answered')).body).toEqual({ status: 'ended', withdrawn: 0, notified: 1 });
    await vi.waitFor(() => expect(fcmTo(pixel.push_token).map((r) => r.body?.message?.data?.type)).toEqual(['call', 'call_ended']));
    expect(fcmTo(pixel.push_token)[1]!.body?.message?.data?.reason).toBe('answered');
    expect(apnsTo(iphone.alert_token!)).toHaveLength(0);
  });

  it('while the push waits for a retry: withdrawn, and no further attempt is made', async () => {
    const bob = await callee('ios');
    const [iphone] = bob.devices as [Device];
    h.apns.answer(iphone.push_token, { status: 503, reason: 'ServiceUnavailable', retryAfter: '2' }, { status: 200 });
    const callId = `c-${randomUUID()}`;
    startWorker();
    await notify(bob.username, callId);
    await vi.waitFor(() => expect(h.logsWith('APNs push failed, retryable').filter((l) => l.call_id === callId)).toHaveLength(1));
    expect((await ended(bob.username, callId, 'cancelled')).body).toEqual({ status: 'ended', withdrawn: 1, notified: 0 });
    await vi.waitFor(() => expect(h.logsWith('Push withdrawn: the call ended before it was sent').filter((l) => l.call_id === callId)).toHaveLength(1), { timeout: 10_000 });
    expect(apnsTo(iphone.push_token)).toHaveLength(1);
  });

  it('while the push is in flight: counted as notified, and the alert follows the acceptance', async () => {
    const bob = await callee('ios+alert');
    const [iphone] = bob.devices as [Device];
    h.apns.answer(iphone.push_token, { status: 200, delayMs: 1500 });
    const callId = `c-${randomUUID()}`;
    startWorker();
    await notify(bob.username, callId);
    await vi.waitFor(() => expect(apnsTo(iphone.push_token)).toHaveLength(1));
    expect((await ended(bob.username, callId, 'timeout')).body).toEqual({ status: 'ended', withdrawn: 0, notified: 1 });
    await vi.waitFor(() => expect(apnsTo(iphone.alert_token!)).toHaveLength(1), { timeout: 10_000 });
    expect(apnsTo(iphone.alert_token!)[0]!.problems).toEqual([]);
    expect(h.logsWith('Call ended during the push: call-ended message queued').some((l) => l.call_id === callId)).toBe(true);
  });

  it('a call-notify for an ended call pushes nothing', async () => {
    const bob = await callee('android');
    const callId = `c-${randomUUID()}`;
    expect((await ended(bob.username, callId, 'cancelled')).body).toEqual({ status: 'ended', withdrawn: 0, notified: 0 });
    expect(await notify(bob.username, callId)).toMatchObject({ status: 200, body: { status: 'ended', devices: 0 } });
    expect(await api.jobs('android')).toHaveLength(0);
  });

  it('a rejected alert token clears only the alert token: the registration and its VoIP token stay', async () => {
    const bob = await callee('ios+alert');
    const [iphone] = bob.devices as [Device];
    h.apns.answer(iphone.alert_token!, { status: 400, reason: 'BadDeviceToken' });
    const callId = `c-${randomUUID()}`;
    startWorker();
    await notify(bob.username, callId);
    await vi.waitFor(() => expect(h.logsWith('push delivered').filter((l) => l.call_id === callId)).toHaveLength(1));
    expect((await ended(bob.username, callId, 'cancelled')).body.notified).toBe(1);
    await vi.waitFor(() => expect(h.logsWith('Alert token cleared').some((l) => l.call_id === callId)).toBe(true));
    const [row] = await h.db.sql<{ push_token: string; alert_token: string | null }[]>`
      SELECT push_token, alert_token FROM push_registrations WHERE jid = ${bob.jid} AND device_id = ${iphone.device_id}`;
    expect(row).toEqual({ push_token: iphone.push_token, alert_token: null });
  });

  it('only the callee named is ended: another user pushed for the same call_id keeps ringing', async () => {
    const bob = await callee('android');
    const carol = await callee('android');
    const callId = `c-${randomUUID()}`;
    await notify(bob.username, callId);
    await notify(carol.username, callId);
    expect((await ended(bob.username, callId, 'cancelled')).body).toEqual({ status: 'ended', withdrawn: 1, notified: 0 });
    expect((await callState(carol.jid, callId)).body).toEqual({ call_id: callId, state: 'ringing' });
  });

  it('bad input changes nothing: unknown reason, non-string call_id, missing callee', async () => {
    const bob = await callee('android');
    const callId = `c-${randomUUID()}`;
    for (const body of [
      { callee_username: bob.username, call_id: callId, reason: 'hung-up' },
      { callee_username: bob.username, call_id: 42, reason: 'cancelled' },
      { callee_username: bob.username, call_id: 'x'.repeat(1025), reason: 'cancelled' },
      { call_id: callId, reason: 'cancelled' },
    ]) {
      const res = await call(`${api.url}/api/v1/push/call-ended`, { body });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
    }
    expect((await notify(bob.username, callId)).body).toEqual({ status: 'queued', devices: 1 });
  });
});

describe('GET /api/v1/push/calls/{call_id}', () => {
  it('ringing for the callee, ended with the reason after call-ended; 404 for anyone else and for unknown calls', async () => {
    const bob = await callee('android');
    const callId = `c-${randomUUID()}/with slash`;
    await notify(bob.username, callId);
    expect(await callState(bob.jid, callId)).toMatchObject({ status: 200, body: { call_id: callId, state: 'ringing' } });
    const other = await callState('mallory@example.com', callId);
    const unknown = await callState(bob.jid, `c-${randomUUID()}`);
    expect(other.status).toBe(404);
    expect(other.body).toEqual(unknown.body);

    await ended(bob.username, callId, 'declined');
    expect((await callState(bob.jid, callId)).body).toEqual({ call_id: callId, state: 'ended', reason: 'declined' });
  });

  it('needs a valid JWT; a call_id over 1024 characters is a 400', async () => {
    const res = await call(`${api.url}/api/v1/push/calls/anything`, { method: 'GET' });
    expect(res.status).toBe(401);
    const long = await callState('bob@example.com', 'x'.repeat(1025));
    expect(long).toMatchObject({ status: 400, body: { error: { code: 'invalid_request' } } });
  });
});

describe('call-ended access rules', () => {
  let locked: RunningApi;
  beforeAll(async () => {
    locked = await startApi({ db: h.db, env: { CALL_NOTIFY_SECRET: 'kamailio-secret', CALL_NOTIFY_ALLOWED_CIDRS: '127.0.0.1/32' } });
  });
  afterAll(() => locked?.close());

  it('without the secret 401; with it 200', async () => {
    const body = { callee_username: 'bob', call_id: 'c1', reason: 'cancelled' };
    expect((await call(`${locked.url}/api/v1/push/call-ended`, { body })).status).toBe(401);
    expect((await call(`${locked.url}/api/v1/push/call-ended`, { body, headers: { authorization: 'Bearer kamailio-secret' } })).status).toBe(200);
  });

  it('from outside CALL_NOTIFY_ALLOWED_CIDRS 403', async () => {
    const outside = await startApi({ db: h.db, env: { CALL_NOTIFY_ALLOWED_CIDRS: '10.0.0.0/8' } });
    try {
      const res = await call(`${outside.url}/api/v1/push/call-ended`, { body: { callee_username: 'bob', call_id: 'c1', reason: 'cancelled' } });
      expect(res.status).toBe(403);
    } finally {
      await outside.close();
    }
  });
});
