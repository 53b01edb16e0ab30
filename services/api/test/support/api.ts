import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Queue, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { loadConfig, type Config } from '@veil/config/config';
import type { Db } from '@veil/db/client';
import { createLogger } from '@veil/log/logger';
import { PUSH_PLATFORMS, pushQueueName, type PushJob, type PushPlatform } from '@veil/queue/contracts';
import { createRedis, queueOptions } from '@veil/queue/redis';
import { createApp } from '../../src/app.ts';
import type { JwtVerifier } from '../../src/http/auth.ts';
import { waitForRedisReady } from '../../src/redis-ready.ts';
import { obliterateQueue, TEST_REDIS_URL, testQueueName } from './testkit.ts';

export const JWT_SECRET = 'test-secret-0123456789abcdef';

export interface RunningApi {
  url: string;
  config: Config;
  queueNames: Record<PushPlatform, string>;
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
}): Promise<RunningApi> {
  const config = loadConfig({ JWT_SECRET, LOG_LEVEL: 'info', ...opts.env });
  const lines: string[] = [];
  const log = createLogger({ service: 'api', level: config.logLevel, destination: { write: (s: string) => void lines.push(s) } });
  const redisUrl = opts.redisUrl ?? TEST_REDIS_URL;
  const redis: Redis = createRedis(redisUrl, 'producer');
  redis.on('error', () => {});
  const base = testQueueName('api');
  const queueNames = { ios: pushQueueName(base, 'ios'), android: pushQueueName(base, 'android') };
  const queues = {
    ios: new Queue(queueNames.ios, { connection: redis, ...queueOptions(config.redis, queueNames.ios) }),
    android: new Queue(queueNames.android, { connection: redis, ...queueOptions(config.redis, queueNames.android) }),
  };
  for (const q of Object.values(queues)) q.on('error', () => {});
  // As main does: let the producer connection finish its handshake before the first request.
  await waitForRedisReady(redis, 2000);
  const app = createApp({
    config,
    db: opts.db,
    redis,
    queues,
    log,
    ...(opts.verifier ? { verifier: opts.verifier } : {}),
    ...(opts.isMigrated ? { isMigrated: opts.isMigrated } : {}),
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    config,
    queueNames,
    logs: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
    rawLogs: () => lines.join(''),
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
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      // As main does: Queue.close() on a never-ready connection leaks rejections from BullMQ.
      if (redis.status === 'ready') await Promise.allSettled(Object.values(queues).map((q) => q.close()));
      redis.disconnect();
      if (!opts.redisUrl) for (const platform of PUSH_PLATFORMS) await obliterateQueue(queueNames[platform]);
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
  return { status: res.status, body: text ? JSON.parse(text) : null, ms: Date.now() - started };
}
