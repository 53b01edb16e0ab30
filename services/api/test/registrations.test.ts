import { randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { apiSuite, call } from './support/api.ts';
import { hsToken } from './support/tokens.ts';

const IOS_TOKEN = 'ab'.repeat(32);
const ANDROID_TOKEN = 'fcm-Token_123:APA91b.xyz';

const suite = apiSuite('api_reg');
beforeEach(async () => {
  await suite.db.sql`DELETE FROM push_registrations`;
});

const alice = hsToken({ jid: 'alice@example.com' });
const bob = hsToken({ jid: 'bob@example.com' });
const register = (body: unknown, token = alice) => call(`${suite.api.url}/api/v1/push/register`, { body, token });
const deregister = (body: unknown, token = alice) => call(`${suite.api.url}/api/v1/push/register`, { method: 'DELETE', body, token });
const rows = async () =>
  suite.db.sql<{ jid: string; device_id: string; platform: string; push_token: string; app_id: string | null }[]>`
    SELECT jid, device_id, platform, push_token, app_id FROM push_registrations ORDER BY jid, device_id`;

function iosBody(overrides: Record<string, unknown> = {}) {
  return { jid: 'alice@example.com', device_id: randomUUID(), platform: 'ios', push_token: IOS_TOKEN, app_id: 'com.example.veil', ...overrides };
}

describe('POST /api/v1/push/register', () => {
  it('creates a registration (201) and answers it without the token', async () => {
    const body = iosBody();
    const res = await register(body);
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      jid: 'alice@example.com',
      device_id: body.device_id,
      platform: 'ios',
      app_id: 'com.example.veil',
      apns_environment: null,
      created_at: expect.any(String),
      updated_at: expect.any(String),
    });
    expect(await rows()).toEqual([{ jid: 'alice@example.com', device_id: body.device_id, platform: 'ios', push_token: IOS_TOKEN, app_id: 'com.example.veil' }]);
  });

  it('updates the same (jid, device_id) with 200 and the new token', async () => {
    const body = iosBody();
    expect((await register(body)).status).toBe(201);
    const res = await register({ ...body, push_token: 'cd'.repeat(40), app_id: undefined });
    expect(res.status).toBe(200);
    expect(res.body.app_id).toBeNull();
    expect(await rows()).toEqual([expect.objectContaining({ device_id: body.device_id, push_token: 'cd'.repeat(40), app_id: null })]);
  });

  it('stores the jid, device_id and iOS token lower-case', async () => {
    const id = randomUUID().toUpperCase();
    const res = await register(iosBody({ jid: 'Alice@Example.COM', device_id: id, push_token: IOS_TOKEN.toUpperCase() }));
    expect(res.status).toBe(201);
    expect(await rows()).toEqual([expect.objectContaining({ jid: 'alice@example.com', device_id: id.toLowerCase(), push_token: IOS_TOKEN })]);
  });

  it('registers an android token as given, ignoring unknown fields', async () => {
    const res = await register({ jid: 'alice@example.com', device_id: randomUUID(), platform: 'android', push_token: ANDROID_TOKEN, extra: { x: 1 } });
    expect(res.status).toBe(201);
    expect((await rows())[0]).toMatchObject({ platform: 'android', push_token: ANDROID_TOKEN, app_id: null });
  });

  it('stores apns_environment, answers it, and replaces it (null when absent) at the next registration', async () => {
    const body = iosBody({ apns_environment: 'production' });
    const created = await register(body);
    expect(created).toMatchObject({ status: 201, body: { apns_environment: 'production' } });
    const envOf = async () => (await suite.db.sql<{ apns_environment: string | null }[]>`SELECT apns_environment FROM push_registrations WHERE device_id = ${body.device_id}`)[0]!.apns_environment;
    expect(await envOf()).toBe('production');
    expect(await register({ ...body, apns_environment: 'sandbox' })).toMatchObject({ status: 200, body: { apns_environment: 'sandbox' } });
    expect(await envOf()).toBe('sandbox');
    expect(await register({ ...body, apns_environment: undefined })).toMatchObject({ status: 200, body: { apns_environment: null } });
    expect(await envOf()).toBeNull();
  });

  it('apns_environment other than sandbox/production is a 400 that stores nothing', async () => {
    for (const value of ['development', 'Production', 1, true]) {
      const res = await register(iosBody({ apns_environment: value }));
      expect(res.status).toBe(400);
      expect(res.body.error.message).toMatch(/^apns_environment: /);
    }
    expect(await rows()).toEqual([]);
  });

  it('apns_environment is ignored for android (stored and answered as null)', async () => {
    const res = await register({ jid: 'alice@example.com', device_id: randomUUID(), platform: 'android', push_token: ANDROID_TOKEN, apns_environment: 'production' });
    expect(res).toMatchObject({ status: 201, body: { apns_environment: null } });
    expect((await suite.db.sql`SELECT apns_environment FROM push_registrations`)[0]!.apns_environment).toBeNull();
  });

  it('never logs the whole token or the authorization header', async () => {
    const token = '9f'.repeat(50);
    await register(iosBody({ push_token: token }));
    expect(suite.api.rawLogs()).not.toContain(token);
    expect(suite.api.rawLogs()).not.toContain(alice);
    expect(suite.api.rawLogs()).toContain('Push registration created');
  });
});

