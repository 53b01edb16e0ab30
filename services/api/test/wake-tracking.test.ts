import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { upsertRegistration } from '@veil/db/registrations';
import { androidToken, iosToken, startHarness, type Harness } from '../../worker/test/support/harness.ts';
import { call, startApi, type RunningApi } from './support/api.ts';
import { hsToken } from './support/tokens.ts';

// A short TTL so "no REGISTER within PUSH_TTL_SECONDS" happens within the test.
const TTL = 3;
let h: Harness;
let api: RunningApi;

beforeAll(async () => {
  h = await startHarness({ ttlSeconds: TTL });
  h.startWorker();
  api = await startApi({ db: h.db, queueBase: h.queueBase, env: { PUSH_TTL_SECONDS: String(TTL) } });
});
afterAll(async () => {
  await api?.close();
  await h?.close();
});

interface Device { jid: string; device_id: string; platform: 'ios' | 'android'; push_token: string; app_id: null }

async function user(...platforms: ('ios' | 'android')[]): Promise<{ username: string; jid: string; devices: Device[] }> {
  const username = `w${randomUUID().slice(0, 8)}`;
  const jid = `${username}@example.com`;
  const devices = platforms.map((platform) => ({ jid, device_id: randomUUID(), platform, push_token: platform === 'ios' ? iosToken() : androidToken(), app_id: null }));
  for (const d of devices) await upsertRegistration(h.db, d);
  return { username, jid, devices };
}

/** call-notify, then wait until the worker has had every device's push accepted. */
async function pushed(username: string, devices: Device[]): Promise<string> {
  const callId = `c-${randomUUID()}`;
  const sent = new Date(Date.now() - 1);
  const res = await call(`${api.url}/api/v1/push/call-notify`, { body: { callee_username: username, caller_username: 'alice', call_id: callId } });
  expect(res.status).toBe(202);
  await vi.waitFor(async () => {
    // last_push_at is written after the pending wake is recorded, so this also waits for that.
    const rows = await h.db.sql`SELECT 1 FROM push_registrations WHERE jid_local = ${username} AND last_push_at >= ${sent}`;
    expect(rows.length).toBe(devices.length);
  });
  return callId;
}

