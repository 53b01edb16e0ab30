import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upsertRegistration } from '@veil/db/registrations';
import { call, startApi } from './support/api.ts';
import { startOwnRedis } from '@veil/testkit/redis-server';
import { waitUntil } from '@veil/testkit/wait';
import { startTcpProxy } from './support/tcp-proxy.ts';
import { createTestDb, type TestDb } from '@veil/testkit/db';

const notify = (call_id: string) => ({ callee_username: 'bob', caller_username: 'alice', call_id, call_type: 'audio' });

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb('api_blackhole');
  await upsertRegistration(db, { jid: 'bob@example.com', device_id: randomUUID(), platform: 'android', push_token: `tok-${randomUUID()}`, app_id: null });
});
afterAll(async () => {
  await db?.drop();
});

describe('Redis path that silently drops bytes', () => {
  it('the producer connection is rebuilt after repeated timeouts: call-notify recovers to 202 on its own', async () => {
    const redis = await startOwnRedis();
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: redis.port }, 'forward');
    const api = await startApi({ db, redisUrl: `redis://127.0.0.1:${proxy.port}` });
    try {
      await waitUntil(async () => (await call(`${api.url}/api/v1/push/call-notify`, { body: notify('before') })).status === 202);

      // The open connection goes silent; new connections still get through (the path is back).
      expect(proxy.blackholeExisting()).toBe(1);
      const silent = await call(`${api.url}/api/v1/push/call-notify`, { body: notify('silent') });
      expect(silent).toMatchObject({ status: 503, body: { error: { code: 'queue_unavailable' } } });
      expect(silent.ms).toBeLessThan(2000);

      // Without a forced reconnect the socket stays "ready" and every call 503s for minutes.
      const started = Date.now();
      let n = 0;
      await waitUntil(async () => (await call(`${api.url}/api/v1/push/call-notify`, { body: notify(`after-${n++}`) })).status === 202, 10_000, 100);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect((await call(`${api.url}/readyz`, { method: 'GET' })).status).toBe(200);
      expect(api.logs().some((l) => l.msg === 'Redis commands keep timing out; reconnecting' && l.level === 40)).toBe(true);
    } finally {
      await api.close();
      await proxy.close();
      await redis.kill();
    }
  });
});
