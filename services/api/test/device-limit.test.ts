import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startApi, type RunningApi } from './support/api.ts';
import { createTestDb, type TestDb } from '@veil/testkit/db';
import { hsToken } from './support/tokens.ts';

let db: TestDb;
let api: RunningApi;
beforeAll(async () => {
  db = await createTestDb('api_device_limit');
  api = await startApi({ db, env: { MAX_DEVICES_PER_USER: '3' } });
});
afterAll(async () => {
  await api?.close();
  await db?.drop();
});

const iosToken = () => randomBytes(32).toString('hex');
const register = (jid: string, deviceId: string, pushToken = iosToken()) =>
  call(`${api.url}/api/v1/push/register`, {
    token: hsToken({ jid }),
    body: { jid, device_id: deviceId, platform: 'ios', push_token: pushToken },
  });
const devicesOf = async (jid: string) =>
  (await db.sql<{ device_id: string }[]>`SELECT device_id FROM push_registrations WHERE jid = ${jid} ORDER BY updated_at`).map((r) => r.device_id);
const evictions = (jid: string) => api.logs().filter((l) => l.msg === 'Registration evicted' && l.jid === jid);

describe('MAX_DEVICES_PER_USER', () => {
  it('one device more evicts the least recently updated registration and logs it without the token', async () => {
    const jid = `cap-${randomUUID()}@example.com`;
    const [a, b, c, d] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    const tokens = [iosToken(), iosToken(), iosToken(), iosToken()];
    for (const [i, device] of [a, b, c].entries()) expect((await register(jid, device!, tokens[i])).status).toBe(201);
    // a re-registers: now b is the least recently updated.
    expect((await register(jid, a!, tokens[0])).status).toBe(200);
    expect((await register(jid, d!, tokens[3])).status).toBe(201);
    expect(new Set(await devicesOf(jid))).toEqual(new Set([a, c, d]));
    const lines = evictions(jid);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ jid, device_id: b, platform: 'ios' });
    for (const t of tokens) expect(api.rawLogs()).not.toContain(t);
  });

  it('updating a device already registered evicts nothing', async () => {
    const jid = `cap-${randomUUID()}@example.com`;
    const devices = [randomUUID(), randomUUID(), randomUUID()];
    for (const device of devices) expect((await register(jid, device)).status).toBe(201);
    for (const device of devices) expect((await register(jid, device)).status).toBe(200);
    expect(await devicesOf(jid)).toHaveLength(3);
    expect(evictions(jid)).toHaveLength(0);
  });

  it('many new devices of one JID registering at once leave exactly the cap, each eviction logged once', async () => {
    const jid = `cap-${randomUUID()}@example.com`;
    const devices = Array.from({ length: 12 }, () => randomUUID());
    const answers = await Promise.all(devices.map((device) => register(jid, device)));
    expect(answers.map((a) => a.status)).toEqual(devices.map(() => 201));
    const left = await devicesOf(jid);
    expect(left).toHaveLength(3);
    const evicted = evictions(jid).map((l) => l.device_id as string);
    expect(evicted).toHaveLength(9);
    expect(new Set([...evicted, ...left])).toEqual(new Set(devices));
  });

  it('another JID\'s devices are never counted or evicted', async () => {
    const alice = `cap-${randomUUID()}@example.com`;
    const bob = `cap-${randomUUID()}@example.com`;
    const bobs = [randomUUID(), randomUUID(), randomUUID()];
    for (const device of bobs) await register(bob, device);
    for (let i = 0; i < 5; i++) await register(alice, randomUUID());
    expect(new Set(await devicesOf(bob))).toEqual(new Set(bobs));
    expect(await devicesOf(alice)).toHaveLength(3);
  });
});
