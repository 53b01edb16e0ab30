/**
 * The consumer half of the BullMQ floor (bench/phases/bullmq-floor.ts): one Worker per platform
 * queue with the worker's concurrency and lock settings, and a processor that does nothing.
 * Usage (spawned by the phase): node --import tsx bench/bullmq-floor-consumer.ts <queue base>
 */
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const base = process.argv[2]!;

const workers = ['ios', 'android'].map(
  (p) =>
    new Worker(`${base}-${p}`, async () => 'ok', {
      connection: new Redis(REDIS_URL, { maxRetriesPerRequest: null }),
      concurrency: 100,
      lockDuration: 60_000,
      stalledInterval: 30_000,
      settings: { backoffStrategy: () => 1000 },
    }),
);
await Promise.all(workers.map((w) => w.waitUntilReady()));
process.send?.('ready');
process.on('SIGTERM', () => void Promise.all(workers.map((w) => w.close())).then(() => process.exit(0)));
