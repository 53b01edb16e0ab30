import { Queue, Worker } from 'bullmq';
import type { Config } from '@veil/config/config';
import type { Db } from '@veil/db/client';
import type { Logger } from '@veil/log/logger';
import { buildCallEndedJobs, type EndedDevice, createCallState } from '@veil/queue/call-state';
import { PUSH_JOB, PUSH_PLATFORMS, pushJobOptions, pushQueueName, type CallEndReason, type PushPlatform } from '@veil/queue/contracts';
import { createRedis, queueOptions } from '@veil/queue/redis';
import { createBackoffStrategy } from './backoff.ts';
import type { WorkerMetrics } from './metrics.ts';
import { createPushProcessor } from './processor.ts';
import { createPushAcceptedRecorder } from './push-accepted-recorder.ts';
import type { ProviderSet } from './providers/provider-set.ts';

export interface PushWorkersDeps {
  config: Config;
  providers: ProviderSet;
  db: Db;
  log: Logger;
  metrics: WorkerMetrics;
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
  /** Stop taking jobs, let in-flight ones finish (bounded by the request timeouts), disconnect. */
  close(): Promise<void>;
}

/** One BullMQ worker per platform queue, each with its own concurrency: iOS and Android never share slots. */
export function startPushWorkers(deps: PushWorkersDeps): PushWorkers {
  // Call state and the odd "call ended" message (a push accepted after its call ended) go over
  // one ordinary connection; the BullMQ workers' blocking connections cannot carry them.
  const redis = createRedis(deps.config.redis, 'worker');
  redis.on('error', () => {}); // the workers' own connections report Redis trouble
  const base = deps.config.pushQueue;
  const callState = createCallState(redis, { base, ttlSeconds: deps.config.pushTtlSeconds });
  const endedQueues = Object.fromEntries(PUSH_PLATFORMS.map((p) => [p, new Queue(pushQueueName(base, p), { connection: redis, ...queueOptions(deps.config.redis, pushQueueName(base, p)) })])) as Record<PushPlatform, Queue>;
  const queueCallEnded = async (device: EndedDevice, callId: string, reason: CallEndReason) => {
    const [job] = buildCallEndedJobs([device], callId, reason, deps.config.pushTtlSeconds);
    await endedQueues[job!.platform].add(PUSH_JOB, job, pushJobOptions(job!, deps.config.pushMaxAttempts, deps.config.pushTtlSeconds));
    // Only once the message is in the queue: if this job dies before, its next run queues it again.
    await callState.confirmNotified(callId, [device]);
  };
  const pushesAccepted = createPushAcceptedRecorder(deps.db, deps.log);
  const processor = createPushProcessor({ ...deps, callState, queueCallEnded, pushesAccepted });
  const backoffStrategy = createBackoffStrategy(deps);
  const lockDuration = lockDurationMs(deps.config.pushTtlSeconds);
  const workers = PUSH_PLATFORMS.map((platform) => {
    const name = pushQueueName(deps.config.pushQueue, platform);
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
    async close() {
      await Promise.all(workers.map((w) => w.close()));
      // After the last job: the service closes Postgres only once this is written.
      await pushesAccepted.flush();
      await Promise.all(workers.map(async (w) => (await w.client).disconnect()));
      await Promise.allSettled(Object.values(endedQueues).map((q) => q.close()));
      redis.disconnect();
    },
  };
}
