import { Queue } from 'bullmq';
import type { Logger } from '@veil/log/logger';
import { createCallState, type CallState } from './call-state.ts';
import { PUSH_JOB, PUSH_PLATFORMS, pushJobOptions, pushQueueName, type PushJob, type PushPlatform } from './contracts.ts';
import { createProducerWatchdog } from './producer-watchdog.ts';
import { pingFor, readinessKeys } from './readiness.ts';
import { waitForRedisReady } from './redis-ready.ts';
import { commandTimeoutOf, createRedis, queueOptions } from './redis.ts';
import type { RedisTarget } from '@veil/config/redis-target';

/** Redis did not take the jobs (down, refusing, or silent past its command timeout): answer 503. */
export class QueueUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'QueueUnavailableError';
  }
}

export interface PushProducerOptions {
  /** One server, a Sentinel set or a Cluster (config.redis). */
  redis: RedisTarget;
  /** PUSH_QUEUE: the platform suffix is added here. */
  queueBase: string;
  maxAttempts: number;
  ttlSeconds: number;
  /** Bound on handing jobs to Redis and on a readiness PING. */
  timeoutMs: number;
  log: Logger;
}

export interface PushProducer {
  /** Resolves once every job is in Redis; throws QueueUnavailableError otherwise, within timeoutMs. */
  enqueue(jobs: PushJob[]): Promise<void>;
  /**
   * Per-call push state and pending wakes (call-notify, call-ended, calls/{id}, registered), on
   * the same connection with the same rules: each step answers QueueUnavailableError within the
   * command timeout when Redis is down or silent.
   */
  calls: CallState;
  /** True when Redis answers a PING within timeoutMs (readiness probe); never throws. */
  ping(): Promise<boolean>;
  /** True once connected, false after `ms`; lets a service wait briefly before taking traffic. */
  waitReady(ms: number): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * Everything about producing push jobs: the fail-fast connection, its error log, readiness, the
 * watchdog that rebuilds a silent socket, and the deadline race. Callers see jobs and one error.
 */
export function createPushProducer(opts: PushProducerOptions): PushProducer {
  const { log } = opts;
  const redis = createRedis(opts.redis, 'producer');
  const keys = readinessKeys(opts.redis, opts.queueBase);
  let lastError = '';
  redis.on('error', (err: Error) => {
    // ioredis repeats the same error on every reconnect attempt; one line per distinct failure is enough.
    if (err.message !== lastError) log.warn({ error: err.message }, 'Redis connection error');
    lastError = err.message;
  });
  redis.on('ready', () => {
    if (lastError) log.info('Redis connection restored');
    lastError = '';
  });
  const queues = Object.fromEntries(
    PUSH_PLATFORMS.map((platform) => {
      const name = pushQueueName(opts.queueBase, platform);
      const queue = new Queue(name, { connection: redis, ...queueOptions(opts.redis, name) });
      queue.on('error', () => {}); // already logged by the connection listener
      return [platform, queue];
    }),
  ) as Record<PushPlatform, Queue>;
  const watchdog = createProducerWatchdog(redis, { timeoutMs: commandTimeoutOf(redis) ?? opts.timeoutMs, log });

  /**
   * One add (one job) or addBulk (several) per platform queue, in parallel. If one queue fails
   * the caller answers 503; jobs that did land are not rolled back, and the dedup id keeps them
   * from ringing twice if the sender posts the same call again.
   */
  async function addAll(jobs: PushJob[]): Promise<void> {
    // Not connected: answer now. Handing jobs to BullMQ on a connection that is not ready makes it
    // wait for "ready" and, when Redis never answers, leak an unhandled rejection (seen with BullMQ 5.81).
    if (redis.status !== 'ready') throw new QueueUnavailableError('Redis connection is not ready');
    const adds = PUSH_PLATFORMS.map((platform) => {
      const mine = jobs.filter((j) => j.platform === platform);
      if (mine.length === 0) return Promise.resolve();
      const jobOpts = (data: PushJob) => pushJobOptions(data, opts.maxAttempts, opts.ttlSeconds);
      // One job (the usual callee: one device per platform): a plain add is one script call.
      // addBulk builds an ioredis Pipeline, whose constructor copies every BullMQ script onto it,
      // a top self-time entry of the API's profile; for several jobs it is worth it (all or none).
      if (mine.length === 1) return queues[platform].add(PUSH_JOB, mine[0]!, jobOpts(mine[0]!));
      return queues[platform].addBulk(mine.map((data) => ({ name: PUSH_JOB, data, opts: jobOpts(data) })));
    });
    let timer: NodeJS.Timeout | undefined;
    // Backstop to the connection's commandTimeout: BullMQ can wait for "ready" before it sends anything.
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new QueueUnavailableError(`Redis did not take the jobs within ${opts.timeoutMs} ms`)), opts.timeoutMs);
    });
    try {
      await Promise.race([Promise.all(adds), deadline]);
    } catch (err) {
      if (err instanceof QueueUnavailableError) throw err;
      // Any failure here is Redis's: the jobs were validated before they got here.
      throw new QueueUnavailableError(`Redis refused the jobs: ${(err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
      // A loser of the race must not surface later as an unhandled rejection.
      for (const p of adds) p.catch(() => {});
    }
  }

  /** One Redis step of a request: answered now when not connected, a failure is Redis's (503). */
  async function step<T>(op: () => Promise<T>): Promise<T> {
    if (redis.status !== 'ready') throw new QueueUnavailableError('Redis connection is not ready');
    try {
      return await watchdog.watch(op);
    } catch (err) {
      throw new QueueUnavailableError(`Redis did not answer: ${(err as Error).message}`, { cause: err });
    }
  }
  const raw = createCallState(redis, { base: opts.queueBase, ttlSeconds: opts.ttlSeconds });
  const calls = Object.fromEntries(
    Object.entries(raw).map(([name, fn]) => [name, (...args: unknown[]) => step(() => (fn as (...a: unknown[]) => Promise<unknown>)(...args))]),
  ) as unknown as CallState;

  return {
    enqueue: (jobs) => watchdog.watch(() => addAll(jobs)),
    calls,
    async ping() {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), opts.timeoutMs)));
      try {
        return await Promise.race([watchdog.watch(() => pingFor(redis, keys)).then(() => true, () => false), late]);
      } finally {
        clearTimeout(timer);
      }
    },
    waitReady: (ms) => waitForRedisReady(redis, ms),
    async close() {
      // Queue.close() on a never-ready connection leaks rejections from BullMQ.
      if (redis.status === 'ready') await Promise.allSettled(Object.values(queues).map((q) => q.close()));
      redis.disconnect();
    },
  };
}
