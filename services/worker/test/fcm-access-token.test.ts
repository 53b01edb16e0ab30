import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { PushJob } from '@veil/queue/contracts';
import { startFcmStandIn, type FcmStandIn } from '@veil/testkit/fcm-stand-in';
import { createFcmProvider } from '../src/providers/fcm.ts';
import { FcmAccessToken, loadFcmServiceAccount, type FcmAccessTokenOptions } from '../src/providers/fcm-access-token.ts';
import type { PushProvider } from '../src/providers/types.ts';
import { androidToken, startHarness, type Harness } from './support/harness.ts';
import { captureLogs } from '@veil/testkit/logs';
import { waitUntil } from '@veil/testkit/wait';

// Seconds instead of the production hour, five minutes and 30 s: a token is refreshed in the
// background once it has less than REFRESH_EARLY_MS left, and is not sent once it has less than
// EXPIRY_SKEW_MS left.
const LIFETIME_S = 5;
const REFRESH_EARLY_MS = 3000;
const EXPIRY_SKEW_MS = 500;
const REFRESH_RETRY_MS = 1000;
const TIMINGS: Omit<FcmAccessTokenOptions, 'log'> = { refreshEarlyMs: REFRESH_EARLY_MS, expirySkewMs: EXPIRY_SKEW_MS, refreshRetryMs: REFRESH_RETRY_MS };

let fcm: FcmStandIn | undefined;
let provider: PushProvider | undefined;
let dir: string | undefined;
let h: Harness | undefined;
afterEach(async () => {
  await provider?.close();
  await fcm?.close();
  await h?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  fcm = provider = dir = h = undefined;
});

function push(): PushJob {
  const now = Date.now();
  return {
    v: 2, kind: 'call', apns_environment: null, platform: 'android', jid: 'bob@example.com', device_id: randomUUID(), push_token: androidToken(), app_id: null,
    caller_name: 'Alice', call_id: `call-${randomUUID()}`, call_type: 'audio', enqueued_at: now, deadline: now + 30_000,
  };
}

const sleepUntil = (at: number) => new Promise((r) => setTimeout(r, Math.max(0, at - Date.now())));
/** Fails instead of hanging when pushes wait for a token endpoint that does not answer. */
function within<T>(ms: number, work: Promise<T>): Promise<T> {
  return Promise.race([work, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`not done within ${ms} ms`)), ms))]);
}

/** A provider on the stand-in with test timings; its token cache logs into `logs`. */
async function startProvider(): Promise<{ fcm: FcmStandIn; provider: PushProvider; logs: Record<string, unknown>[] }> {
  fcm = await startFcmStandIn();
  fcm.accessTokenLifetimeSeconds = LIFETIME_S;
  dir = mkdtempSync(join(tmpdir(), 'veil-fcm-token-'));
  const account = loadFcmServiceAccount(fcm.writeServiceAccount(dir));
  if (typeof account === 'string') throw new Error(account);
  const { log, lines } = captureLogs('worker');
  const logs = lines();
  provider = createFcmProvider({ apiUrl: fcm.url, account, accessToken: new FcmAccessToken(account, { ...TIMINGS, log }), pushTtlSeconds: 30 });
  return { fcm, provider, logs };
}