describe('validation: a 400 naming the field, and nothing written', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['jid missing', { jid: undefined }, 'jid'],
    ['jid not a string', { jid: 42 }, 'jid'],
    ['jid without @', { jid: 'alice' }, 'jid'],
    ['jid with resource', { jid: 'alice@example.com/phone' }, 'jid'],
    ['jid with whitespace', { jid: 'alice @example.com' }, 'jid'],
    ['jid with two @', { jid: 'a@b@example.com' }, 'jid'],
    ['jid too long', { jid: `${'a'.repeat(300)}@example.com` }, 'jid'],
    ['device_id missing', { device_id: undefined }, 'device_id'],
    ['device_id not a UUID', { device_id: 'not-a-uuid' }, 'device_id'],
    ['device_id a number', { device_id: 12345 }, 'device_id'],
    ['platform unknown', { platform: 'windows' }, 'platform'],
    ['platform missing', { platform: undefined }, 'platform'],
    ['push_token missing', { push_token: undefined }, 'push_token'],
    ['push_token not a string', { push_token: ['ab'] }, 'push_token'],
    ['iOS token odd length', { push_token: `${IOS_TOKEN}a` }, 'push_token'],
    ['iOS token non-hex', { push_token: 'zz'.repeat(32) }, 'push_token'],
    ['iOS token too short', { push_token: 'ab'.repeat(31) }, 'push_token'],
    ['iOS token too long', { push_token: 'ab'.repeat(101) }, 'push_token'],
    ['android token bad charset', { platform: 'android', push_token: 'abc def' }, 'push_token'],
    ['android token empty', { platform: 'android', push_token: '' }, 'push_token'],
    ['android token too long', { platform: 'android', push_token: 'a'.repeat(4097) }, 'push_token'],
    ['app_id bad charset', { app_id: 'com.example/veil' }, 'app_id'],
    ['app_id too long', { app_id: 'a'.repeat(256) }, 'app_id'],
    ['app_id not a string', { app_id: 7 }, 'app_id'],
  ];
  it.each(cases)('%s', async (_name, overrides, field) => {
    const res = await register(iosBody(overrides));
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_request');
    expect(res.body.error.message).toMatch(new RegExp(`^${field}: `));
    expect(await rows()).toEqual([]);
  });

  it('a JSON array or string body is a 400', async () => {
    expect((await call(`${suite.api.url}/api/v1/push/register`, { raw: '[]', token: alice })).status).toBe(400);
    expect((await call(`${suite.api.url}/api/v1/push/register`, { raw: '"x"', token: alice })).status).toBe(400);
    expect(await rows()).toEqual([]);
  });

  it('malformed JSON is a 400 with the error JSON', async () => {
    const res = await call(`${suite.api.url}/api/v1/push/register`, { raw: '{"jid": ', token: alice });
    expect(res).toMatchObject({ status: 400, body: { error: { code: 'malformed_json', message: expect.any(String) } } });
    expect(await rows()).toEqual([]);
  });

  it('text/plain is a 415', async () => {
    const res = await call(`${suite.api.url}/api/v1/push/register`, { raw: JSON.stringify(iosBody()), token: alice, headers: { 'content-type': 'text/plain' } });
    expect(res).toMatchObject({ status: 415, body: { error: { code: 'unsupported_media_type' } } });
    expect(await rows()).toEqual([]);
  });

  it('a body over 16 KiB is a 413', async () => {
    const res = await register(iosBody({ padding: 'x'.repeat(17 * 1024) }));
    expect(res).toMatchObject({ status: 413, body: { error: { code: 'payload_too_large' } } });
    expect(await rows()).toEqual([]);
  });

  it('a body just under 16 KiB is accepted', async () => {
    const body = iosBody();
    const size = JSON.stringify({ ...body, padding: '' }).length;
    const res = await register({ ...body, padding: 'x'.repeat(16 * 1024 - size) });
    expect(res.status).toBe(201);
  });
});

