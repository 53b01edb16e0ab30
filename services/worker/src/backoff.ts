import type { MinimalJob } from 'bullmq';
import type { Logger } from '@veil/log/logger';
import { PUSH_BACKOFF } from '@veil/queue/contracts';
import type { WorkerMetrics } from './metrics.ts';

export const BACKOFF_BASE_MS = 250;
export const BACKOFF_CAP_MS = 8000;

/** BullMQ ends the retries when a backoff strategy answers -1. */
export const NO_RETRY = -1;

/**
 * Exponential backoff with jitter, never shorter than the provider's Retry-After, and never
 * past the call's deadline: a retry that would land after the TTL is not made at all.
 * attemptsMade counts the attempt that just failed (1 for the first).
 */
export function pushRetryDelay(opts: {
  attemptsMade: number;
  retryAfterMs: number | null;
  deadline: number;
  now: number;
  random?: () => number;
}): number {
  const random = opts.random ?? Math.random;
  const exp = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, opts.attemptsMade - 1));
  // "Equal jitter": half fixed, half random, so replicas hammered by one outage spread out.
  let delay = Math.round(exp / 2 + random() * (exp / 2));
  if (opts.retryAfterMs !== null && opts.retryAfterMs > delay) delay = opts.retryAfterMs;
  if (opts.now + delay >= opts.deadline) return NO_RETRY;
  return delay;
}

/** The `settings.backoffStrategy` of the push workers. */
export function createBackoffStrategy(deps: { metrics: WorkerMetrics; log: Logger; now?: () => number }) {
  const now = deps.now ?? Date.now;
  return (attemptsMade: number, type?: string, err?: Error, job?: MinimalJob): number => {
    const data = job?.data as { deadline?: unknown; platform?: string } | undefined;
    if (type !== PUSH_BACKOFF || typeof data?.deadline !== 'number') return NO_RETRY;
    const retryAfterMs = (err as { retryAfterMs?: unknown } | undefined)?.retryAfterMs;
    const delay = pushRetryDelay({
      attemptsMade,
      retryAfterMs: typeof retryAfterMs === 'number' ? retryAfterMs : null,
      deadline: data.deadline,
      now: now(),
    });
    const platform = data.platform ?? 'unknown';
    if (delay === NO_RETRY) {
      deps.metrics.expired.inc({ platform });
      deps.log.warn({ jobId: job?.id, platform, attemptsMade }, 'Push not retried: the next attempt would land after the TTL');
    } else {
      deps.metrics.retries.inc({ platform });
    }
    return delay;
  };
}
