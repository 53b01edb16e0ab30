import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upsertRegistration } from '@veil/db/registrations';
import { createDb } from '@veil/db/client';
import { createTestDb, TEST_DATABASE_URL, type TestDb } from '@veil/testkit/db';
import { captureLogs } from '@veil/testkit/logs';
import { createPushAcceptedRecorder } from '../src/push-accepted-recorder.ts';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb('accepted');
});
afterAll(async () => {
  await db.drop();
});

async function registered(): Promise<{ jid: string; device_id: string }> {
  const device = { jid: `u${randomUUID().slice(0, 8)}@example.com`, device_id: randomUUID() };
  await upsertRegistration(db, { ...device, platform: 'android', push_token: `fcm-${randomUUID()}`, app_id: null });
  return device;
}

async function lastPushAt(d: { jid: string; device_id: string }): Promise<number | null> {
  const [row] = await db.sql<{ last_push_at: Date | null }[]>`SELECT last_push_at FROM push_registrations WHERE jid = ${d.jid} AND device_id = ${d.device_id}`;
  return row?.last_push_at?.getTime() ?? null;
}

describe('last_push_at batches', () => {
  it('one batch records every device, each at its latest accepted push', async () => {
    const [a, b] = [await registered(), await registered()];
    const { log } = captureLogs('worker');
    const recorder = createPushAcceptedRecorder(db, log, { windowMs: 10_000 });
    recorder.record({ ...a, accepted_at: 1_700_000_002_000 });
    recorder.record({ ...a, accepted_at: 1_700_000_001_000 });
    recorder.record({ ...b, accepted_at: 1_700_000_003_000 });
    await recorder.flush();
    expect(await lastPushAt(a)).toBe(1_700_000_002_000);
    expect(await lastPushAt(b)).toBe(1_700_000_003_000);
  });

  it('an older push never overwrites a newer one, and an unknown device is ignored', async () => {
    const a = await registered();
    const { log } = captureLogs('worker');
    const recorder = createPushAcceptedRecorder(db, log, { windowMs: 10_000 });
    recorder.record({ ...a, accepted_at: 1_700_000_005_000 });
    await recorder.flush();
    recorder.record({ ...a, accepted_at: 1_700_000_004_000 });
    recorder.record({ jid: 'nobody@example.com', device_id: randomUUID(), accepted_at: 1_700_000_006_000 });
    await recorder.flush();
    expect(await lastPushAt(a)).toBe(1_700_000_005_000);
  });

  it('a full batch is written without waiting for the window', async () => {
    const devices = [await registered(), await registered()];
    const { log } = captureLogs('worker');
    const recorder = createPushAcceptedRecorder(db, log, { windowMs: 60_000, maxBatch: 2 });
    for (const d of devices) recorder.record({ ...d, accepted_at: 1_700_000_007_000 });
    await expect.poll(async () => Promise.all(devices.map(lastPushAt)), { timeout: 5_000 }).toEqual([1_700_000_007_000, 1_700_000_007_000]);
  });

  it('Postgres refusing the batch is logged and does not throw', async () => {
    const closed = createDb({ url: TEST_DATABASE_URL, schema: db.schema!, max: 1 });
    await closed.close();
    const logs = captureLogs('worker');
    const recorder = createPushAcceptedRecorder(closed, logs.log, { windowMs: 1 });
    recorder.record({ jid: 'a@example.com', device_id: randomUUID(), accepted_at: Date.now() });
    await recorder.flush();
    expect(logs.withMsg('Recording last_push_at failed')).toHaveLength(1);
  });
});
