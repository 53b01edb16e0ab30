import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '@veil/db/client';
import { call, JWT_SECRET, startApi } from './support/api.ts';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.ts';
import { createTestDatabase, TEST_DATABASE_URL } from '@veil/testkit/db';
import { dropQueueBase, TEST_REDIS_URL, testQueueName } from '@veil/testkit/queue';

const startupQueue = testQueueName('api-startup');
import { spawnService, waitForLog, type ServiceProcess } from '@veil/testkit/spawn';
import { waitUntil } from '@veil/testkit/wait';
import { hsToken } from './support/tokens.ts';

const notify = { callee_username: 'bob', caller_username: 'alice', call_id: 'startup-call', call_type: 'audio' };

const target = new URL(TEST_DATABASE_URL);
// A database of the test's own, so the api's own migrations run in it from scratch.
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let proxy: TcpProxy;
let child: ServiceProcess | undefined;

beforeAll(async () => {
  database = await createTestDatabase('api_startup');
  // Postgres "down": the proxy closes every connection until the test lets them through.
  proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) }, 'close');
});
afterAll(async () => {
  await child?.stop('SIGKILL');
  await proxy?.close();
  await database?.drop();
  await dropQueueBase(startupQueue);
});

describe('Postgres down when the api starts', () => {
  it('listens at once (healthz 200, database routes 503), then migrates on its own when Postgres appears', async () => {
    const url = new URL(TEST_DATABASE_URL);
    url.hostname = '127.0.0.1';
    url.port = String(proxy.port);
    url.pathname = `/${database.name}`;
    child = spawnService('api', { PORT: '0', DATABASE_URL: url.href, REDIS_URL: TEST_REDIS_URL, PUSH_QUEUE: startupQueue, JWT_SECRET, LOG_LEVEL: 'info' });
    const port = (await waitForLog(child, 'API listening')).port as number;
    const out = () => child!.output();
    const api = `http://127.0.0.1:${port}`;

    expect((await call(`${api}/healthz`, { method: 'GET' })).status).toBe(200);
    const down = [
      await call(`${api}/api/v1/push/call-notify`, { body: notify }),
      await call(`${api}/api/v1/push/register`, {
        body: { jid: 'alice@example.com', device_id: crypto.randomUUID(), platform: 'android', push_token: 'startup-token' },
        token: hsToken({ jid: 'alice@example.com' }),
      }),
      await call(`${api}/api/v1/push/register`, { method: 'DELETE', body: { jid: 'alice@example.com', device_id: crypto.randomUUID() }, token: hsToken({ jid: 'alice@example.com' }) }),
    ];
    for (const res of down) {
      expect(res).toMatchObject({ status: 503, body: { error: { code: 'database_unavailable' } } });
      expect(res.ms).toBeLessThan(2000);
    }
    expect((await call(`${api}/readyz`, { method: 'GET' })).status).toBe(503);

    // Still down a while later (several retries): the process has neither given up nor stopped answering.
    await sleep(2500);
    expect(child.child.exitCode).toBeNull();
    expect((await call(`${api}/healthz`, { method: 'GET' })).status).toBe(200);
    expect((await call(`${api}/api/v1/push/call-notify`, { body: notify })).status).toBe(503);
    const warnings = out().split('\n').filter((l) => l.includes('"msg":"Postgres not ready for migrations; retrying"'));
    expect(warnings.length).toBeGreaterThan(0);
    expect(JSON.parse(warnings[0]!)).toMatchObject({ level: 40, error: expect.any(String) });

    proxy.setMode('forward');
    let answer = { status: 0, body: null as any };
    await waitUntil(async () => (answer = await call(`${api}/api/v1/push/call-notify`, { body: notify })).status !== 503, 15_000, 200);
    expect(answer).toMatchObject({ status: 200, body: { status: 'no_registrations', devices: 0 } });
    await expect.poll(() => out(), { timeout: 5000 }).toContain('"msg":"Migrations applied"'); // log lines are written in batches
    expect((await call(`${api}/readyz`, { method: 'GET' })).status).toBe(200);

    expect(await child.stop('SIGTERM')).toBe(0);
  });
});

describe('Postgres reachable but not migrated yet', () => {
  it('the database routes answer 503 database_unavailable (never a 500 from a missing table), readyz 503', async () => {
    // A schema nobody created: every table lookup would fail with "relation does not exist".
    const bare = createDb({ url: TEST_DATABASE_URL, schema: `never_migrated_${randomBytes(5).toString('hex')}`, max: 2 });
    const api = await startApi({ db: bare, isMigrated: () => false });
    try {
      const alice = hsToken({ jid: 'alice@example.com' });
      const results = [
        await call(`${api.url}/api/v1/push/call-notify`, { body: notify }),
        await call(`${api.url}/api/v1/push/register`, { body: { jid: 'alice@example.com', device_id: crypto.randomUUID(), platform: 'android', push_token: 'x' }, token: alice }),
        await call(`${api.url}/api/v1/push/register`, { method: 'DELETE', body: { jid: 'alice@example.com', device_id: crypto.randomUUID() }, token: alice }),
      ];
      for (const res of results) expect(res).toMatchObject({ status: 503, body: { error: { code: 'database_unavailable' } } });
      expect(await call(`${api.url}/readyz`, { method: 'GET' })).toMatchObject({ status: 503, body: { error: { code: 'not_ready', message: expect.stringContaining('not migrated') } } });
      expect((await call(`${api.url}/healthz`, { method: 'GET' })).status).toBe(200);
      expect(api.rawLogs()).not.toContain('internal_error');
    } finally {
      await api.close();
      await bare.close();
    }
  });
});

describe('a bad JWT public key file', () => {
  it('stops the api before it listens: exit 78 (EX_CONFIG) with the problem named', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'veil-api-badkey-'));
    try {
      const path = join(dir, 'jwt.pub.pem');
      writeFileSync(path, '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n');
      const proc = spawnService('api', { PORT: '0', JWT_PUBLIC_KEY_PATH: path, PUSH_QUEUE: testQueueName('api-badkey'), LOG_LEVEL: 'info' });
      expect(await proc.exited).toBe(78);
      expect(proc.output()).toMatch(/^api: invalid configuration: .*not a PEM public key/m);
      expect(proc.output()).not.toContain('API listening');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
