import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upsertRegistration } from '@veil/db/registrations';
import { countUnansweredPushes } from '@veil/db/wakes';
import { createTestDb, type TestDb } from '@veil/testkit/db';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb('unanswered');
});
afterAll(async () => {
  await db.drop();
});

async function registered(wokeAt: number | null): Promise<{ jid: string; device_id: string }> {
  const device = { jid: `u${randomUUID().slice(0, 8)}@example.com`, device_id: randomUUID() };
  await upsertRegistration(db, { ...device, platform: 'android', push_token: `fcm-${randomUUID()}`, app_id: null });
  if (wokeAt !== null) await db.sql`UPDATE push_registrations SET last_wake_at = to_timestamp(${wokeAt / 1000}) WHERE jid = ${device.jid}`;
  return device;
}

const unanswered = async (d: { jid: string }) => (await db.sql<{ n: number }[]>`SELECT unanswered_pushes AS n FROM push_registrations WHERE jid = ${d.jid}`)[0]!.n;

describe('unanswered pushes counted in one statement', () => {
  it('counts each push after the last wake, per device, and leaves the others', async () => {
    const woke = await registered(1_700_000_005_000);
    const never = await registered(null);
    const counted = await countUnansweredPushes(db, [
      { ...woke, accepted_at: 1_700_000_004_000 }, // answered by the later wake
      { ...woke, accepted_at: 1_700_000_006_000 },
      { ...woke, accepted_at: 1_700_000_007_000 },
      { ...never, accepted_at: 1_700_000_001_000 },
      { jid: 'gone@example.com', device_id: randomUUID(), accepted_at: 1_700_000_001_000 },
    ]);
    expect(Object.fromEntries(counted)).toEqual({ [`${woke.jid} ${woke.device_id}`]: 2, [`${never.jid} ${never.device_id}`]: 1 });
    expect([await unanswered(woke), await unanswered(never)]).toEqual([2, 1]);
  });

  it('a device whose every push was answered is not touched', async () => {
    const woke = await registered(1_700_000_009_000);
    const before = (await db.sql<{ updated_at: Date }[]>`SELECT updated_at FROM push_registrations WHERE jid = ${woke.jid}`)[0]!.updated_at;
    expect((await countUnansweredPushes(db, [{ ...woke, accepted_at: 1_700_000_008_000 }])).size).toBe(0);
    expect(await unanswered(woke)).toBe(0);
    expect((await db.sql<{ updated_at: Date }[]>`SELECT updated_at FROM push_registrations WHERE jid = ${woke.jid}`)[0]!.updated_at).toEqual(before);
  });
});
