import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { upsertRegistration } from '@veil/db/registrations';
import { createLogger } from '@veil/log/logger';
import { createTestDb, type TestDb } from '@veil/testkit/db';
import { obliterateQueue, testQueueName, TEST_REDIS_URL } from '@veil/testkit/queue';
import { createWorkerMetrics } from '../src/metrics.ts';
import { maintenanceQueueName, startRegistrationExpiry } from '../src/registration-expiry.ts';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb('worker_expiry');
});
afterAll(async () => {
  await db?.drop();
});

const running: { close(): Promise<void> }[] = [];
const queues: string[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()));
  for (const q of queues.splice(0)) await obliterateQueue(maintenanceQueueName(q));
});

/** One worker process's clean-up, with its own log and metrics (as separate processes have). */
function startProcess(queueBase: string, everyMs: number, maxAgeDays = 270) {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ service: 'worker', level: 'info', destination: { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) } });
  const metrics = createWorkerMetrics();
  running.push(startRegistrationExpiry({ config: { redis: { mode: 'single', url: TEST_REDIS_URL }, registrationMaxAgeDays: maxAgeDays }, db, log, metrics, queueBase, everyMs }));
  return { runs: () => lines.filter((l) => l.msg === 'Expired registrations deleted'), metrics };
}

async function seed(jid: string, ageDays: number): Promise<string> {
  const device = randomUUID();
  await upsertRegistration(db, { jid, device_id: device, platform: 'android', push_token: `tok-${randomUUID()}`, app_id: null });
  await db.sql`UPDATE push_registrations SET updated_at = now() - make_interval(days => ${ageDays}) WHERE device_id = ${device}`;
  return device;
}
const exists = async (device: string) => (await db.sql`SELECT 1 FROM push_registrations WHERE device_id = ${device}`).length === 1;

describe('REGISTRATION_MAX_AGE_DAYS clean-up', () => {
  it('deletes registrations not updated for longer than the max age, keeps the others, counts and logs them', async () => {
    const jid = `old-${randomUUID()}@example.com`;
    const old = [await seed(jid, 31), await seed(jid, 400)];
    const recent = [await seed(jid, 29), await seed(jid, 0)];
    const queueBase = testQueueName('expiry');
    queues.push(queueBase);
    const p = startProcess(queueBase, 60_000, 30);
    await expect.poll(() => p.runs().length, { timeout: 15_000 }).toBeGreaterThanOrEqual(1);
    for (const d of old) expect(await exists(d)).toBe(false);
    for (const d of recent) expect(await exists(d)).toBe(true);
    expect(p.runs()[0]).toMatchObject({ count: 2, max_age_days: 30 });
    const metric = (await p.metrics.registry.getSingleMetricAsString('veil_worker_registrations_expired_total')).trim().split('\n').at(-1);
    expect(metric).toBe('veil_worker_registrations_expired_total 2');
  });

  it('runs once per period however many worker processes share the queue', async () => {
    const queueBase = testQueueName('expiry');
    queues.push(queueBase);
    const everyMs = 400;
    const started = Date.now();
    const processes = [startProcess(queueBase, everyMs), startProcess(queueBase, everyMs), startProcess(queueBase, everyMs)];
    const total = () => processes.reduce((n, p) => n + p.runs().length, 0);
    await expect.poll(total, { timeout: 15_000 }).toBeGreaterThanOrEqual(4);
    const elapsed = Date.now() - started;
    // One run per period (plus the first at start); a timer per process would give three per period.
    expect(total()).toBeLessThanOrEqual(Math.floor(elapsed / everyMs) + 2);
  });
});
