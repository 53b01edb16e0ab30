import { Queue } from 'bullmq';
import { PUSH_PLATFORMS, pushQueueName, type PushPlatform } from '@veil/queue/contracts';
import { pingFor, readinessKeys } from '@veil/queue/readiness';
import { createRedis, queueOptions } from '@veil/queue/redis';
import type { RedisTarget } from '@veil/config/redis-target';
import type { QueueState } from './metrics.ts';

export interface QueueSnapshot {
  /** Epoch ms the snapshot was taken at. */
  at: number;
  queues: Record<PushPlatform, { counts: Record<QueueState, number>; oldestAgeSeconds: number }>;
}

/** What the metrics server asks Redis on a scrape or a readiness check. */
export interface QueueProbe {
  /** True when Redis answers within the timeout (on a Cluster: the masters of both queues and the call state); never rejects. */
  ping(): Promise<boolean>;
  /** Counts and oldest job per platform queue, or null when Redis did not answer in time. */
  snapshot(): Promise<QueueSnapshot | null>;
  close(): Promise<void>;
}

export interface QueueProbeOptions {
  redis: RedisTarget;
  queueBase: string;
  /** Bound on every Redis call: a scrape or /readyz never hangs on a silent Redis. */
  timeoutMs?: number;
}

/** Resolves the promise's value, or `fallback` when it rejects or takes longer than `ms`. */
async function within<T, F>(p: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<F>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
  });
  try {
    return await Promise.race([p.catch(() => fallback), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * One fail-fast connection of its own (never the workers' blocking ones, which queue commands
 * while Redis is away). A scrape reads four gauges from one snapshot, so a snapshot is shared
 * for a second: one scrape costs one Lua call for the counts and one for the oldest job per
 * platform, whatever the queue length.
 */
export function createQueueProbe(opts: QueueProbeOptions): QueueProbe {
  const timeoutMs = opts.timeoutMs ?? 1000;
  const redis = createRedis(opts.redis, 'producer', { commandTimeout: timeoutMs, connectTimeout: timeoutMs });
  const keys = readinessKeys(opts.redis, opts.queueBase);
  // Errors show as redis_up 0 and a 503 on /readyz; the workers' own connections log the outage.
  redis.on('error', () => {});
  const queues = Object.fromEntries(
    PUSH_PLATFORMS.map((platform) => {
      const name = pushQueueName(opts.queueBase, platform);
      const q = new Queue(name, { connection: redis, ...queueOptions(opts.redis, name) });
      q.on('error', () => {});
      return [platform, q];
    }),
  ) as Record<PushPlatform, Queue>;

  async function readQueue(q: Queue, now: number) {
    const [counts, oldest] = await Promise.all([
      q.getJobCounts('waiting', 'delayed', 'active', 'failed'),
      // The head of each state, oldest first. For the delayed set that is the next retry due,
      // which for pushes (all retried within one TTL) is as good as the oldest.
      q.getJobs(['waiting', 'delayed', 'active'], 0, 0, true),
    ]);
    const first = Math.min(...oldest.map((j) => j.timestamp).filter((t) => Number.isFinite(t) && t > 0), now);
    return {
      counts: { waiting: counts.waiting ?? 0, delayed: counts.delayed ?? 0, active: counts.active ?? 0, failed: counts.failed ?? 0 },
      oldestAgeSeconds: Math.max(0, (now - first) / 1000),
    };
  }

  let cached: { at: number; value: Promise<QueueSnapshot | null> } | null = null;
  return {
    ping: () => (redis.status === 'ready' ? within(pingFor(redis, keys).then(() => true), timeoutMs, false) : Promise.resolve(false)),
    snapshot() {
      const now = Date.now();
      if (cached && now - cached.at < 1000) return cached.value;
      const read = async (): Promise<QueueSnapshot> => {
        const [ios, android] = await Promise.all(PUSH_PLATFORMS.map((p) => readQueue(queues[p], now)));
        return { at: now, queues: { ios: ios!, android: android! } };
      };
      // Not ready: answer at once instead of waiting out the timeout on every scrape.
      if (redis.status !== 'ready') return Promise.resolve(null);
      const value = within(read(), timeoutMs, null);
      // Shared while in flight and, once it succeeded, for the rest of the second; a failure is
      // not kept, so the next scrape after Redis returns sees it.
      cached = { at: now, value };
      void value.then((v) => {
        if (v === null && cached?.value === value) cached = null;
      });
      return value;
    },
    async close() {
      if (redis.status === 'ready') await Promise.allSettled(Object.values(queues).map((q) => q.close()));
      redis.disconnect();
    },
  };
}
