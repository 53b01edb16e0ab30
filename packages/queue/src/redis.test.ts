import { describe, expect, it } from 'vitest';
import { queueOptions, queuePrefix } from './redis.ts';

describe('queue prefix', () => {
  const nodes = [{ host: '127.0.0.1', port: 7000 }];

  it('hash-tags each queue with its own name on a Cluster, so its keys share one slot', () => {
    const cluster = { mode: 'cluster' as const, nodes, username: null, password: null, tls: false };
    expect(queuePrefix(cluster, 'veil-push-ios')).toBe('{veil-push-ios}');
    expect(queueOptions(cluster, 'veil-push-android')).toEqual({ prefix: '{veil-push-android}' });
  });

  it("keeps BullMQ's default on one server and behind Sentinel, where queued jobs of an older release live", () => {
    expect(queuePrefix('redis://127.0.0.1:6379', 'veil-push-ios')).toBe('bull');
    expect(queuePrefix({ mode: 'single', url: 'redis://r' }, 'veil-push-ios')).toBe('bull');
    const sentinel = { mode: 'sentinel' as const, sentinels: nodes, name: 'mymaster', username: null, password: null, db: 0, tls: false };
    expect(queuePrefix(sentinel, 'veil-push-ios')).toBe('bull');
  });
});
