import { describe, expect, it } from 'vitest';
import { parsePushJob, pushDedupId, pushJobOptions, pushQueueName, type PushJob } from './contracts.ts';

const job: PushJob = {
  v: 1, platform: 'ios', jid: 'bob@example.com', device_id: 'd1', push_token: 'tok', app_id: null,
  caller_name: 'Alice', call_id: 'c1', call_type: 'audio', enqueued_at: 1, deadline: 30_001,
};

describe('queue contract', () => {
  it('one queue per platform under the PUSH_QUEUE base', () => {
    expect(pushQueueName('veil-push', 'ios')).toBe('veil-push-ios');
    expect(pushQueueName('veil-push', 'android')).toBe('veil-push-android');
  });

  it('the dedup id is per (call, device), and carries none of the Call-ID bytes', () => {
    const id = pushDedupId('c1:with spaces\n', 'bob@example.com', 'd1');
    expect(id).toBe(pushDedupId('c1:with spaces\n', 'bob@example.com', 'd1'));
    expect(id).not.toBe(pushDedupId('c1:with spaces\n', 'bob@example.com', 'd2'));
    expect(id).not.toBe(pushDedupId('c2', 'bob@example.com', 'd1'));
    expect(id).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it('job options: attempts, the custom backoff, dedup for the TTL, and nothing kept once delivered', () => {
    expect(pushJobOptions(job, 5, 30)).toMatchObject({
      attempts: 5,
      backoff: { type: 'push' },
      deduplication: { id: pushDedupId('c1', 'bob@example.com', 'd1'), ttl: 30_000 },
      removeOnComplete: true,
    });
  });

  it('a job of another shape is refused', () => {
    expect(parsePushJob(job)).toEqual(job);
    expect(() => parsePushJob({ ...job, v: 2 })).toThrow();
    expect(() => parsePushJob({ ...job, platform: 'web' })).toThrow();
  });
});
