import { describe, expect, it } from 'vitest';
import { parsePushJob, pushDedupId, pushJobOptions, pushQueueName, type PushJob } from './contracts.ts';

const job: PushJob = {
  v: 2, kind: 'call', platform: 'ios', jid: 'bob@example.com', device_id: 'd1', push_token: 'tok', app_id: null,
  apns_environment: null, caller_name: 'Alice', call_id: 'c1', call_type: 'audio', enqueued_at: 1, deadline: 30_001,
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
    expect(() => parsePushJob({ ...job, v: 3 })).toThrow();
    expect(() => parsePushJob({ ...job, platform: 'web' })).toThrow();
    expect(() => parsePushJob({ ...job, kind: 'call_ended' })).toThrow(); // no reason
  });

  it('a round-1 job (v1: no kind, no apns_environment) still reads, as a call to the default environment', () => {
    const { kind: _kind, apns_environment: _env, ...rest } = job;
    expect(parsePushJob({ ...rest, v: 1 })).toEqual({ ...job, v: 1 });
  });

  it('"call ended" jobs carry their reason and get a dedup id of their own', () => {
    const ended = { ...job, kind: 'call_ended' as const, reason: 'cancelled' as const };
    expect(parsePushJob(ended)).toEqual(ended);
    expect(() => parsePushJob({ ...ended, reason: 'hung-up' })).toThrow();
    expect(pushDedupId('c1', 'bob@example.com', 'd1', 'call_ended')).not.toBe(pushDedupId('c1', 'bob@example.com', 'd1'));
  });
});