const registered = (body: Record<string, unknown>) => call(`${api.url}/api/v1/push/registered`, { body });
const status = async (jid: string) => (await call(`${api.url}/api/v1/push/register`, { method: 'GET', token: hsToken({ jid }) })).body.registrations as Record<string, unknown>[];
const metric = async (name: string) => {
  const text = await (await fetch(`${api.url}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith(name));
};

describe('POST /api/v1/push/registered', () => {
  it('credits the wake to the device named by +sip.instance, in any case and quoting, once', async () => {
    const bob = await user('ios', 'android');
    const [iphone] = bob.devices as [Device];
    await pushed(bob.username, bob.devices);
    const instance = `"<urn:uuid:${iphone.device_id.toUpperCase()}>"`;
    expect(await registered({ username: bob.username, domain: 'example.com', instance, user_agent: 'VeilPhone/2.1 (iOS 18)' })).toMatchObject({ status: 200, body: { woken: 1 } });
    // The same REGISTER again (a refresh) credits nothing more.
    expect((await registered({ username: bob.username, domain: 'example.com', instance, user_agent: '' })).body).toEqual({ woken: 0 });

    const rows = await status(bob.jid);
    const mine = rows.find((r) => r.device_id === iphone.device_id)!;
    expect(mine.last_wake_at).not.toBeNull();
    expect(mine.last_wake_ms).toEqual(expect.any(Number));
    expect(mine.unanswered_pushes).toBe(0);
    expect(rows.find((r) => r.device_id !== iphone.device_id)!.last_wake_at).toBeNull();
    expect(await metric('veil_push_wake_seconds_count{platform="ios"}')).toEqual([expect.stringMatching(/ 1$/)]);
  });

  it('an instance that names no device is credited only when exactly one device was pushed', async () => {
    const solo = await user('android');
    await pushed(solo.username, solo.devices);
    expect((await registered({ username: solo.username, instance: '', user_agent: 'Linphone' })).body).toEqual({ woken: 1 });

    const duo = await user('android', 'ios');
    await pushed(duo.username, duo.devices);
    const before = await metric('veil_push_wakes_unattributed_total');
    expect((await registered({ username: duo.username, instance: '<urn:uuid:00000000-0000-4000-8000-000000000000>' })).body).toEqual({ woken: 0 });
    const after = await metric('veil_push_wakes_unattributed_total');
    expect(Number(after[0]!.split(' ')[1])).toBe(Number(before[0]?.split(' ')[1] ?? 0) + 1);
  });

  it('a credited device still counts as pushed: after one of two wakes, an unnamed REGISTER is unattributed', async () => {
    const duo = await user('android', 'ios');
    const [pixel, iphone] = duo.devices as [Device, Device];
    await pushed(duo.username, duo.devices);
    expect((await registered({ username: duo.username, instance: `<urn:uuid:${pixel.device_id}>` })).body).toEqual({ woken: 1 });
    expect((await registered({ username: duo.username, instance: '' })).body).toEqual({ woken: 0 });
    expect((await status(duo.jid)).find((r) => r.device_id === iphone.device_id)!.last_wake_at).toBeNull();
  });

  it('a pushed device deregistered before its REGISTER is not credited', async () => {
    const bob = await user('android');
    const [pixel] = bob.devices as [Device];
    await pushed(bob.username, bob.devices);
    await h.db.sql`DELETE FROM push_registrations WHERE device_id = ${pixel.device_id}`;
    expect((await registered({ username: bob.username, instance: `<urn:uuid:${pixel.device_id}>` })).body).toEqual({ woken: 0 });
  });

  it('a REGISTER with no recent push changes nothing', async () => {
    const idle = await user('ios');
    expect((await registered({ username: idle.username, instance: `<urn:uuid:${idle.devices[0]!.device_id}>` })).body).toEqual({ woken: 0 });
    expect((await status(idle.jid))[0]).toMatchObject({ last_wake_at: null, last_wake_ms: null, unanswered_pushes: 0 });
  });

  it('bad input: 400 for a non-string username; a giant User-Agent is cut, not refused', async () => {
    expect((await registered({ username: 42 })).status).toBe(400);
    expect((await registered({ username: 'x y' })).status).toBe(400);
    expect(await registered({ username: 'nobody', instance: 'garbage', user_agent: 'U'.repeat(100_00) })).toMatchObject({ status: 200, body: { woken: 0 } });
  });
});

describe('unanswered pushes', () => {
  it('grow by one per accepted push with no REGISTER within the TTL, and reset at the next wake', async () => {
    const bob = await user('android');
    const [pixel] = bob.devices as [Device];
    await pushed(bob.username, bob.devices);
    await vi.waitFor(async () => expect((await status(bob.jid))[0]!.unanswered_pushes).toBe(1), { timeout: (TTL + 5) * 1000, interval: 200 });
    expect(await metric('veil_push_unanswered_total{platform="android"}')).toEqual([expect.stringMatching(/ [1-9]\d*$/)]);

    await pushed(bob.username, bob.devices);
    expect((await registered({ username: bob.username, instance: `<urn:uuid:${pixel.device_id}>` })).body).toEqual({ woken: 1 });
    expect((await status(bob.jid))[0]!.unanswered_pushes).toBe(0);
  });
});

describe('GET /api/v1/push/register', () => {
  it("lists the caller's own registrations with the wake fields, never a token", async () => {
    const bob = await user('ios', 'android');
    const carol = await user('android');
    const res = await call(`${api.url}/api/v1/push/register`, { method: 'GET', token: hsToken({ jid: bob.jid }) });
    expect(res.status).toBe(200);
    const rows = res.body.registrations as Record<string, unknown>[];
    expect(rows.map((r) => r.device_id).sort()).toEqual(bob.devices.map((d) => d.device_id).sort());
    expect(rows.some((r) => r.jid === carol.jid)).toBe(false);
    for (const r of rows) {
      expect(Object.keys(r).sort()).toEqual(
        ['app_id', 'apns_environment', 'created_at', 'device_id', 'jid', 'last_push_at', 'last_wake_at', 'last_wake_ms', 'platform', 'unanswered_pushes', 'updated_at'].sort(),
      );
      expect(r).toMatchObject({ last_push_at: null, last_wake_at: null, last_wake_ms: null, unanswered_pushes: 0 });
    }
    const text = JSON.stringify(res.body);
    for (const d of bob.devices) expect(text).not.toContain(d.push_token);
  });

  it('needs a JWT', async () => {
    expect((await call(`${api.url}/api/v1/push/register`, { method: 'GET' })).status).toBe(401);
  });
});
