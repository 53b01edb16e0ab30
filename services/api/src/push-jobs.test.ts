import { describe, expect, it } from 'vitest';
import { parsePushJob } from '@veil/queue/contracts';
import { buildPushJobs } from './push-jobs.ts';

const device = (over: Record<string, unknown> = {}) => ({
  jid: 'bob@example.com',
  device_id: 'd1',
  platform: 'ios' as const,
  push_token: 'aa'.repeat(32),
  app_id: null,
  alert_token: null,
  apns_environment: null,
  ...over,
});
const call = { caller_name: 'Alice', call_id: 'c1', call_type: 'video' as const };

describe('buildPushJobs', () => {
  it('one valid job per device, carrying token, app and caller so the worker never reads Postgres', () => {
    const jobs = buildPushJobs([device(), device({ device_id: 'd2', platform: 'android', push_token: 'fcm', app_id: 'com.example.other' })], call, 30, 1_000);
    expect(jobs).toHaveLength(2);
    for (const job of jobs) expect(parsePushJob(job)).toEqual(job);
    expect(jobs[1]).toMatchObject({ platform: 'android', device_id: 'd2', push_token: 'fcm', app_id: 'com.example.other', caller_name: 'Alice', call_id: 'c1', call_type: 'video' });
  });

  it("job version 2 carries the registration's APNs environment (null: the deployment default)", () => {
    const [prod, unset] = buildPushJobs([device({ apns_environment: 'production' }), device({ device_id: 'd2' })], call, 30, 1_000);
    expect(prod).toMatchObject({ v: 2, apns_environment: 'production' });
    expect(unset).toMatchObject({ v: 2, apns_environment: null });
  });

  it('the deadline is PUSH_TTL_SECONDS after the call was accepted', () => {
    const [job] = buildPushJobs([device()], call, 45, 10_000);
    expect(job).toMatchObject({ enqueued_at: 10_000, deadline: 55_000 });
  });

  it('no devices, no jobs', () => {
    expect(buildPushJobs([], call, 30)).toEqual([]);
  });
});
