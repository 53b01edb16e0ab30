// What the HA suites share: the APNs/FCM stand-ins, a database of the suite's own with one
// callee, the real api and worker processes (the e2e suite's spawner), and the pushes that
// reached the stand-ins. Redis is whatever topology the test starts (packages/testkit).
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDb } from '../../../../packages/db/src/client.ts';
import { runMigrations } from '../../../../packages/db/src/migrate.ts';
import { upsertRegistration } from '../../../../packages/db/src/registrations.ts';
import { startApnsStandIn, writeTestApnsKey, type ApnsStandIn } from '../../../../packages/testkit/src/apns-stand-in.ts';
import { startFcmStandIn, type FcmStandIn } from '../../../../packages/testkit/src/fcm-stand-in.ts';
import { standInEnv } from '../../../../packages/testkit/src/stand-in-env.ts';
import { createTestDatabase } from '../../../../packages/testkit/src/db.ts';
import { testQueueName } from '../../../../packages/testkit/src/queue.ts';
import { startService, type ServiceProcess } from '../../../e2e/test/support/services.ts';

export interface HaStack {
  /** Environment both services get; the test adds its Redis variables. */
  env: Record<string, string>;
  apns: ApnsStandIn;
  fcm: FcmStandIn;
  /** The callee's push tokens (one device each); call-notify for `bob` pushes every one. */
  tokens: { ios: string[]; android: string[] };
  /** `${call_id} ${token}` of every push a stand-in accepted, in arrival order. */
  deliveries(): string[];
  startApi(redisEnv: Record<string, string>): Promise<{ url: string; proc: ServiceProcess }>;
  startWorker(redisEnv: Record<string, string>): Promise<ServiceProcess>;
  /** Stops every service started through it, the stand-ins and the database. */
  close(): Promise<void>;
}

export async function startHaStack(devices: { ios: number; android: number } = { ios: 1, android: 1 }): Promise<HaStack> {
  const dir = mkdtempSync(join(tmpdir(), 'veil-ha-'));
  const database = await createTestDatabase('ha');
  const key = writeTestApnsKey(dir);
  const apns = await startApnsStandIn({ key });
  const fcm = await startFcmStandIn();
  const services: ServiceProcess[] = [];
  const tokens = {
    ios: Array.from({ length: devices.ios }, () => randomBytes(32).toString('hex')),
    android: Array.from({ length: devices.android }, () => `fcm-${randomBytes(16).toString('base64url')}`),
  };
  const db = createDb({ url: database.url, max: 2, queryTimeoutMs: 10_000 });
  try {
    await runMigrations(db);
    for (const platform of ['ios', 'android'] as const) {
      for (const push_token of tokens[platform]) {
        await upsertRegistration(db, { jid: 'bob@example.com', device_id: randomUUID(), platform, push_token, app_id: null });
      }
    }
  } finally {
    await db.close();
  }
  const env = {
    PORT: '0',
    METRICS_PORT: '0',
    DATABASE_URL: database.url,
    // Queues of the suite's own (the Redis servers are private too, but names say whose keys they are).
    PUSH_QUEUE: testQueueName('ha'),
    JWT_SECRET: 'ha-suite-jwt-secret-0123456789abcdef',
    ...standInEnv({ key, apns, fcm, serviceAccountPath: fcm.writeServiceAccount(dir) }),
    LOG_LEVEL: 'info',
  };
  return {
    env,
    apns,
    fcm,
    tokens,
    deliveries() {
      const ios = apns.requests
        .filter((r) => 'status' in r.answered && r.answered.status === 200)
        .map((r) => `${(r.body as { call_id?: string }).call_id} ${r.token}`);
      const android = fcm.requests
        .filter((r) => 'status' in r.answered && r.answered.status === 200)
        .map((r) => `${r.body?.message?.data?.call_id} ${r.body?.message?.token}`);
      return [...ios, ...android];
    },
    async startApi(redisEnv) {
      const proc = await startService('api', { ...env, ...redisEnv }, 'API listening');
      services.push(proc);
      const port = proc.lines().find((l) => l.msg === 'API listening')!.port as number;
      const url = `http://127.0.0.1:${port}`;
      // As a load balancer would: traffic once /readyz says Postgres (migrated) and Redis answer.
      await eventually(`${url}/readyz`, async () => (await fetch(`${url}/readyz`).catch(() => null))?.status === 200, 20_000);
      return { url, proc };
    },
    async startWorker(redisEnv) {
      const proc = await startService('worker', { ...env, ...redisEnv }, 'Worker started');
      services.push(proc);
      return proc;
    },
    async close() {
      await Promise.allSettled(services.map((s) => s.stop()));
      await Promise.allSettled([apns.close(), fcm.close()]);
      await database.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls an async condition (the e2e helper's `eventually` is synchronous). */
async function eventually(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface NotifyResult {
  callId: string;
  sentAt: number;
  status: number;
  ms: number;
  /** The error code of a non-2xx answer (queue_unavailable, ...). */
  code?: string;
}

/** One call-notify for `bob`; a hang shows up as status 0 after `limitMs` instead of stalling the test. */
export async function callNotify(apiUrl: string, callId: string, limitMs = 5000): Promise<NotifyResult> {
  const sentAt = Date.now();
  try {
    const res = await fetch(`${apiUrl}/api/v1/push/call-notify`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ callee_username: 'bob', caller_username: 'alice', caller_display_name: 'Alice', call_id: callId, call_type: 'audio' }),
      signal: AbortSignal.timeout(limitMs),
    });
    const body = (await res.json().catch(() => null)) as { error?: { code?: string } } | null;
    return { callId, sentAt, status: res.status, ms: Date.now() - sentAt, ...(body?.error?.code ? { code: body.error.code } : {}) };
  } catch {
    return { callId, sentAt, status: 0, ms: Date.now() - sentAt };
  }
}
