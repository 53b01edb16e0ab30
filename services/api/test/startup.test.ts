import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Db } from '@veil/db/client';
import { call, JWT_SECRET, startApi } from './support/api.ts';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.ts';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from './support/testkit.ts';
import { hsToken } from './support/tokens.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const notify = { callee_username: 'bob', caller_username: 'alice', call_id: 'startup-call', call_type: 'audio' };

// A database of the test's own, so the api's own migrations run in it from scratch.
const database = `veil_api_startup_${randomBytes(5).toString('hex')}`;
const target = new URL(TEST_DATABASE_URL);
let admin: Db;
let proxy: TcpProxy;
let child: ChildProcess | undefined;

beforeAll(async () => {
  admin = createDb({ url: TEST_DATABASE_URL, max: 1, queryTimeoutMs: 10_000 });
  await admin.sql.unsafe(`CREATE DATABASE "${database}"`);
  // Postgres "down": the proxy closes every connection until the test lets them through.
  proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) }, 'close');
});
afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }
  await proxy?.close();
  await admin?.sql.unsafe(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  await admin?.close();
});

describe('Postgres down when the api starts', () => {
  it('listens at once (healthz 200, database routes 503), then migrates on its own when Postgres appears', async () => {
    const url = new URL(TEST_DATABASE_URL);
    url.hostname = '127.0.0.1';
    url.port = String(proxy.port);
    url.pathname = `/${database}`;
    child = spawn(process.execPath, ['--import', 'tsx', 'services/api/src/main.ts'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, PORT: '0', DATABASE_URL: url.href, REDIS_URL: TEST_REDIS_URL, JWT_SECRET, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    for (let i = 0; i < 200 && !/"API listening"/.test(out); i++) await sleep(50);
    const port = Number(/"port":(\d+),"msg":"API listening"/.exec(out)?.[1]);
    if (!port) throw new Error(`api did not listen:\n${out}`);
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

    // Still down a while later: the process has neither given up nor stopped answering.
    await sleep(2500);
    expect(child.exitCode).toBeNull();
    expect((await call(`${api}/healthz`, { method: 'GET' })).status).toBe(200);
    expect((await call(`${api}/api/v1/push/call-notify`, { body: notify })).status).toBe(503);
    const warnings = out.split('\n').filter((l) => l.includes('"msg":"Postgres not ready for migrations; retrying"'));
    expect(warnings.length).toBeGreaterThan(0);
    expect(JSON.parse(warnings[0]!)).toMatchObject({ level: 40, error: expect.any(String) });

    proxy.setMode('forward');
    let answer = { status: 0, body: null as any };
    for (let until = Date.now() + 15_000; Date.now() < until; await sleep(200)) {
      answer = await call(`${api}/api/v1/push/call-notify`, { body: notify });
      if (answer.status !== 503) break;
    }
    expect(answer).toMatchObject({ status: 200, body: { status: 'no_registrations', devices: 0 } });
    expect(out).toContain('"msg":"Migrations applied"');
    expect((await call(`${api}/readyz`, { method: 'GET' })).status).toBe(200);

    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code] = await exited;
    expect(code).toBe(0);
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
