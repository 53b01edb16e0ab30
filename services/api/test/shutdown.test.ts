import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JWT_SECRET } from './support/api.ts';
import { createTestDb, TEST_DATABASE_URL, TEST_REDIS_URL, type TestDb } from './support/testkit.ts';
import { hsToken } from './support/tokens.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb('api_sigterm');
});
afterAll(async () => {
  await db?.drop();
});

/** `tsx services/api/src/main.ts` as an operator runs it, on port 0, in this suite's schema. */
async function startMain(): Promise<{ child: ChildProcess; port: number; output: () => string }> {
  const child = spawn(`${ROOT}node_modules/.bin/tsx`, ['services/api/src/main.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      PORT: '0',
      DATABASE_URL: `${TEST_DATABASE_URL}?search_path=${db.schema}`,
      REDIS_URL: TEST_REDIS_URL,
      JWT_SECRET,
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  for (let i = 0; i < 200 && !/"API listening"/.test(out); i++) await sleep(50);
  const port = Number(/"port":(\d+),"msg":"API listening"/.exec(out)?.[1]);
  if (!port) throw new Error(`api did not start:\n${out}`);
  return { child, port, output: () => out };
}

describe('SIGTERM', () => {
  it('finishes the in-flight request, refuses new ones, and exits 0', async () => {
    const { child, port, output } = await startMain();
    const body = JSON.stringify({ jid: 'alice@example.com', device_id: crypto.randomUUID(), platform: 'android', push_token: 'sigterm-token' });
    const half = Math.floor(body.length / 2);

    // A request whose body is still arriving when the signal lands.
    const req = request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/api/v1/push/register',
      agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${hsToken({ jid: 'alice@example.com' })}` },
    });
    const response = once(req, 'response');
    req.write(body.slice(0, half));
    await sleep(200);

    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    for (let i = 0; i < 100 && !/Shutting down/.test(output()); i++) await sleep(20);

    // The listener is closed: a new connection is refused.
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();

    req.end(body.slice(half));
    const [res] = (await response) as [import('node:http').IncomingMessage];
    let text = '';
    for await (const chunk of res) text += chunk;
    expect(res.statusCode).toBe(201);
    expect(JSON.parse(text)).toMatchObject({ jid: 'alice@example.com', platform: 'android' });

    const [code] = await exited;
    expect(code).toBe(0);
    expect(output()).toContain('"msg":"Stopped"');
    expect(output()).not.toContain('sigterm-token');
    const rows = await db.sql`SELECT 1 FROM push_registrations WHERE push_token = 'sigterm-token'`;
    expect(rows).toHaveLength(1);
  });
});
