import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { registrationToken, startHarness, type Harness } from './support/harness.ts';
import { waitUntil as until } from '@veil/testkit/wait';
import { spawnWorker } from './support/worker-process.ts';

let h: Harness | undefined;
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  await h?.close();
  h = undefined;
});

describe('the worker process', () => {
  it('serves /healthz and /metrics, and SIGTERM finishes in-flight pushes then exits 0', async () => {
    h = await startHarness({ ttlSeconds: 20 });
    const w = spawnWorker(h);
    children.push(w.child);
    const port = await w.started;

    const first = await h.enqueue('ios');
    expect((await h.settle(first.job)).returnvalue).toBe('delivered');
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toContain('veil_worker_pushes_total{platform="ios",outcome="delivered",app_id="default"} 1');
    expect(metrics).toContain('veil_worker_push_latency_seconds_bucket');
    expect(metrics).toContain('veil_worker_registrations_purged_total');
    expect(metrics).toContain('veil_worker_push_retries_total');
    expect(metrics).toContain('veil_worker_pushes_expired_total');

    h.apns.answer(null, { status: 200, delayMs: 1500 });
    const inflight = await Promise.all(Array.from({ length: 3 }, () => h!.enqueue('ios')));
    await until(() => h!.apns.requests.length >= 4);
    const exited = new Promise<number | null>((resolve) => w.child.once('exit', (code) => resolve(code)));
    w.child.kill('SIGTERM');
    expect(await exited).toBe(0);
    for (const { job } of inflight) expect((await h.settle(job, 1000)).returnvalue).toBe('delivered');
  });

  it('kill -9 with pushes in flight loses none: another worker finishes them', async () => {
    h = await startHarness({ ttlSeconds: 20 });
    h.apns.answer(null, { hang: true });
    const w = spawnWorker(h);
    children.push(w.child);
    await w.started;
    const jobs = await Promise.all(Array.from({ length: 3 }, () => h!.enqueue('ios')));
    await until(() => h!.apns.requests.length >= 3);
    w.child.kill('SIGKILL');
    await new Promise((r) => w.child.once('exit', r));

    h.apns.answer(null, { status: 200 });
    h.startWorker();
    const results = await Promise.all(jobs.map(({ job }) => h!.settle(job, 20_000)));
    expect(results.map((r) => r.returnvalue)).toEqual(['delivered', 'delivered', 'delivered']);
  });
});

describe('platforms not configured', () => {
  it('missing APNs key id: iOS jobs log "APNs not configured", keep the registration; Android still delivers', async () => {
    h = await startHarness({ env: { APNS_KEY_ID: '' } });
    h.startWorker();
    expect(h.logs.some((l) => l.level === 50 && String(l.msg).startsWith('APNs not configured: APNS_KEY_ID'))).toBe(true);
    const ios = await h.enqueue('ios');
    const android = await h.enqueue('android');
    expect((await h.settle(ios.job)).returnvalue).toBe('not_configured');
    expect((await h.settle(android.job)).returnvalue).toBe('delivered');
    expect(h.logsWith('APNs not configured').some((l) => l.jobId === ios.job.id)).toBe(true);
    expect(await registrationToken(h.db, ios.push.jid, ios.push.device_id)).toBe(ios.push.push_token);
    expect(h.apns.requests).toHaveLength(0);
  });

  it('malformed APNS_KEY_ID: the worker process keeps running, iOS "not configured", Android still delivers', async () => {
    h = await startHarness({ env: { APNS_KEY_ID: 'short' } });
    const w = spawnWorker(h);
    children.push(w.child);
    await w.started;
    expect(w.lines.some((l) => l.level === 50 && l.msg === 'APNs not configured: APNS_KEY_ID must be 10 letters or digits')).toBe(true);
    const ios = await h.enqueue('ios');
    const android = await h.enqueue('android');
    expect((await h.settle(ios.job)).returnvalue).toBe('not_configured');
    expect((await h.settle(android.job)).returnvalue).toBe('delivered');
    expect(await registrationToken(h.db, ios.push.jid, ios.push.device_id)).toBe(ios.push.push_token);
    expect(h.apns.requests).toHaveLength(0);
    expect(h.fcm.requests).toHaveLength(1);
  });

  it('malformed service account: Android jobs log "FCM not configured", keep the registration; iOS still delivers', async () => {
    h = await startHarness();
    writeFileSync(h.env.FCM_SERVICE_ACCOUNT_PATH!, '{"project_id": "x", "private_key": "nope"');
    h.startWorker();
    expect(h.logs.some((l) => l.level === 50 && String(l.msg).includes('FCM not configured') && String(l.msg).includes('not JSON'))).toBe(true);
    const android = await h.enqueue('android');
    const ios = await h.enqueue('ios');
    expect((await h.settle(android.job)).returnvalue).toBe('not_configured');
    expect((await h.settle(ios.job)).returnvalue).toBe('delivered');
    expect(h.logsWith('FCM not configured').some((l) => l.jobId === android.job.id)).toBe(true);
    expect(await registrationToken(h.db, android.push.jid, android.push.device_id)).toBe(android.push.push_token);
    expect(h.fcm.requests).toHaveLength(0);
  });
});
