import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { upsertRegistration } from '@veil/db/registrations';
import { PUSH_BACKOFF, PUSH_JOB, pushDedupId } from '@veil/queue/contracts';
import { call, startApi, type RunningApi } from './support/api.ts';
import { createTestDb, type TestDb } from '@veil/testkit/db';

const BOB_IPHONE = { jid: 'bob@example.com', device_id: randomUUID(), platform: 'ios' as const, push_token: 'a1'.repeat(32), app_id: 'com.example.veil', apns_environment: 'production' as const };
const BOB_PIXEL = { jid: 'bob@example.com', device_id: randomUUID(), platform: 'android' as const, push_token: 'fcm:bob-pixel', app_id: null };
const BOB_OTHER_DOMAIN = { jid: 'bob@other.org', device_id: randomUUID(), platform: 'android' as const, push_token: 'fcm:bob-other', app_id: null };
const CAROL = { jid: 'carol@example.com', device_id: randomUUID(), platform: 'ios' as const, push_token: 'c3'.repeat(32), app_id: null };

const notify = { callee_username: 'bob', caller_username: 'alice', caller_display_name: 'Alice', call_id: 'test-call-123', call_type: 'audio' };

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb('api_notify');
  for (const r of [BOB_IPHONE, BOB_PIXEL, BOB_OTHER_DOMAIN, CAROL]) await upsertRegistration(db, r);
});
afterAll(async () => {
  await db?.drop();
});

describe('POST /api/v1/push/call-notify', () => {
  let api: RunningApi;
  beforeEach(async () => {
    api = await startApi({ db, env: { PUSH_TTL_SECONDS: '45', PUSH_MAX_ATTEMPTS: '4' } });
  });
  afterEach(async () => api?.close());
  const post = (body: unknown, init: { headers?: Record<string, string> } = {}) =>
    call(`${api.url}/api/v1/push/call-notify`, { body, ...init });

  it('202 queued: one job per device in its platform queue, carrying exactly the worker contract', async () => {
    const before = Date.now();
    const res = await post(notify);
    const after = Date.now();
    expect(res).toMatchObject({ status: 202, body: { status: 'queued', devices: 3 } });

    const ios = await api.jobs('ios');
    const android = await api.jobs('android');
    expect(ios).toHaveLength(1);
    expect(android.map((j) => j.data.jid).sort()).toEqual(['bob@example.com', 'bob@other.org']);

    const job = ios[0]!;
    expect(job.name).toBe(PUSH_JOB);
    expect(Object.keys(job.data).sort()).toEqual(
      ['apns_environment', 'app_id', 'call_id', 'call_type', 'caller_name', 'deadline', 'device_id', 'enqueued_at', 'jid', 'kind', 'platform', 'push_token', 'v'].sort(),
    );
    expect(job.data).toMatchObject({
      v: 2,
      kind: 'call',
      platform: 'ios',
      jid: 'bob@example.com',
      device_id: BOB_IPHONE.device_id,
      push_token: BOB_IPHONE.push_token,
      app_id: 'com.example.veil',
      apns_environment: 'production',
      caller_name: 'Alice',
      call_id: 'test-call-123',
      call_type: 'audio',
    });
    expect(job.data.enqueued_at).toBeGreaterThanOrEqual(before);
    expect(job.data.enqueued_at).toBeLessThanOrEqual(after);
    expect(job.data.deadline).toBe(job.data.enqueued_at + 45_000);
    expect(job.opts.attempts).toBe(4);
    expect(job.opts.backoff).toEqual({ type: PUSH_BACKOFF });
    expect(job.opts.deduplication?.id).toBe(pushDedupId('test-call-123', 'bob@example.com', BOB_IPHONE.device_id));

    const pixel = android.find((j) => j.data.jid === 'bob@example.com')!;
    expect(pixel.data).toMatchObject({ platform: 'android', device_id: BOB_PIXEL.device_id, push_token: BOB_PIXEL.push_token, app_id: null, apns_environment: null });
  });

  it('logs tokens only as hashes', async () => {
    await post(notify);
    const raw = api.rawLogs();
    expect(raw).toContain('Push jobs queued');
    for (const r of [BOB_IPHONE, BOB_PIXEL, BOB_OTHER_DOMAIN]) expect(raw).not.toContain(r.push_token);
  });

  it('SIP_DOMAIN narrows the lookup to username@SIP_DOMAIN', async () => {
    await api.close();
    api = await startApi({ db, env: { SIP_DOMAIN: 'Example.com' } });
    const res = await post(notify);
    expect(res.body).toEqual({ status: 'queued', devices: 2 });
    expect((await api.jobs('android')).map((j) => j.data.jid)).toEqual(['bob@example.com']);
  });

  it('callee_domain narrows the lookup and wins over SIP_DOMAIN', async () => {
    await api.close();
    api = await startApi({ db, env: { SIP_DOMAIN: 'example.com' } });
    const res = await post({ ...notify, callee_domain: 'OTHER.org' });
    expect(res.body).toEqual({ status: 'queued', devices: 1 });
    expect((await api.jobs('android')).map((j) => j.data.device_id)).toEqual([BOB_OTHER_DOMAIN.device_id]);
    expect(await api.jobs('ios')).toEqual([]);
  });

  it('usernames compare case-insensitively', async () => {
    const res = await post({ ...notify, callee_username: 'BoB', callee_domain: 'EXAMPLE.COM' });
    expect(res.body).toEqual({ status: 'queued', devices: 2 });
  });

  it('the same call_id twice is still 202 and pushes each device once', async () => {
    expect((await post(notify)).status).toBe(202);
    expect((await post(notify)).status).toBe(202);
    expect(await api.jobs('ios')).toHaveLength(1);
    expect(await api.jobs('android')).toHaveLength(2);
    // A new call does push again.
    expect((await post({ ...notify, call_id: 'test-call-124' })).status).toBe(202);
    expect(await api.jobs('ios')).toHaveLength(2);
  });

  it('caller_name falls back to caller_username; call_type defaults to audio; video is kept', async () => {
    await post({ callee_username: 'carol', caller_username: 'alice', caller_display_name: '', call_id: 'c1' });
    await post({ callee_username: 'carol', caller_username: 'alice', call_id: 'c2', call_type: 'video' });
    const jobs = (await api.jobs('ios')).map((j) => j.data).sort((a, b) => a.call_id.localeCompare(b.call_id));
    expect(jobs.map((j) => [j.call_id, j.caller_name, j.call_type])).toEqual([
      ['c1', 'alice', 'audio'],
      ['c2', 'alice', 'video'],
    ]);
  });

  it('200 no_registrations and the log line when the callee has none', async () => {
    const res = await post({ ...notify, callee_username: 'dave' });
    expect(res).toMatchObject({ status: 200, body: { status: 'no_registrations', devices: 0 } });
    const line = api.logs().find((l) => l.msg === 'No push registrations found');
    expect(line).toMatchObject({ callee: 'dave', call_id: 'test-call-123' });
    expect(await api.jobs('ios')).toEqual([]);
  });

  const invalid: [string, Record<string, unknown>, string][] = [
    ['callee_username missing', { callee_username: undefined }, 'callee_username'],
    ['callee_username empty', { callee_username: '' }, 'callee_username'],
    ['callee_username too long', { callee_username: 'b'.repeat(256) }, 'callee_username'],
    ['callee_username with whitespace', { callee_username: 'bo b' }, 'callee_username'],
    ['callee_username a number', { callee_username: 7 }, 'callee_username'],
    ['caller_username an object', { caller_username: {} }, 'caller_username'],
    ['caller_display_name a number', { caller_display_name: 1 }, 'caller_display_name'],
    ['call_id missing', { call_id: undefined }, 'call_id'],
    ['call_id empty', { call_id: '' }, 'call_id'],
    ['call_id too long', { call_id: 'x'.repeat(1025) }, 'call_id'],
    ['call_type unknown', { call_type: 'fax' }, 'call_type'],
    ['callee_domain bad charset', { callee_domain: 'exa mple.com' }, 'callee_domain'],
  ];
  it.each(invalid)('%s -> 400, nothing queued', async (_name, overrides, field) => {
    const res = await post({ ...notify, ...overrides });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(new RegExp(`^${field}: `));
    expect(await api.jobs('ios')).toEqual([]);
    expect(await api.jobs('android')).toEqual([]);
  });

  it('text/plain -> 415, malformed JSON -> 400, over 16 KiB -> 413', async () => {
    expect((await call(`${api.url}/api/v1/push/call-notify`, { raw: JSON.stringify(notify), headers: { 'content-type': 'text/plain' } })).status).toBe(415);
    expect((await call(`${api.url}/api/v1/push/call-notify`, { raw: '{"callee_username":' })).status).toBe(400);
    expect((await post({ ...notify, pad: 'x'.repeat(20_000) })).status).toBe(413);
    expect(await api.jobs('ios')).toEqual([]);
  });

  it('an unknown route is a 404 with the error JSON', async () => {
    const res = await call(`${api.url}/api/v1/push/nope`, { body: {} });
    expect(res).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
  });
});

