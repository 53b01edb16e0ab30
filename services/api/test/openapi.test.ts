// Every status the api produces today, validated against docs/openapi.yaml, so the document
// cannot drift from the running api. (Routes added later are checked once the shared call
// helper runs assertMatchesOpenApi on every answer.)
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertMatchesOpenApi } from '@veil/testkit/openapi';
import { freePort } from '@veil/testkit/ports';
import { call, startApi, type RunningApi } from './support/api.ts';
import { createTestDb, type TestDb } from '@veil/testkit/db';
import { hsToken } from './support/tokens.ts';

const SECRET = 'openapi-test-secret';
let db: TestDb;
/** Default configuration. */
let api: RunningApi;
/** CALL_NOTIFY_SECRET set. */
let withSecret: RunningApi;
/** Internal routes closed to loopback. */
let closed: RunningApi;
/** Redis refuses connections. */
let noRedis: RunningApi;

beforeAll(async () => {
  db = await createTestDb('api_openapi');
  [api, withSecret, closed, noRedis] = await Promise.all([
    startApi({ db }),
    startApi({ db, env: { CALL_NOTIFY_SECRET: SECRET } }),
    startApi({ db, env: { CALL_NOTIFY_ALLOWED_CIDRS: '10.0.0.0/8' } }),
    startApi({ db, redisUrl: `redis://127.0.0.1:${await freePort()}` }),
  ]);
});
afterAll(async () => {
  await Promise.all([api, withSecret, closed, noRedis].map((a) => a?.close()));
  await db?.drop();
});

const alice = hsToken({ jid: 'alice@example.com' });
const callee = `bob-${randomUUID().slice(0, 8)}`;
const bobToken = hsToken({ jid: `${callee}@example.com` });

/** One request, its answer checked against the document; returns status and body. */
async function checked(
  target: RunningApi,
  method: string,
  path: string,
  init: { body?: unknown; raw?: string; headers?: Record<string, string>; token?: string } = {},
) {
  const res = await call(`${target.url}${path}`, { method, ...init });
  assertMatchesOpenApi(method, path, res.status, res.body);
  return res;
}

function device(overrides: Record<string, unknown> = {}) {
  return { jid: 'alice@example.com', device_id: randomUUID(), platform: 'ios', push_token: 'ab'.repeat(32), app_id: 'com.example.veil', ...overrides };
}

describe('register and deregister answers match docs/openapi.yaml', () => {
  it('201 created, 200 updated, 204 deleted', async () => {
    const body = device();
    expect((await checked(api, 'POST', '/api/v1/push/register', { body, token: alice })).status).toBe(201);
    expect((await checked(api, 'POST', '/api/v1/push/register', { body: { ...body, platform: 'android', push_token: 'fcm:tok-1', app_id: null }, token: alice })).status).toBe(200);
    expect((await checked(api, 'DELETE', '/api/v1/push/register', { body: { jid: body.jid, device_id: body.device_id }, token: alice })).status).toBe(204);
  });

  it('400 invalid, 401 no token, 403 not yours, 413 too large, 415 not JSON', async () => {
    const path = '/api/v1/push/register';
    expect((await checked(api, 'POST', path, { body: device({ platform: 'web' }), token: alice })).status).toBe(400);
    expect((await checked(api, 'POST', path, { raw: '{"jid":', token: alice })).status).toBe(400);
    expect((await checked(api, 'POST', path, { body: device() })).status).toBe(401);
    expect((await checked(api, 'POST', path, { body: device(), token: 'not.a.jwt' })).status).toBe(401);
    expect((await checked(api, 'POST', path, { body: device({ jid: 'mallory@example.com' }), token: alice })).status).toBe(403);
    expect((await checked(api, 'POST', path, { body: device({ pad: 'x'.repeat(17 * 1024) }), token: alice })).status).toBe(413);
    expect((await checked(api, 'POST', path, { raw: 'jid=alice', headers: { 'content-type': 'text/plain' }, token: alice })).status).toBe(415);
    expect((await checked(api, 'DELETE', path, { body: { jid: 'alice@example.com' }, token: alice })).status).toBe(400);
    expect((await checked(api, 'DELETE', path, { body: { jid: 'alice@example.com', device_id: randomUUID() } })).status).toBe(401);
    expect((await checked(api, 'DELETE', path, { body: { jid: 'mallory@example.com', device_id: randomUUID() }, token: alice })).status).toBe(403);
  });
});

describe('call-notify answers match docs/openapi.yaml', () => {
  const path = '/api/v1/push/call-notify';
  const notify = (over: Record<string, unknown> = {}) => ({ callee_username: callee, caller_username: 'alice', caller_display_name: 'Alice', call_id: `call-${randomUUID()}`, call_type: 'audio', ...over });

  beforeAll(async () => {
    const res = await call(`${api.url}/api/v1/push/register`, { body: device({ jid: `${callee}@example.com` }), token: bobToken });
    expect(res.status).toBe(201);
  });

  it('202 queued and 200 no_registrations', async () => {
    expect((await checked(api, 'POST', path, { body: notify() })).body).toEqual({ status: 'queued', devices: 1 });
    expect((await checked(api, 'POST', path, { body: notify({ callee_username: `nobody-${randomUUID()}` }) })).status).toBe(200);
  });

  it('400 invalid, 413 too large, 415 not JSON', async () => {
    expect((await checked(api, 'POST', path, { body: notify({ call_type: 'fax' }) })).status).toBe(400);
    expect((await checked(api, 'POST', path, { body: notify({ pad: 'x'.repeat(17 * 1024) }) })).status).toBe(413);
    expect((await checked(api, 'POST', path, { raw: 'x', headers: { 'content-type': 'text/plain' } })).status).toBe(415);
  });

  it('401 without the secret, 403 from a source outside the allowed ranges', async () => {
    expect((await checked(withSecret, 'POST', path, { body: notify() })).status).toBe(401);
    expect((await checked(withSecret, 'POST', path, { body: notify({ callee_username: `nobody-${randomUUID()}` }), token: SECRET })).status).toBe(200);
    expect((await checked(closed, 'POST', path, { body: notify() })).status).toBe(403);
  });

  it('503 when Redis is unavailable', async () => {
    expect((await checked(noRedis, 'POST', path, { body: notify() })).status).toBe(503);
  });
});

describe('operational routes match docs/openapi.yaml', () => {
  it('healthz 200, readyz 200 and 503', async () => {
    expect((await checked(api, 'GET', '/healthz')).status).toBe(200);
    expect((await checked(api, 'GET', '/readyz')).status).toBe(200);
    expect((await checked(noRedis, 'GET', '/readyz')).status).toBe(503);
  });

  it('metrics 200 as text, 403 from a source outside the allowed ranges', async () => {
    const res = await fetch(`${api.url}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    assertMatchesOpenApi('GET', '/metrics', res.status, await res.text());
    expect(res.status).toBe(200);
    expect((await checked(closed, 'GET', '/metrics')).status).toBe(403);
  });

  it('404 for a route or method that does not exist, in the error shape', async () => {
    expect((await checked(api, 'GET', '/api/v1/push/nothing')).status).toBe(404);
    expect((await checked(api, 'PUT', '/api/v1/push/register', { body: {}, token: alice })).status).toBe(404);
  });
});
