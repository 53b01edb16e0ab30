import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { upsertRegistration } from '@veil/db/registrations';
import type { FcmErrorName } from '@veil/testkit/fcm-stand-in';
import { classifyFcmAnswer } from '../src/providers/fcm-outcomes.ts';
import { androidToken, registrationToken, startHarness, type Harness } from './support/harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ ttlSeconds: 20, maxAttempts: 3 });
  h.startWorker();
});
afterAll(() => h.close());
beforeEach(() => h.fcm.reset());

describe('FCM outcomes (SPEC outcome table)', () => {
  it('success sends exactly the SPEC message and keeps the registration', async () => {
    const { push, job } = await h.enqueue('android', { caller_name: 'Alice', call_type: 'video' });
    const done = await h.settle(job);
    expect(done).toMatchObject({ state: 'completed', returnvalue: 'delivered' });
    const [req] = h.fcm.requests;
    expect(req!.problems).toEqual([]);
    expect(req!.path).toBe(`/v1/projects/${h.fcm.projectId}/messages:send`);
    expect(req!.httpVersion).toBe('2.0');
    expect(req!.body!.message!.token).toBe(push.push_token);
    expect(req!.body!.message!.data).toEqual({ type: 'call', caller_name: 'Alice', call_id: push.call_id, call_type: 'video' });
    expect(req!.body!.message!.android!.priority).toBe('high');
    const ttl = Number.parseInt(req!.body!.message!.android!.ttl!, 10);
    expect(ttl).toBeGreaterThanOrEqual(17);
    expect(ttl).toBeLessThanOrEqual(20);
    expect(await registrationToken(h.db, push.jid, push.device_id)).toBe(push.push_token);
  });

  for (const error of ['UNREGISTERED', 'SENDER_ID_MISMATCH', 'INVALID_ARGUMENT_TOKEN'] as FcmErrorName[]) {
    it(`${error} purges the registration and logs "FCM token unregistered"`, async () => {
      const token = androidToken();
      h.fcm.answer(token, { error });
      const { push, job } = await h.enqueue('android', { push_token: token });
      const done = await h.settle(job);
      expect(done.returnvalue).toBe('token_invalid');
      expect(h.fcm.requests).toHaveLength(1);
      expect(await registrationToken(h.db, push.jid, push.device_id)).toBeNull();
      expect(h.logsWith('FCM token unregistered').some((l) => l.jobId === job.id)).toBe(true);
      expect(JSON.stringify(h.logs)).not.toContain(token);
    });
  }

  it('UNREGISTERED does not purge a registration re-registered with a fresh token', async () => {
    const stale = androidToken();
    const fresh = androidToken();
    h.fcm.answer(stale, { error: 'UNREGISTERED' });
    const { push, job } = await h.enqueue('android', { push_token: stale });
    await upsertRegistration(h.db, { jid: push.jid, device_id: push.device_id, platform: 'android', push_token: fresh, app_id: null });
    expect((await h.settle(job)).returnvalue).toBe('token_invalid');
    expect(await registrationToken(h.db, push.jid, push.device_id)).toBe(fresh);
  });

  for (const error of ['QUOTA_EXCEEDED', 'INTERNAL', 'UNAVAILABLE'] as FcmErrorName[]) {
    it(`${error} is retried and then delivered`, async () => {
      const token = androidToken();
      h.fcm.answer(token, { error }, { status: 200 });
      const { push, job } = await h.enqueue('android', { push_token: token });
      const done = await h.settle(job);
      expect(done).toMatchObject({ state: 'completed', returnvalue: 'delivered' });
      expect(h.fcm.requests.filter((r) => r.body?.message?.token === token)).toHaveLength(2);
      expect(await registrationToken(h.db, push.jid, push.device_id)).toBe(token);
    });
  }

  for (const error of ['INVALID_ARGUMENT_PAYLOAD', 'THIRD_PARTY_AUTH_ERROR'] as FcmErrorName[]) {
    it(`${error} fails without retry and keeps the registration`, async () => {
      const token = androidToken();
      h.fcm.answer(token, { error });
      const { push, job } = await h.enqueue('android', { push_token: token });
      const done = await h.settle(job);
      expect(done.state).toBe('failed');
      expect(done.attemptsMade).toBe(1);
      expect(h.fcm.requests).toHaveLength(1);
      expect(await registrationToken(h.db, push.jid, push.device_id)).toBe(token);
      expect(h.logsWith('FCM push failed').some((l) => l.jobId === job.id)).toBe(true);
    });
  }

  it('401 refreshes the access token once and the retry is delivered', async () => {
    const before = h.fcm.tokenRequests;
    h.fcm.revokeAccessTokens();
    const { job } = await h.enqueue('android');
    const done = await h.settle(job);
    expect(done).toMatchObject({ state: 'completed', returnvalue: 'delivered' });
    expect(h.fcm.requests).toHaveLength(2);
    expect(h.fcm.requests[0]!.authorization).not.toBe(h.fcm.requests[1]!.authorization);
    expect(h.fcm.tokenRequests - before).toBe(1);
  });

  it('a second 401 in a row fails without further retry and keeps the registration', async () => {
    const token = androidToken();
    h.fcm.revokeAccessTokens();
    h.fcm.answer(token, { error: 'UNAUTHENTICATED' });
    const { push, job } = await h.enqueue('android', { push_token: token });
    const done = await h.settle(job);
    expect(done.state).toBe('failed');
    expect(done.attemptsMade).toBe(2);
    expect(h.fcm.requests).toHaveLength(2);
    expect(await registrationToken(h.db, push.jid, push.device_id)).toBe(token);
  });

  it('one access token serves many pushes', async () => {
    h.fcm.reset();
    const jobs = await Promise.all(Array.from({ length: 20 }, () => h.enqueue('android')));
    await Promise.all(jobs.map(({ job }) => h.settle(job)));
    expect(h.fcm.requests).toHaveLength(20);
    expect(new Set(h.fcm.requests.map((r) => r.authorization)).size).toBe(1);
    expect(h.fcm.tokenRequests).toBeLessThanOrEqual(1);
  });
});

describe('FCM answers outside the table', () => {
  it('a bare 404 NOT_FOUND (no UNREGISTERED detail: wrong project, misrouted proxy) keeps the registration', () => {
    expect(classifyFcmAnswer(404, { error: { code: 404, status: 'NOT_FOUND', message: 'Requested entity was not found.' } }).action).toBe('permanent');
    expect(classifyFcmAnswer(404, null).action).toBe('permanent');
    const unregistered = { error: { status: 'NOT_FOUND', details: [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode: 'UNREGISTERED' }] } };
    expect(classifyFcmAnswer(404, unregistered).action).toBe('token-invalid');
  });
});
