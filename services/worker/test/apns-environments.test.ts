import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { iosToken, registrationToken, startHarness, type Harness } from './support/harness.ts';

// Sandbox is the deployment default (APNS_USE_SANDBOX unset); h.apns plays the sandbox gateway,
// h.apnsProduction the production one.
let h: Harness;
let production: NonNullable<Harness['apnsProduction']>;
beforeAll(async () => {
  h = await startHarness({ productionGateway: true, requestTimeoutMs: 1500 });
  production = h.apnsProduction!;
  h.startWorker();
});
afterAll(() => h.close());
beforeEach(() => {
  h.apns.reset();
  production.reset();
});

const fallbackCount = async (outcome: string) => {
  const text = await h.metrics.registry.metrics();
  return Number(new RegExp(`veil_worker_apns_environment_fallbacks_total\\{outcome="${outcome}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
};

describe('per-registration APNs environment', () => {
  it('each environment reaches its own gateway; a gateway is connected only once a push needs it, then kept', async () => {
    const first = await h.enqueue('ios', { v: 2, apns_environment: 'sandbox' });
    expect((await h.settle(first.job)).returnvalue).toBe('delivered');
    expect(h.apns.requests.map((r) => r.token)).toEqual([first.push.push_token]);
    expect(production.sessionsOpened()).toBe(0);
    expect(h.providers().channelsOpened()['ios:default']).toEqual(['sandbox']);

    const prod = await Promise.all(Array.from({ length: 5 }, () => h.enqueue('ios', { v: 2, apns_environment: 'production' })));
    for (const { job } of prod) expect((await h.settle(job)).returnvalue).toBe('delivered');
    expect(production.requests.map((r) => r.token).sort()).toEqual(prod.map((p) => p.push.push_token).sort());
    expect(production.requests.every((r) => r.problems.length === 0 && r.headers['apns-topic'] === 'com.example.veil.voip')).toBe(true);
    expect(h.apns.requests).toHaveLength(1);
    expect(production.sessionsOpened()).toBe(1);
    expect(h.apns.sessionsOpened()).toBe(1);
    expect(h.providers().channelsOpened()['ios:default']!.sort()).toEqual(['production', 'sandbox']);
  });

  it('a v1 job queued by an older api (no apns_environment) is delivered on the default gateway', async () => {
    const { push, job } = await h.enqueue('ios', { v: 1 });
    expect('apns_environment' in push).toBe(false);
    expect((await h.settle(job)).returnvalue).toBe('delivered');
    expect(h.apns.requests.map((r) => r.token)).toEqual([push.push_token]);
    expect(production.requests).toHaveLength(0);
  });

  it('an explicit environment that answers BadDeviceToken is purged; the other gateway is never asked', async () => {
    const token = iosToken();
    production.answer(token, { status: 400, reason: 'BadDeviceToken' });
    const { push, job } = await h.enqueue('ios', { v: 2, apns_environment: 'production', push_token: token });
    expect((await h.settle(job)).returnvalue).toBe('token_invalid');
    expect(await registrationToken(h.db, push.jid, push.device_id)).toBeNull();
    expect(h.apns.requests).toHaveLength(0);
  });
});

describe('wrong-environment rule (no explicit environment)', () => {
  it('BadDeviceToken on the default gateway, accepted on the other: delivered, registration kept, the operator told', async () => {
    const before = await fallbackCount('delivered');
    const token = iosToken();
    h.apns.answer(token, { status: 400, reason: 'BadDeviceToken' });
    const { push, job } = await h.enqueue('ios', { v: 2, apns_environment: null, push_token: token });
    expect((await h.settle(job)).returnvalue).toBe('delivered');
    expect(h.apns.requests.map((r) => r.token)).toEqual([token]);
    expect(production.requests.map((r) => r.token)).toEqual([token]);
    expect(await registrationToken(h.db, push.jid, push.device_id)).toBe(token);
    const warned = h.logs.filter((l) => l.level === 40 && String(l.msg).includes('the app should register with apns_environment') && l.device_id === push.device_id);
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ tried: 'sandbox', then: 'production', outcome: 'delivered' });
    expect(JSON.stringify(warned[0])).not.toContain(token);
    expect(await fallbackCount('delivered')).toBe(before + 1);
  });

  it('BadDeviceToken on both gateways: purged, one request each', async () => {
    const before = await fallbackCount('rejected');
    const token = iosToken();
    h.apns.answer(token, { status: 400, reason: 'BadDeviceToken' });
    production.answer(token, { status: 400, reason: 'BadDeviceToken' });
    const { push, job } = await h.enqueue('ios', { v: 2, push_token: token });
    expect((await h.settle(job)).returnvalue).toBe('token_invalid');
    expect(await registrationToken(h.db, push.jid, push.device_id)).toBeNull();
    expect(h.apns.requests).toHaveLength(1);
    expect(production.requests).toHaveLength(1);
    expect(h.logsWith('APNs rejected push: BadDeviceToken').some((l) => l.device_id === push.device_id)).toBe(true);
    expect(await fallbackCount('rejected')).toBe(before + 1);
  });

  it('the other gateway failing (5xx) is retried and the registration kept, never purged on one answer alone', async () => {
    const token = iosToken();
    h.apns.answer(token, { status: 400, reason: 'BadDeviceToken' });
    production.answer(token, { status: 503, reason: 'ServiceUnavailable' }, { status: 200 });
    const { push, job } = await h.enqueue('ios', { v: 2, push_token: token });
    expect((await h.settle(job)).returnvalue).toBe('delivered');
    expect(production.requests).toHaveLength(2);
    expect(await registrationToken(h.db, push.jid, push.device_id)).toBe(token);
  });

  it('other token answers on the default gateway (Unregistered) purge as before, without trying the other one', async () => {
    const token = iosToken();
    h.apns.answer(token, { status: 410, reason: 'Unregistered' });
    const { push, job } = await h.enqueue('ios', { v: 2, push_token: token });
    expect((await h.settle(job)).returnvalue).toBe('token_invalid');
    expect(await registrationToken(h.db, push.jid, push.device_id)).toBeNull();
    expect(production.requests).toHaveLength(0);
  });
});
