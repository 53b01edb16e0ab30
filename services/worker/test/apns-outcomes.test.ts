import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { registrationToken, startHarness, BUNDLE_ID, iosToken, type Harness } from './support/harness.ts';
import { upsertRegistration } from '@veil/db/registrations';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ ttlSeconds: 20, maxAttempts: 3 });
  h.startWorker();
});
afterAll(() => h.close());
beforeEach(() => h.apns.reset());

describe('APNs outcomes (SPEC outcome table)', () => {
  it('success delivers exactly the SPEC request and keeps the registration', async () => {
    const { push, job } = await h.enqueue('ios', { caller_name: 'Alice Liddell', call_type: 'video', app_id: 'com.other.app' });
    const done = await h.settle(job);
    expect(done, JSON.stringify(h.logs.slice(-5))).toMatchObject({ state: 'completed', returnvalue: 'delivered' });
    const [req] = h.apns.requests;
    expect(req!.problems).toEqual([]);
    expect(req!.path).toBe(`/3/device/${push.push_token}`);
    expect(req!.headers['apns-push-type']).toBe('voip');
    expect(req!.headers['apns-topic']).toBe('com.other.app.voip');
    expect(req!.headers['apns-priority']).toBe('10');
    expect(req!.headers['apns-expiration']).toBe(String(Math.floor(push.deadline / 1000)));
    expect(req!.body).toEqual({ aps: {}, caller_name: 'Alice Liddell', call_id: push.call_id, call_type: 'video' });
    expect(req!.jwtClaims).toMatchObject({ kid: h.apnsKey.keyId, iss: h.apnsKey.teamId });
    expect(await registrationToken(h.db, push.jid, push.device_id)).toBe(push.push_token);
  });

  it('topic defaults to APNS_BUNDLE_ID.voip without app_id', async () => {
    const { job } = await h.enqueue('ios');
    await h.settle(job);
    expect(h.apns.requests[0]!.headers['apns-topic']).toBe(`${BUNDLE_ID}.voip`);
  });

  for (const [status, reason] of [
    [410, 'Unregistered'],
    [410, 'ExpiredToken'],
    [400, 'BadDeviceToken'],
    [400, 'DeviceTokenNotForTopic'],
  ] as const) {
    it(`${status} ${reason} purges the registration and logs "APNs rejected push: ${reason}"`, async () => {
      const token = iosToken();
      h.apns.answer(token, { status, reason });
      const { push, job } = await h.enqueue('ios', { push_token: token });
      const done = await h.settle(job);
      expect(done.returnvalue).toBe('token_invalid');
      expect(h.apns.requests).toHaveLength(1);
      expect(await registrationToken(h.db, push.jid, push.device_id)).toBeNull();
      const line = h.logsWith(`APNs rejected push: ${reason}`).find((l) => l.jobId === job.id);
      expect(line).toBeDefined();
      expect(JSON.stringify(h.logs)).not.toContain(token);
    });
  }

  it('a rejected token does not purge a registration that was re-registered with a fresh token', async () => {
    const stale = iosToken();
    const fresh = iosToken();
    // The job carries the old token; meanwhile the device registered a new one.
    h.apns.answer(stale, { status: 410, reason: 'Unregistered' });
    const { push, job } = await h.enqueue('ios', { push_token: stale });
    await upsertRegistration(h.db, { jid: push.jid, device_id: push.device_id, platform: 'ios', push_token: fresh, app_id: null });
    const done = await h.settle(job);
    expect(done.returnvalue).toBe('token_invalid');
    expect(await registrationToken(h.db, push.jid, push.device_id)).toBe(fresh);
  });

  for (const [status, reason] of [
    [429, 'TooManyRequests'],
    [500, 'InternalServerError'],
    [503, 'ServiceUnavailable'],
    [403, 'ExpiredProviderToken'],
  ] as const) {
    it(`${status} ${reason} is retried and then delivered`, async () => {
      const token = iosToken();
      h.apns.answer(token, { status, reason }, { status: 200 });
      const { push, job } = await h.enqueue('ios', { push_token: token });
      const done = await h.settle(job);
      expect(done.state).toBe('completed');
      expect(done.returnvalue).toBe('delivered');
      expect(h.apns.requests.filter((r) => r.token === token)).toHaveLength(2);
      expect(await registrationToken(h.db, push.jid, push.device_id)).toBe(token);
    });
  }

  for (const [status, reason] of [
    [400, 'TopicDisallowed'],
    [413, 'PayloadTooLarge'],
    [403, 'InvalidProviderToken'],
    [400, 'BadTopic'],
  ] as const) {
    it(`${status} ${reason} fails without retry and keeps the registration`, async () => {
      const token = iosToken();
      h.apns.answer(token, { status, reason });
      const { push, job } = await h.enqueue('ios', { push_token: token });
      const done = await h.settle(job);
      expect(done.state).toBe('failed');
      expect(done.attemptsMade).toBe(1);
      expect(h.apns.requests).toHaveLength(1);
      expect(await registrationToken(h.db, push.jid, push.device_id)).toBe(token);
      expect(h.logsWith(`APNs push failed: APNs ${status} ${reason}`).some((l) => l.jobId === job.id)).toBe(true);
    });
  }
});
