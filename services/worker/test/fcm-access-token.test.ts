import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { PushJob } from '@veil/queue/contracts';
import { startFcmStandIn, type FcmStandIn } from '@veil/testkit/fcm-stand-in';
import { createFcmProvider } from '../src/providers/fcm.ts';
import { FcmAccessToken, loadFcmServiceAccount } from '../src/providers/fcm-access-token.ts';
import type { PushProvider } from '../src/providers/types.ts';
import { androidToken } from './support/harness.ts';

// Seconds instead of the production hour and five minutes: a token is refreshed once it has
// less than REFRESH_EARLY_MS left, i.e. from LIFETIME_S - REFRESH_EARLY_MS after it was issued.
const LIFETIME_S = 5;
const REFRESH_EARLY_MS = 3000;

let fcm: FcmStandIn | undefined;
let provider: PushProvider | undefined;
let dir: string | undefined;
afterEach(async () => {
  await provider?.close();
  await fcm?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  fcm = provider = dir = undefined;
});

function push(): PushJob {
  const now = Date.now();
  return {
    v: 1, platform: 'android', jid: 'bob@example.com', device_id: randomUUID(), push_token: androidToken(), app_id: null,
    caller_name: 'Alice', call_id: `call-${randomUUID()}`, call_type: 'audio', enqueued_at: now, deadline: now + 30_000,
  };
}

describe('FCM OAuth2 access token', () => {
  it('is refreshed early: once, while the old one is still valid, and no push ever gets a 401', async () => {
    fcm = await startFcmStandIn();
    fcm.accessTokenLifetimeSeconds = LIFETIME_S;
    dir = mkdtempSync(join(tmpdir(), 'veil-fcm-token-'));
    const account = loadFcmServiceAccount(fcm.writeServiceAccount(dir));
    if (typeof account === 'string') throw new Error(account);
    provider = createFcmProvider({
      apiUrl: fcm.url,
      account,
      accessToken: new FcmAccessToken(account, { refreshEarlyMs: REFRESH_EARLY_MS }),
    });

    // Nothing is fetched before the first push, so the first token is issued after this instant.
    const beforeFirst = Date.now();
    expect(await provider.send(push())).toBe('delivered');
    expect(fcm.tokenRequests).toBe(1);
    const first = fcm.requests[0]!;

    // Wait until the first token is inside its refresh margin but still valid, then push a burst.
    const refreshDueBy = first.at + (LIFETIME_S * 1000 - REFRESH_EARLY_MS);
    await new Promise((r) => setTimeout(r, refreshDueBy + 300 - Date.now()));
    const burst = await Promise.all(Array.from({ length: 10 }, () => provider!.send(push())));
    expect(burst).toEqual(Array(10).fill('delivered'));
    expect(await provider.send(push())).toBe('delivered');

    // Exactly one new fetch for the whole burst and the push after it.
    expect(fcm.tokenRequests).toBe(2);
    const [a, ...later] = fcm.requests.map((r) => r.authorization);
    expect(later).toHaveLength(11);
    expect(new Set(later).size).toBe(1);
    expect(later[0]).not.toBe(a);
    // Early: the new token was in use before the old one could have expired.
    expect(Math.max(...fcm.requests.slice(1).map((r) => r.at))).toBeLessThan(beforeFirst + LIFETIME_S * 1000);
    // Every push went out once, with a token the endpoint accepted.
    expect(fcm.requests.map((r) => r.answered)).toEqual(Array(12).fill({ status: 200 }));
  });
});
