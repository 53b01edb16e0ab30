import { Worker } from 'bullmq';
import type { Config } from '@veil/config/config';
import type { Db } from '@veil/db/client';
import type { Logger } from '@veil/log/logger';
import { PUSH_PLATFORMS, pushQueueName, type PushPlatform } from '@veil/queue/contracts';
import { createRedis, queueOptions } from '@veil/queue/redis';
import { createBackoffStrategy } from './backoff.ts';
import type { WorkerMetrics } from './metrics.ts';
import { createPushProcessor } from './processor.ts';
import type { PushProvider } from './providers/types.ts';

export interface PushWorkersDeps {
  config: Config;
  providers: Record<PushPlatform, PushProvider | null>;
  db: Db;
  log: Logger;
  metrics: WorkerMetrics;
  /** Queue base name (tests pass their own); the platform suffix is added here. */
  queueBase: string;
}

/**
 * How long a job's lock lasts without renewal. BullMQ's 30 s default would hand a crashed
 * worker's job to another worker only after a typical call TTL is over. A quarter of the TTL
 * (2-10 s) brings it back while the caller still waits; a live worker renews the lock every
 * half period, so a slow (timeout-bounded) request never loses its lock.
 */
export function lockDurationMs(ttlSeconds: number): number {
  return Math.min(10_000, Math.max(2_000, Math.round((ttlSeconds * 1000) / 4)));
}

export interface PushWorkers {
  workers: Worker[];
  /** Stop taking jobs, let in-flight ones finish (bounded by the request timeouts), disconnect. */
  close(): Promise<void>;
}

/** One BullMQ worker per platform queue, each with its own concurrency: iOS and Android never share slots. */
export function startPushWorkers(deps: PushWorkersDeps): PushWorkers {
  const processor = createPushProcessor(deps);
  const backoffStrategy = createBackoffStrategy(deps);
  const lockDuration = lockDurationMs(deps.config.pushTtlSeconds);
  const workers = PUSH_PLATFORMS.map((platform) => {
    const name = pushQueueName(deps.queueBase, platform);
    const worker = new Worker(name, processor, {
      connection: createRedis(deps.config.redis, 'worker'),
      ...queueOptions(deps.config.redis, name),
      concurrency: deps.config.workerConcurrency,
      lockDuration,
      stalledInterval: Math.round(lockDuration / 2),
      // A job that stalled twice (two crashed workers) is failed rather than ringing forever;
      // the TTL check drops it anyway once the call is over.
      maxStalledCount: 2,
      settings: { backoffStrategy },
    });
    const log = deps.log.child({ platform, queue: name });
    worker.on('failed', (job, err) => {
      if (!job) return;
      const retrying = job.finishedOn === undefined;
      if (!retrying) log.warn({ jobId: job.id, attempts: job.attemptsMade, reason: err.message }, 'Push failed for good');
    });
    worker.on('error', (err) => log.error({ err: err.message }, 'Queue worker error (Redis?)'));
    worker.on('stalled', (jobId) => log.warn({ jobId }, 'Stalled push job recovered from a lost worker'));
    return worker;
  });
  return {
    workers,
    async close() {
      await Promise.all(workers.map((w) => w.close()));
      await Promise.all(workers.map(async (w) => (await w.client).disconnect()));
    },
  };
}
