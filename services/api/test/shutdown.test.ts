import { once } from 'node:events';
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JWT_SECRET } from './support/api.ts';
import { createTestDb, TEST_DATABASE_URL, type TestDb } from '@veil/testkit/db';
import { dropQueueBase, TEST_REDIS_URL, testQueueName } from '@veil/testkit/queue';
import { spawnService, waitForLog, type ServiceProcess } from '@veil/testkit/spawn';
import { waitUntil } from '@veil/testkit/wait';
import { hsToken } from './support/tokens.ts';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb('api_sigterm');
});
afterAll(async () => {
  await db?.drop();
});

/** services/api/src/main.ts as an operator runs it, on port 0, in this suite's schema and its own queues. */
const queueBase = testQueueName('api-sigterm');
afterAll(() => dropQueueBase(queueBase));

async function startMain(): Promise<{ proc: ServiceProcess; port: number }> {
  const proc = spawnService('api', {
    PORT: '0',
    DATABASE_URL: `${TEST_DATABASE_URL}?search_path=${db.schema}`,
    REDIS_URL: TEST_REDIS_URL,
    PUSH_QUEUE: queueBase,
    JWT_SECRET,
    LOG_LEVEL: 'info',
  });
  return { proc, port: (await waitForLog(proc, 'API listening')).port as number };
}

describe('SIGTERM', () => {
  it('finishes the in-flight request, refuses new ones, and exits 0', async () => {
    const { proc, port } = await startMain();
    const output = proc.output;
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
    // Nothing observable says "the server has parsed these headers"; 200 ms is ample on loopback.
    await sleep(200);

    proc.child.kill('SIGTERM');
    await waitUntil(() => /Shutting down/.test(output()), 2000, 20);

    // The listener is closed: a new connection is refused.
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();

    req.end(body.slice(half));
    const [res] = (await response) as [import('node:http').IncomingMessage];
    let text = '';
    for await (const chunk of res) text += chunk;
    expect(res.statusCode).toBe(201);
    expect(JSON.parse(text)).toMatchObject({ jid: 'alice@example.com', platform: 'android' });

    expect(await proc.exited).toBe(0);
    expect(output()).toContain('"msg":"Stopped"');
    expect(output()).not.toContain('sigterm-token');
    const rows = await db.sql`SELECT 1 FROM push_registrations WHERE push_token = 'sigterm-token'`;
    expect(rows).toHaveLength(1);
  });
});