describe('ownership', () => {
  it('alice cannot register a device under bob (403), bob keeps his row', async () => {
    const device = randomUUID();
    expect((await register(iosBody({ jid: 'bob@example.com', device_id: device }), bob)).status).toBe(201);
    const res = await register(iosBody({ jid: 'bob@example.com', device_id: device, push_token: 'ef'.repeat(32) }), alice);
    expect(res).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } } });
    expect(await rows()).toEqual([expect.objectContaining({ jid: 'bob@example.com', push_token: IOS_TOKEN })]);
  });

  it('alice cannot delete bob registration (403)', async () => {
    const device = randomUUID();
    await register(iosBody({ jid: 'bob@example.com', device_id: device }), bob);
    const res = await deregister({ jid: 'bob@example.com', device_id: device }, alice);
    expect(res.status).toBe(403);
    expect(await rows()).toHaveLength(1);
  });

  it('the jid comparison ignores case (token Alice@Example.com owns alice@example.com)', async () => {
    const res = await register(iosBody(), hsToken({ jid: 'Alice@Example.com' }));
    expect(res.status).toBe(201);
  });
});

describe('token moves', () => {
  it('a token registered on another device of the same user moves there', async () => {
    const [d1, d2] = [randomUUID(), randomUUID()];
    await register(iosBody({ device_id: d1 }));
    expect((await register(iosBody({ device_id: d2 }))).status).toBe(201);
    expect((await rows()).map((r) => r.device_id)).toEqual([d2]);
  });

  it('a phone that changed hands stops ringing for its old owner', async () => {
    await register(iosBody({ jid: 'bob@example.com' }), bob);
    expect((await register(iosBody())).status).toBe(201);
    expect((await rows()).map((r) => r.jid)).toEqual(['alice@example.com']);
  });

  it('the same token string on another platform is a different token', async () => {
    const token = 'ab'.repeat(40);
    await register(iosBody({ push_token: token }));
    await register({ jid: 'alice@example.com', device_id: randomUUID(), platform: 'android', push_token: token });
    expect(await rows()).toHaveLength(2);
  });
});

describe('concurrency', () => {
  it('50 concurrent upserts of one (jid, device_id) leave one row', async () => {
    const device = randomUUID();
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => register(iosBody({ device_id: device, push_token: i.toString(16).padStart(2, '0').repeat(32) }))),
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    expect(results.filter((r) => r.status === 200)).toHaveLength(49);
    expect(await rows()).toHaveLength(1);
  });

  it('50 devices racing for one token leave it on exactly one device', async () => {
    const results = await Promise.all(Array.from({ length: 50 }, () => register(iosBody())));
    expect(results.map((r) => r.status).filter((s) => s !== 201)).toEqual([]);
    expect(await rows()).toHaveLength(1);
  });
});

describe('DELETE /api/v1/push/register', () => {
  it('removes the registration (204)', async () => {
    const body = iosBody();
    await register(body);
    const res = await deregister({ jid: 'ALICE@example.com', device_id: body.device_id });
    expect(res).toEqual({ status: 204, body: null, ms: expect.any(Number) });
    expect(await rows()).toEqual([]);
  });

  it('answers 204 when nothing was registered', async () => {
    expect((await deregister({ jid: 'alice@example.com', device_id: randomUUID() })).status).toBe(204);
  });

  it('a bad device_id is a 400', async () => {
    const res = await deregister({ jid: 'alice@example.com', device_id: 'x' });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/^device_id: /);
  });
});
