import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Db } from '@veil/db/client';
import { upsertRegistration } from '@veil/db/registrations';
import { call, startApi, type RunningApi } from './support/api.ts';
import { startOwnRedis } from '@veil/testkit/redis-server';
import { waitUntil } from '@veil/testkit/wait';
import { closedPort, startSilentServer } from './support/servers.ts';
import { createTestDb, type TestDb } from '@veil/testkit/db';
import { hsToken } from './support/tokens.ts';

const notify = { callee_username: 'bob', caller_username: 'alice', call_id: 'fault-call', call_type: 'audio' };
const alice = hsToken({ jid: 'alice@example.com' });
const registration = () => ({ jid: 'alice@example.com', device_id: randomUUID(), platform: 'android', push_token: `tok-${randomUUID()}` });

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb('api_faults');
  await upsertRegistration(db, { jid: 'bob@example.com', device_id: randomUUID(), platform: 'ios', push_token: 'b0'.repeat(32), app_id: null });
});
afterAll(async () => {
  await db?.drop();
});

/** The production pool settings (main.ts) pointed at a broken Postgres. */
const brokenDb = (port: number): Db =>
  createDb({ url: `postgres://postgres@127.0.0.1:${port}/postgres`, connectTimeoutSeconds: 1, queryTimeoutMs: 1500 });

async function expectAll503(api: RunningApi): Promise<void> {
  const results = await Promise.all([
    call(`${api.url}/api/v1/push/call-notify`, { body: notify }),
    call(`${api.url}/api/v1/push/register`, { body: registration(), token: alice }),
    call(`${api.url}/readyz`, { method: 'GET' }),
  ]);
  for (const res of results) {
    expect(res.status).toBe(503);
    expect(res.body.error).toEqual({ code: expect.any(String), message: expect.any(String) });
    expect(res.ms).toBeLessThan(2000);
  }
}

describe('Postgres unavailable -> 503 within 2 s', () => {
  it('nothing listening on the port', async () => {
    const pg = brokenDb(await closedPort());
    const api = await startApi({ db: pg });
    try {
      await expectAll503(api);
      // liveness does not depend on Postgres
      expect((await call(`${api.url}/healthz`, { method: 'GET' })).status).toBe(200);
    } finally {
      await api.close();
      await pg.close();
    }
  });

  it('a server that accepts connections and never answers', async () => {
    const silent = await startSilentServer();
    const pg = brokenDb(silent.port);
    const api = await startApi({ db: pg });
    try {
      await expectAll503(api);
      // and again, with the pool's connections stuck: still bounded
      await expectAll503(api);
    } finally {
      await api.close();
      await silent.close();
      await pg.close();
    }
  });
});

describe('Redis unavailable -> 503 within 2 s', () => {
  it('a server that accepts connections and never answers', async () => {
    const silent = await startSilentServer();
    const api = await startApi({ db, redisUrl: `redis://127.0.0.1:${silent.port}` });
    try {
      for (const path of ['/api/v1/push/call-notify', '/readyz']) {
        const res = await call(`${api.url}${path}`, path === '/readyz' ? { method: 'GET' } : { body: notify });
        expect(res.status).toBe(503);
        expect(res.ms).toBeLessThan(2000);
      }
      // Registration needs only Postgres and still works.
      expect((await call(`${api.url}/api/v1/push/register`, { body: registration(), token: alice })).status).toBe(201);
    } finally {
      await api.close();
      await silent.close();
    }
  });

  it('our own redis-server frozen mid-connection (SIGSTOP): 503 within 2 s, 202 again once it resumes', async () => {
    const redis = await startOwnRedis();
    const api = await startApi({ db, redisUrl: redis.url });
    try {
      await waitUntil(async () => (await call(`${api.url}/readyz`, { method: 'GET' })).status === 200);
      redis.signal('SIGSTOP');
      const frozen = await call(`${api.url}/api/v1/push/call-notify`, { body: { ...notify, call_id: 'frozen' } });
      expect(frozen).toMatchObject({ status: 503, body: { error: { code: 'queue_unavailable' } } });
      expect(frozen.ms).toBeLessThan(2000);
      const ready = await call(`${api.url}/readyz`, { method: 'GET' });
      expect(ready.status).toBe(503);
      expect(ready.ms).toBeLessThan(2000);
      redis.signal('SIGCONT');
      await waitUntil(async () => (await call(`${api.url}/api/v1/push/call-notify`, { body: { ...notify, call_id: 'thawed' } })).status === 202);
    } finally {
      redis.signal('SIGCONT');
      await api.close();
      await redis.kill();
    }
  });

  it('our own redis-server killed: 503 (never a partial "queued"), then recovers on its own when it is back', async () => {
    const redis = await startOwnRedis();
    const api = await startApi({ db, redisUrl: redis.url });
    try {
      await waitUntil(async () => (await call(`${api.url}/readyz`, { method: 'GET' })).status === 200);
      expect((await call(`${api.url}/api/v1/push/call-notify`, { body: notify })).status).toBe(202);

      await redis.kill();
      const down = await call(`${api.url}/api/v1/push/call-notify`, { body: { ...notify, call_id: 'while-down' } });
      expect(down).toMatchObject({ status: 503, body: { error: { code: 'queue_unavailable' } } });
      expect(down.ms).toBeLessThan(2000);
      const ready = await call(`${api.url}/readyz`, { method: 'GET' });
      expect(ready.status).toBe(503);
      expect(ready.ms).toBeLessThan(2000);

      await redis.start();
      await waitUntil(async () => (await call(`${api.url}/api/v1/push/call-notify`, { body: { ...notify, call_id: 'after' } })).status === 202);
      expect((await call(`${api.url}/readyz`, { method: 'GET' })).status).toBe(200);
    } finally {
      await api.close();
      await redis.kill();
    }
  });
});

describe('/readyz and /healthz', () => {
  it('/readyz is 200 when Postgres and Redis answer; /healthz is 200', async () => {
    const api = await startApi({ db });
    try {
      await waitUntil(async () => (await call(`${api.url}/readyz`, { method: 'GET' })).status === 200);
      expect((await call(`${api.url}/readyz`, { method: 'GET' })).body).toEqual({ status: 'ready', postgres: 'ok', redis: 'ok' });
      expect((await call(`${api.url}/healthz`, { method: 'GET' })).body).toEqual({ status: 'ok' });
    } finally {
      await api.close();
    }
  });
});
