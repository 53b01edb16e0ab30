/**
 * The consumer half of the BullMQ floor (bench/phases/bullmq-floor.ts): one Worker per platform
 * queue with the worker's concurrency and lock settings, and a processor that does nothing.
 * Usage (spawned by the phase): node --import tsx bench/bullmq-floor-consumer.ts <queue base>
 */
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { PUSH_PLATFORMS, pushQueueName } from '@veil/queue/contracts';
import { lockDurationMs } from '../services/worker/src/push-workers.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const base = process.argv[2]!;

// As services/worker/src/push-workers.ts sets them for the default PUSH_TTL_SECONDS (30) and
// WORKER_CONCURRENCY (100).
const lockDuration = lockDurationMs(30);
const workers = PUSH_PLATFORMS.map(
  (p) =>
    new Worker(pushQueueName(base, p), async () => 'ok', {
      connection: new Redis(REDIS_URL, { maxRetriesPerRequest: null }),
      concurrency: 100,
      lockDuration,
      stalledInterval: Math.round(lockDuration / 2),
      maxStalledCount: 2,
      settings: { backoffStrategy: () => 1000 },
    }),
);
await Promise.all(workers.map((w) => w.waitUntilReady()));
process.send?.('ready');
process.on('SIGTERM', () => void Promise.all(workers.map((w) => w.close())).then(() => process.exit(0)));