describe('call-notify access control', () => {
  it('a source outside CALL_NOTIFY_ALLOWED_CIDRS gets 403 (call-notify and /metrics), even with X-Forwarded-For', async () => {
    const api = await startApi({ db, env: { CALL_NOTIFY_ALLOWED_CIDRS: '10.0.0.0/8' } });
    try {
      const res = await call(`${api.url}/api/v1/push/call-notify`, { body: notify, headers: { 'x-forwarded-for': '10.1.2.3' } });
      expect(res).toMatchObject({ status: 403, body: { error: { code: 'forbidden_source' } } });
      const metrics = await fetch(`${api.url}/metrics`, { headers: { 'x-forwarded-for': '10.1.2.3' } });
      expect(metrics.status).toBe(403);
      expect(await api.jobs('ios')).toEqual([]);
    } finally {
      await api.close();
    }
  });

  it('/metrics answers Prometheus text to an allowed source', async () => {
    const api = await startApi({ db });
    try {
      await call(`${api.url}/api/v1/push/call-notify`, { body: notify });
      const res = await fetch(`${api.url}/metrics`);
      expect(res.status).toBe(200);
      expect(await res.text()).toMatch(/veil_api_call_notify_total\{outcome="queued"\} 1/);
    } finally {
      await api.close();
    }
  });

  it('with CALL_NOTIFY_SECRET: missing or wrong secret -> 401, right secret -> 202', async () => {
    const api = await startApi({ db, env: { CALL_NOTIFY_SECRET: 'kamailio-secret' } });
    try {
      const url = `${api.url}/api/v1/push/call-notify`;
      expect((await call(url, { body: notify })).status).toBe(401);
      expect((await call(url, { body: notify, token: 'wrong' })).status).toBe(401);
      expect((await call(url, { body: notify, token: 'kamailio-secret-and-more' })).status).toBe(401);
      expect((await call(url, { body: notify, headers: { authorization: 'kamailio-secret' } })).status).toBe(401);
      expect(await api.jobs('ios')).toEqual([]);
      const ok = await call(url, { body: notify, token: 'kamailio-secret' });
      expect(ok).toMatchObject({ status: 202, body: { status: 'queued', devices: 3 } });
      expect(api.rawLogs()).not.toContain('kamailio-secret');
    } finally {
      await api.close();
    }
  });
});
