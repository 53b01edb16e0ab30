import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { createTestDatabase } from '@veil/testkit/db';
import { freePort } from '@veil/testkit/ports';
import { standInEnv } from '@veil/testkit/stand-in-env';
import { startApnsStandIn, writeTestApnsKey, type ApnsRecordedRequest, type ApnsStandIn, type TestApnsKey } from '@veil/testkit/apns-stand-in';
import { startFcmStandIn, type FcmRecordedRequest, type FcmStandIn } from '@veil/testkit/fcm-stand-in';
import { REPO_ROOT, startService, type ServiceProcess } from './proc.ts';

const REDIS_BASE = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** The apps of the drain-over-3-apps phase: each its own APNs key and team, and Firebase project. */
export const BENCH_APPS = ['com.bench.one', 'com.bench.two', 'com.bench.three'];

/** A push as the stand-ins saw it: which call, and when (performance.now()). */
export interface Arrival {
  callId: string;
  platform: 'ios' | 'android';
  at: number;
}

export interface Stack {
  env: Record<string, string>;
  apns: ApnsStandIn;
  fcm: FcmStandIn;
  key: TestApnsKey;
  dir: string;
  databaseUrl: string;
  redisUrl: string;
  /** PUSH_QUEUE of this run: the services and the bench's own producers all use it. */
  queueBase: string;
  apiUrl: string;
  /** Every well-formed push the stand-ins received, in order. */
  arrivals: Arrival[];
  /** Requests the stand-ins rejected as malformed: not in arrivals; the report shows them. */
  rejected: { count: number };
  startApi(): Promise<ServiceProcess>;
  startWorker(name: string, extraEnv?: Record<string, string>): Promise<ServiceProcess>;
  tearDown(): Promise<void>;
}

export async function createStack(): Promise<Stack> {
  const dir = mkdtempSync(join(tmpdir(), 'veil-bench-'));
  const arrivals: Arrival[] = [];
  const rejected = { count: 0 };
  const key = writeTestApnsKey(dir);
  const apns = await startApnsStandIn({ key, onRequest: apnsArrival(arrivals, rejected) });
  const fcm = await startFcmStandIn({
    onRequest: arrival(arrivals, rejected, 'android', (r: FcmRecordedRequest) => r.body?.message?.data?.call_id),
  });
  // The stand-ins keep every request for tests; a benchmark of 100k pushes does not need them.
  const trim = setInterval(() => {
    apns.requests.length = 0;
    fcm.requests.length = 0;
  }, 1000);

  // A database of the run's own: the api migrates it from scratch, as in production.
  const database = await createTestDatabase('bench');
  const redisUrl = REDIS_BASE;
  // Queues of the run's own in the shared Redis, as an operator would separate two deployments.
  const queueBase = `veil-bench-${randomBytes(4).toString('hex')}`;

  // PUSH_APPS_PATH: three apps with their own credentials (the worker loads them at start).
  const apps = BENCH_APPS.map((appId, i) => {
    const appKey = writeTestApnsKey(dir, { keyId: `BENCHKEY0${i + 1}`, teamId: `BENCHTEAM${i + 1}` });
    apns.addKey(appKey);
    return {
      ios: { app_id: appId, key_path: appKey.path, key_id: appKey.keyId, team_id: appKey.teamId },
      android: { app_id: appId, service_account_path: fcm.writeServiceAccount(dir, { projectId: `bench-app-${i + 1}` }) },
    };
  });
  const appsPath = join(dir, 'apps.json');
  writeFileSync(appsPath, JSON.stringify({ ios: apps.map((a) => a.ios), android: apps.map((a) => a.android) }));

  const port = await freePort();
  const env: Record<string, string> = {
    NODE_ENV: 'production',
    DATABASE_URL: database.url,
    REDIS_URL: redisUrl,
    PUSH_QUEUE: queueBase,
    PORT: String(port),
    JWT_SECRET: 'bench-secret-bench-secret-bench-secret',
    ...standInEnv({ key, apns, fcm, serviceAccountPath: fcm.writeServiceAccount(dir) }),
    PUSH_APPS_PATH: appsPath,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
  };
  const services: ServiceProcess[] = [];
  return {
    env,
    apns,
    fcm,
    key,
    dir,
    databaseUrl: database.url,
    redisUrl,
    queueBase,
    apiUrl: `http://127.0.0.1:${port}`,
    arrivals,
    rejected,
    async startApi() {
      const api = await startService('api', 'services/api/dist/bin/main.js', env, `http://127.0.0.1:${port}/readyz`);
      services.push(api);
      return api;
    },
    async startWorker(name, extraEnv = {}) {
      const metricsPort = await freePort();
      const worker = await startService(name, 'services/worker/dist/bin/main.js', { ...env, METRICS_PORT: String(metricsPort), ...extraEnv }, `http://127.0.0.1:${metricsPort}/healthz`);
      services.push(worker);
      return worker;
    },
    async tearDown() {
      clearInterval(trim);
      await Promise.all(services.map((s) => s.stop()));
      await Promise.all([apns.close(), fcm.close()]);
      await clearBenchKeys(redisUrl, queueBase);
      await database.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A stand-in's onRequest: well-formed pushes become arrivals; a request the stand-in turns down
 * is no delivered push (and would hide a broken sender), so it is only counted.
 */
function arrival<R extends { problems: string[] }>(arrivals: Arrival[], rejected: { count: number }, platform: Arrival['platform'], callIdOf: (r: R) => string | undefined) {
  return (r: R) => {
    if (r.problems.length > 0) rejected.count++;
    else arrivals.push({ callId: callIdOf(r) ?? '', platform, at: performance.now() });
  };
}

/** The APNs stand-ins' onRequest (the bench's and the naive baseline's on port 443). */
export const apnsArrival = (arrivals: Arrival[], rejected: { count: number }) =>
  arrival(arrivals, rejected, 'ios', (r: ApnsRecordedRequest) => (r.body as { call_id?: string } | null)?.call_id);

/** Deletes the run's own queue keys (never another suite's). */
async function clearBenchKeys(redisUrl: string, queueBase: string): Promise<void> {
  const redis = new Redis(redisUrl);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `bull:${queueBase}-*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
    // The call and wake state kept under the same base (its hash tag's braces escaped for MATCH).
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `\\{${queueBase}:calls\\}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

export { REPO_ROOT };
