import type { MinimalJob } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { PUSH_BACKOFF } from '@veil/queue/contracts';
import { captureLogs } from '@veil/testkit/logs';
import { createBackoffStrategy, NO_RETRY, pushRetryDelay } from './backoff.ts';
import { createWorkerMetrics } from './metrics.ts';

describe('retry delay', () => {
  it('grows exponentially with jitter, honours Retry-After and never passes the deadline', () => {
    const base = { retryAfterMs: null, deadline: 100_000, now: 0 };
    expect(pushRetryDelay({ ...base, attemptsMade: 1, random: () => 0 })).toBe(125);
    expect(pushRetryDelay({ ...base, attemptsMade: 1, random: () => 1 })).toBe(250);
    expect(pushRetryDelay({ ...base, attemptsMade: 3, random: () => 1 })).toBe(1000);
    expect(pushRetryDelay({ ...base, attemptsMade: 1, retryAfterMs: 5000 })).toBe(5000);
    expect(pushRetryDelay({ ...base, attemptsMade: 1, retryAfterMs: 200_000 })).toBe(NO_RETRY);
    expect(pushRetryDelay({ ...base, now: 99_990, attemptsMade: 1 })).toBe(NO_RETRY);
  });

  it('is capped at 8 s however many attempts failed', () => {
    expect(pushRetryDelay({ attemptsMade: 30, retryAfterMs: null, deadline: 1e9, now: 0, random: () => 1 })).toBe(8000);
  });
});

describe('the workers\' backoffStrategy', () => {
  const setup = () => {
    const metrics = createWorkerMetrics();
    const { log, raw } = captureLogs('worker');
    const strategy = createBackoffStrategy({ metrics, log, now: () => 1_000 });
    const job = (deadline: number) => ({ id: '7', data: { deadline, platform: 'ios' } }) as unknown as MinimalJob;
    return { metrics, raw, strategy, job };
  };

  it('takes Retry-After from the error and counts a retry', async () => {
    const { metrics, strategy, job } = setup();
    const err = Object.assign(new Error('429'), { retryAfterMs: 3000 });
    expect(strategy(1, PUSH_BACKOFF, err, job(60_000))).toBe(3000);
    expect(await metrics.registry.getSingleMetricAsString('veil_worker_push_retries_total')).toContain('platform="ios"} 1');
  });

  it('a retry past the deadline is not made: counted as expired and logged', async () => {
    const { metrics, raw, strategy, job } = setup();
    expect(strategy(1, PUSH_BACKOFF, new Error('503'), job(1_050))).toBe(NO_RETRY);
    expect(await metrics.registry.getSingleMetricAsString('veil_worker_pushes_expired_total')).toContain('platform="ios"} 1');
    expect(raw()).toContain('Push not retried: the next attempt would land after the TTL');
  });

  it('another backoff type, or a job without a deadline, is never retried', () => {
    const { strategy, job } = setup();
    expect(strategy(1, 'exponential', new Error('x'), job(60_000))).toBe(NO_RETRY);
    expect(strategy(1, PUSH_BACKOFF, new Error('x'), { id: '1', data: {} } as unknown as MinimalJob)).toBe(NO_RETRY);
  });
});
