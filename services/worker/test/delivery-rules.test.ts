import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { iosToken, androidToken, startHarness, type Harness } from './support/harness.ts';

let h: Harness;
beforeAll(async () => {
  // Short TTL so "stops at the deadline" happens within the test; 1.5 s request timeout.
  h = await startHarness({ ttlSeconds: 6, maxAttempts: 4, requestTimeoutMs: 1500 });
  h.startWorker();
});
afterAll(() => h.close());
beforeEach(() => {
  h.apns.reset();
  h.fcm.reset();
});

describe('TTL, retries, dedup', () => {
  it('a job past its deadline is dropped without sending', async () => {
    const now = Date.now();
    const { job } = await h.enqueue('ios', { enqueued_at: now - 10_000, deadline: now - 1 });
    const done = await h.settle(job);
    expect(done.returnvalue).toBe('expired');
    expect(h.apns.requests).toHaveLength(0);
    expect(h.logsWith('Push dropped: the call is older than PUSH_TTL_SECONDS').some((l) => l.jobId === job.id)).toBe(true);
  });

  it('Retry-After is honoured before the next attempt', async () => {
    const token = androidToken();
    h.fcm.answer(token, { error: 'QUOTA_EXCEEDED', retryAfter: '2' }, { status: 200 });
    const { job } = await h.enqueue('android', { push_token: token });
    const done = await h.settle(job);
    expect(done.returnvalue).toBe('delivered');
    const [first, second] = h.fcm.requests;
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(1900);
  });

  it('a retry that would land after the deadline is not made', async () => {
    const token = iosToken();
    // Retry-After 10 s with a 6 s TTL: no second attempt.
    h.apns.answer(token, { status: 429, reason: 'TooManyRequests', retryAfter: '10' });
    const { job } = await h.enqueue('ios', { push_token: token });
    const done = await h.settle(job);
    expect(done.state).toBe('failed');
    expect(done.attemptsMade).toBe(1);
    expect(h.apns.requests).toHaveLength(1);
    expect(h.logsWith('Push not retried: the next attempt would land after the TTL').some((l) => l.jobId === job.id)).toBe(true);
  });

  it('retries stop at PUSH_MAX_ATTEMPTS', async () => {
    const token = iosToken();
    h.apns.answer(token, { status: 503, reason: 'ServiceUnavailable' });
    const { job } = await h.enqueue('ios', { push_token: token });
    const done = await h.settle(job);
    expect(done.state).toBe('failed');
    expect(done.attemptsMade).toBe(4);
    expect(h.apns.requests).toHaveLength(4);
  });

  it('the same dedup id enqueued twice pushes once', async () => {
    const first = await h.enqueue('ios', { call_id: 'same-call', device_id: '11111111-1111-4111-8111-111111111111' });
    const again = await h.enqueue('ios', { ...first.push });
    expect(again.job.id).toBe(first.job.id);
    await h.settle(first.job);
    await new Promise((r) => setTimeout(r, 300));
    expect(h.apns.requests).toHaveLength(1);
  });

  it('a delivered push is removed from Redis, yet the same call and device within the TTL is not pushed again', async () => {
    const first = await h.enqueue('ios');
    expect((await h.settle(first.job)).returnvalue).toBe('delivered');
    // removeOnComplete: nothing of the push (nor its token) is left in Redis...
    expect(await h.queues.ios.getJobState(first.job.id!)).toBe('unknown');
    // ...but the throttle-mode dedup key outlives the job, for the TTL.
    const again = await h.enqueue('ios', { ...first.push });
    expect(again.job.id).toBe(first.job.id);
    expect(await h.queues.ios.getJobState(first.job.id!)).toBe('unknown');
    await new Promise((r) => setTimeout(r, 300));
    expect(await h.queues.ios.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'completed')).toMatchObject({
      waiting: 0, active: 0, delayed: 0, prioritized: 0, completed: 0,
    });
    expect(h.apns.requests).toHaveLength(1);
  });

  it('a hanging APNs response times out and the retry is delivered', async () => {
    const token = iosToken();
    h.apns.answer(token, { hang: true }, { status: 200 });
    const { job } = await h.enqueue('ios', { push_token: token });
    const done = await h.settle(job);
    expect(done.returnvalue).toBe('delivered');
    expect(h.apns.requests.filter((r) => r.token === token)).toHaveLength(2);
  });

  it('a connection that went silent costs one timeout, then a fresh connection delivers', async () => {
    const warm = await h.enqueue('ios');
    await h.settle(warm.job);
    const sessionsBefore = h.apns.sessionsOpened();
    h.apns.silenceExistingSessions();
    const { job } = await h.enqueue('ios');
    const started = Date.now();
    const done = await h.settle(job);
    expect(done.returnvalue).toBe('delivered');
    expect(h.apns.sessionsOpened()).toBe(sessionsBefore + 1);
    expect(Date.now() - started).toBeLessThan(5000);
    // Pushes after that use the new connection straight away.
    const next = await h.enqueue('ios');
    expect((await h.settle(next.job)).returnvalue).toBe('delivered');
    expect(h.apns.requests.at(-1)!.session).toBe(h.apns.requests.at(-2)!.session);
  });

  it('an FCM connection that went silent costs one timeout, then a fresh connection delivers', async () => {
    const warm = await h.enqueue('android');
    await h.settle(warm.job);
    const sessionsBefore = h.fcm.sessionsOpened();
    h.fcm.silenceExistingSessions();
    const { job } = await h.enqueue('android');
    const started = Date.now();
    expect((await h.settle(job)).returnvalue).toBe('delivered');
    expect(h.fcm.sessionsOpened()).toBe(sessionsBefore + 1);
    expect(Date.now() - started).toBeLessThan(5000);
    // Later pushes go straight to the new connection: no second timeout.
    const next = await h.enqueue('android');
    const nextStarted = Date.now();
    expect((await h.settle(next.job)).returnvalue).toBe('delivered');
    expect(Date.now() - nextStarted).toBeLessThan(1500);
    expect(h.fcm.sessionsOpened()).toBe(sessionsBefore + 1);
  });

  it('a connection destroyed mid-request is retried on a new one', async () => {
    const token = iosToken();
    h.apns.answer(token, { destroy: 'session' }, { status: 200 });
    const { job } = await h.enqueue('ios', { push_token: token });
    expect((await h.settle(job)).returnvalue).toBe('delivered');
  });

  it('one provider JWT serves many pushes on one multiplexed connection', async () => {
    const sessionsBefore = h.apns.sessionsOpened();
    const jobs = await Promise.all(Array.from({ length: 30 }, () => h.enqueue('ios')));
    await Promise.all(jobs.map(({ job }) => h.settle(job)));
    expect(h.apns.requests).toHaveLength(30);
    expect(new Set(h.apns.requests.map((r) => r.jwt)).size).toBe(1);
    expect(h.apns.sessionsOpened() - sessionsBefore).toBeLessThanOrEqual(1);
  });

  it('ExpiredProviderToken renews the provider JWT and the retry carries the new one', async () => {
    const warm = await h.enqueue('ios');
    await h.settle(warm.job);
    const oldJwt = h.apns.requests[0]!.jwt;
    const token = iosToken();
    h.apns.answer(token, { status: 403, reason: 'ExpiredProviderToken' }, { status: 200 });
    const { job } = await h.enqueue('ios', { push_token: token });
    expect((await h.settle(job)).returnvalue).toBe('delivered');
    const [rejected, retried] = h.apns.requests.filter((r) => r.token === token);
    expect(rejected!.jwt).toBe(oldJwt);
    expect(retried!.jwt).not.toBe(oldJwt);
    expect(retried!.jwtClaims).toMatchObject({ kid: h.apnsKey.keyId, iss: h.apnsKey.teamId });
    // And the renewed JWT is reused afterwards, not minted per push.
    const after = await Promise.all(Array.from({ length: 5 }, () => h.enqueue('ios')));
    await Promise.all(after.map(({ job: j }) => h.settle(j)));
    expect(new Set(h.apns.requests.slice(-5).map((r) => r.jwt))).toEqual(new Set([retried!.jwt]));
  });

  it('a hanging APNs does not delay Android pushes', async () => {
    h.apns.answer(null, { hang: true });
    const ios = await Promise.all(Array.from({ length: 5 }, () => h.enqueue('ios')));
    const started = Date.now();
    const android = await Promise.all(Array.from({ length: 5 }, () => h.enqueue('android')));
    const results = await Promise.all(android.map(({ job }) => h.settle(job)));
    expect(results.every((r) => r.returnvalue === 'delivered')).toBe(true);
    expect(Date.now() - started).toBeLessThan(1000);
    h.apns.answer(null, { status: 200 });
    await Promise.all(ios.map(({ job }) => h.settle(job)));
  });
});
