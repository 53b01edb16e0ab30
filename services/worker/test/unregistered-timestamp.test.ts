import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registrationToken, startHarness, iosToken, type Harness } from './support/harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ ttlSeconds: 20, maxAttempts: 3 });
});
afterAll(() => h.close());

const HOUR = 3600_000;

describe('APNs 410 Unregistered timestamp (SPEC: purge only if last updated before it)', () => {
  it('a row updated before the timestamp is purged; one re-registered since keeps its token', async () => {
    const unregisteredAt = Date.now() - HOUR;
    const staleToken = iosToken();
    const renewedToken = iosToken();
    h.apns.answer(staleToken, { status: 410, reason: 'Unregistered', timestamp: unregisteredAt });
    h.apns.answer(renewedToken, { status: 410, reason: 'Unregistered', timestamp: unregisteredAt });
    // Both jobs are queued before any worker runs, so the rows' ages are set before the answers arrive.
    const stale = await h.enqueue('ios', { push_token: staleToken });
    const renewed = await h.enqueue('ios', { push_token: renewedToken });
    // stale: last registered a day ago, before Apple found the token invalid.
    await h.db.sql`UPDATE push_registrations SET updated_at = now() - interval '1 day' WHERE device_id = ${stale.push.device_id}`;
    // renewed: registered the same token again after the timestamp (its row is updated "now").
    h.startWorker();
    const [s, r] = await Promise.all([h.settle(stale.job), h.settle(renewed.job)]);
    expect(s.returnvalue).toBe('token_invalid');
    expect(r.returnvalue).toBe('token_invalid');
    expect(await registrationToken(h.db, stale.push.jid, stale.push.device_id)).toBeNull();
    expect(await registrationToken(h.db, renewed.push.jid, renewed.push.device_id)).toBe(renewedToken);
    const kept = h.logsWith('Registration already re-registered or gone; nothing purged').find((l) => l.jobId === renewed.job.id);
    expect(kept).toBeDefined();
    expect(h.logsWith('APNs rejected push: Unregistered').filter((l) => l.jobId === stale.job.id || l.jobId === renewed.job.id)).toHaveLength(2);
  });

  it('a 410 stamped when it is answered purges a registration made just before', async () => {
    const token = iosToken();
    h.apns.answer(token, { status: 410, reason: 'Unregistered' });
    const { push, job } = await h.enqueue('ios', { push_token: token });
    expect((await h.settle(job)).returnvalue).toBe('token_invalid');
    expect(await registrationToken(h.db, push.jid, push.device_id)).toBeNull();
  });
});
