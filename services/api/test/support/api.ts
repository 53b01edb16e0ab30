import { Queue, type Job } from 'bullmq';
import { afterAll, beforeAll } from 'vitest';
import { loadConfig, type Config } from '@veil/config/config';
import type { Db } from '@veil/db/client';
import { PUSH_PLATFORMS, pushQueueName, type PushJob, type PushPlatform } from '@veil/queue/contracts';
import { createRedis, queueOptions } from '@veil/queue/redis';
import { createTestDb, type TestDb } from '@veil/testkit/db';
import { captureLogs } from '@veil/testkit/logs';
import { assertMatchesOpenApi } from '@veil/testkit/openapi';
import { dropCallState, obliterateQueue, TEST_REDIS_URL, testQueueName } from '@veil/testkit/queue';
import type { JwtVerifier } from '../../src/http/auth.ts';
import { createApiService } from '../../src/service.ts';

export const JWT_SECRET = 'test-secret-0123456789abcdef-0123456789'; // >= 32 bytes, as the config requires

export interface RunningApi {
  url: string;
  config: Config;
  queueNames: Record<PushPlatform, string>;
  /** PUSH_QUEUE of this api: its call state lives under it too. */
  queueBase: string;
  /** Every log line the app wrote so far, parsed. */
  logs(): Record<string, unknown>[];
  /** The raw log text, to assert what never appears in it. */
  rawLogs(): string;
  /** Jobs waiting in one platform queue (no worker runs in these tests). */
  jobs(platform: PushPlatform): Promise<Job<PushJob>[]>;
  close(): Promise<void>;
}

/**
 * The real app on 127.0.0.1 port 0, with the suite's own schema and this test's own queues.
 * `env` is what an operator would set; redisUrl/db let fault tests point at broken servers.
 */
export async function startApi(opts: {
  db: Db;
  env?: Record<string, string>;
  redisUrl?: string;
  verifier?: JwtVerifier;
  isMigrated?: () => boolean;
  /** Share a queue base (PUSH_QUEUE) with a worker under test; its queues are then the worker's to clean up. */
  queueBase?: string;
}): Promise<RunningApi> {
  const redisUrl = opts.redisUrl ?? TEST_REDIS_URL;
  // This test's own queues, named the way an operator names them: PUSH_QUEUE.
  const config = loadConfig({ JWT_SECRET, LOG_LEVEL: 'info', PUSH_QUEUE: opts.queueBase ?? testQueueName('api'), ...opts.env, REDIS_URL: redisUrl });
  const queueNames = { ios: pushQueueName(config.pushQueue, 'ios'), android: pushQueueName(config.pushQueue, 'android') };
  const logs = captureLogs('api', config.logLevel);
  // The same composition root as main; readyWaitMs as main's, shorter: fault tests point it at dead Redis.
  const service = createApiService(config, {
    log: logs.log,
    db: opts.db,
    readyWaitMs: 2000,
    ...(opts.verifier ? { verifier: opts.verifier } : {}),
    ...(opts.isMigrated ? { isMigrated: opts.isMigrated } : {}),
  });
  const port = await service.start(0, '127.0.0.1');

  return {
    url: `http://127.0.0.1:${port}`,
    config,
    queueNames,
    queueBase: config.pushQueue,
    logs: logs.lines,
    rawLogs: logs.raw,
    async jobs(platform) {
      const reader = new Queue<PushJob>(queueNames[platform], { connection: createRedis(TEST_REDIS_URL, 'worker'), ...queueOptions(config.redis, queueNames[platform]) });
      try {
        return await reader.getJobs(['waiting', 'delayed', 'prioritized', 'paused', 'active']);
      } finally {
        await reader.close();
        (await reader.client).disconnect();
      }
    },
    async close() {
      await service.destroy({ graceMs: 0 });
      if (!opts.redisUrl && !opts.queueBase) {
        for (const platform of PUSH_PLATFORMS) await obliterateQueue(queueNames[platform]);
        await dropCallState(config.pushQueue);
      }
    },
  };
}

/** fetch with a JSON body; returns status and parsed body (null when empty). */
export async function call(
  url: string,
  init: { method?: string; body?: unknown; raw?: string; headers?: Record<string, string>; token?: string } = {},
): Promise<{ status: number; body: any; ms: number }> {
  const started = Date.now();
  const headers: Record<string, string> = { 'content-type': 'application/json', ...init.headers };
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
  const res = await fetch(url, {
    method: init.method ?? 'POST',
    headers,
    ...(init.raw !== undefined ? { body: init.raw } : init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  const text = await res.text();
  const body = text ? JSON.parse(text) : null;
  // Every answer any api test gets is checked against docs/openapi.yaml: the document cannot
  // drift from the running api without a test failing.
  assertMatchesOpenApi(init.method ?? 'POST', new URL(url).pathname, res.status, body);
  return { status: res.status, body, ms: Date.now() - started };
}

/**
 * The usual suite: a schema of its own and one api on it for the whole file, both gone at the end.
 * Read `suite.db` / `suite.api` inside tests and hooks (they exist once beforeAll ran).
 */
export function apiSuite(label: string, opts: { env?: Record<string, string> } = {}): { readonly db: TestDb; readonly api: RunningApi } {
  let db: TestDb | undefined;
  let api: RunningApi | undefined;
  beforeAll(async () => {
    db = await createTestDb(label);
    api = await startApi({ db, ...opts });
  });
  afterAll(async () => {
    await api?.close();
    await db?.drop();
  });
  return {
    get db() {
      if (!db) throw new Error('apiSuite: the suite has not started');
      return db;
    },
    get api() {
      if (!api) throw new Error('apiSuite: the suite has not started');
      return api;
    },
  };
}