describe('FCM OAuth2 access token', () => {
  it('is refreshed early: once, in the background while the old one is still valid, and no push ever gets a 401', async () => {
    const { fcm, provider } = await startProvider();

    // Nothing is fetched before the first push, so the first token is issued after this instant.
    const beforeFirst = Date.now();
    expect(await provider.send(push())).toBe('delivered');
    expect(fcm.tokenRequests).toBe(1);
    const first = fcm.requests[0]!;

    // Wait until the first token is inside its refresh margin but still valid, then push a burst:
    // it goes out at once with the old token and sets off one refresh for all of it.
    const refreshDueBy = first.at + (LIFETIME_S * 1000 - REFRESH_EARLY_MS);
    await sleepUntil(refreshDueBy + 300);
    const burst = await Promise.all(Array.from({ length: 10 }, () => provider.send(push())));
    expect(burst).toEqual(Array(10).fill('delivered'));
    await waitUntil(() => fcm.tokenRequests === 2);
    await new Promise((r) => setTimeout(r, 200));
    expect(await provider.send(push())).toBe('delivered');

    // Exactly one new fetch for the whole burst and the push after it.
    expect(fcm.tokenRequests).toBe(2);
    const auth = fcm.requests.map((r) => r.authorization);
    expect(auth).toHaveLength(12);
    expect(new Set(auth.slice(0, 11)).size).toBe(1);
    expect(auth[11]).not.toBe(auth[0]);
    // Early: the new token was in use before the old one could have expired.
    expect(fcm.requests[11]!.at).toBeLessThan(beforeFirst + LIFETIME_S * 1000);
    // Every push went out once, with a token the endpoint accepted.
    expect(fcm.requests.map((r) => r.answered)).toEqual(Array(12).fill({ status: 200 }));
  });

  it('a failing token endpoint inside the refresh margin costs no push: the cached token serves, and the next use after recovery refreshes', async () => {
    const { fcm, provider, logs } = await startProvider();
    expect(await provider.send(push())).toBe('delivered');
    const first = fcm.requests[0]!;
    const old = first.authorization;

    fcm.tokenEndpoint = 'error';
    await sleepUntil(first.at + (LIFETIME_S * 1000 - REFRESH_EARLY_MS) + 200);
    const started = Date.now();
    const burst = await within(1000, Promise.all(Array.from({ length: 10 }, () => provider.send(push()))));
    expect(burst).toEqual(Array(10).fill('delivered'));
    expect(Date.now() - started).toBeLessThan(1000);
    // One background attempt for the whole burst; it failed, and says so without any secret.
    await waitUntil(() => logs.some((l) => l.msg === 'FCM access token refresh failed; pushes keep the cached token'));
    expect(fcm.tokenRequests).toBe(2);
    expect(logs.find((l) => l.level === 40)).toMatchObject({ status: 503 });

    // Within the retry interval more pushes do not hammer the endpoint.
    expect(await Promise.all([provider.send(push()), provider.send(push())])).toEqual(['delivered', 'delivered']);
    expect(fcm.tokenRequests).toBe(2);

    // The endpoint recovers; the next use after the interval refreshes (still not waiting for it).
    fcm.tokenEndpoint = 'ok';
    await sleepUntil(started + REFRESH_RETRY_MS + 100);
    expect(await provider.send(push())).toBe('delivered');
    await waitUntil(() => fcm.tokenRequests === 3);
    await new Promise((r) => setTimeout(r, 200));
    expect(await provider.send(push())).toBe('delivered');

    const auth = fcm.requests.map((r) => r.authorization);
    expect(auth).toHaveLength(15);
    expect(new Set(auth.slice(0, 14))).toEqual(new Set([old]));
    expect(auth[14]).not.toBe(old);
    expect(fcm.requests[14]!.at).toBeLessThan(first.at + LIFETIME_S * 1000 - EXPIRY_SKEW_MS);
    expect(fcm.requests.map((r) => r.answered)).toEqual(Array(15).fill({ status: 200 }));
    const logged = JSON.stringify(logs);
    for (const a of new Set(auth)) expect(logged).not.toContain(a!.replace(/^Bearer /, ''));
    expect(logged).not.toContain('assertion');
  });

  it('a token endpoint that does not answer does not hold up pushes while the cached token is valid', async () => {
    const { fcm, provider } = await startProvider();
    expect(await provider.send(push())).toBe('delivered');
    const first = fcm.requests[0]!;

    fcm.tokenEndpoint = 'hang';
    await sleepUntil(first.at + (LIFETIME_S * 1000 - REFRESH_EARLY_MS) + 200);
    const started = Date.now();
    const burst = await within(1000, Promise.all(Array.from({ length: 10 }, () => provider.send(push()))));
    expect(burst).toEqual(Array(10).fill('delivered'));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(fcm.tokenRequests).toBe(2);
    expect(new Set(fcm.requests.map((r) => r.authorization)).size).toBe(1);
  });

  it('once the cached token runs out during a token endpoint outage, the push fails retryable and the queue delivers it after recovery', async () => {
    h = await startHarness({ ttlSeconds: 20, maxAttempts: 5, fcmAccessToken: TIMINGS });
    h.fcm.accessTokenLifetimeSeconds = 3;
    h.startWorker();
    const harness = h;
    const requestsFor = (token: string) => harness.fcm.requests.filter((r) => r.body?.message?.token === token);
    const retryableFailure = (jobId: string | undefined) =>
      harness.logsWith('FCM push failed, retryable').some((l) => l.jobId === jobId);

    const a = await h.enqueue('android');
    expect((await h.settle(a.job)).returnvalue).toBe('delivered');
    const first = requestsFor(a.push.push_token)[0]!;
    const old = first.authorization;
    h.fcm.tokenEndpoint = 'error';

    // While the token is inside its margin but valid, the outage costs nothing.
    await sleepUntil(first.at + 1100);
    const b = await h.enqueue('android');
    expect((await h.settle(b.job)).returnvalue).toBe('delivered');
    expect(requestsFor(b.push.push_token).map((r) => r.authorization)).toEqual([old]);
    expect(retryableFailure(b.job.id)).toBe(false);

    // The outage outlasts the token: the push has to wait for a fetch, which fails, retryable.
    await sleepUntil(first.at + 3000 + 100);
    const c = await h.enqueue('android');
    await waitUntil(() => retryableFailure(c.job.id));
    h.fcm.tokenEndpoint = 'ok';
    const done = await h.settle(c.job);
    expect(done).toMatchObject({ state: 'completed', returnvalue: 'delivered' });
    // The expired token was never sent; the retry carried a fresh one.
    const sent = requestsFor(c.push.push_token);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.authorization).not.toBe(old);
    expect(h.fcm.requests.map((r) => r.answered)).toEqual(Array(3).fill({ status: 200 }));
    expect(h.logsWith('FCM push failed').some((l) => l.jobId === c.job.id && /OAuth token unavailable/.test(String(l.msg)))).toBe(true);
  });
});
