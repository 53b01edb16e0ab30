import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '@veil/testkit/ports';
import { createWorkerMetrics } from '../src/metrics.ts';
import { startMetricsServer } from '../src/metrics-server.ts';
import { createQueueProbe } from '../src/queue-probe.ts';
import { createProviderSet } from '../src/providers/provider-set.ts';
import { startHarness, type Harness } from './support/harness.ts';

let h: Harness | undefined;
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  await h?.close();
  h = undefined;
});

async function serve(redisUrl: string, queueBase: string) {
  const metrics = createWorkerMetrics();
  const server = await startMetricsServer(metrics, 0, { host: '127.0.0.1', probe: createQueueProbe({ redis: { mode: 'single', url: redisUrl }, queueBase }) });
  closers.push(() => server.close());
  const base = `http://127.0.0.1:${server.port}`;
  return {
    metrics,
    readyz: async () => {
      const res = await fetch(`${base}/readyz`);
      return { status: res.status, body: (await res.json()) as unknown };
    },
    scrape: async () => (await fetch(`${base}/metrics`)).text(),
  };
}

/** A TCP server that accepts connections and never answers: a hung Redis. */
async function blackHole(): Promise<string> {
  const sockets: Socket[] = [];
  const server: Server = createServer((s) => void sockets.push(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return `redis://127.0.0.1:${(server.address() as { port: number }).port}`;
}

describe('queue gauges, computed on scrape', () => {
  it('report waiting and delayed jobs per platform and the age of the oldest one', async () => {
    h = await startHarness();
    const srv = await serve(h.config.redisUrl, h.queueBase);
    // No worker runs, so the jobs stay where they are put.
    await h.queues.ios.add('push', {}, { timestamp: Date.now() - 45_000 });
    await h.queues.ios.add('push', {});
    await h.queues.ios.add('push', {}, { delay: 60_000 });
    await h.queues.android.add('push', {});

    await expect
      .poll(srv.scrape)
      .toContain('veil_worker_queue_jobs{platform="ios",state="waiting"} 2');
    const text = await srv.scrape();
    expect(text).toContain('veil_worker_queue_jobs{platform="ios",state="delayed"} 1');
    expect(text).toContain('veil_worker_queue_jobs{platform="ios",state="active"} 0');
    expect(text).toContain('veil_worker_queue_jobs{platform="ios",state="failed"} 0');
    expect(text).toContain('veil_worker_queue_jobs{platform="android",state="waiting"} 1');
    expect(text).toContain('veil_worker_redis_up 1');
    const age = (platform: string) => Number(new RegExp(`veil_worker_queue_oldest_job_age_seconds\\{platform="${platform}"\\} ([0-9.e+-]+)`).exec(text)?.[1]);
    expect(age('ios')).toBeGreaterThanOrEqual(45);
    expect(age('ios')).toBeLessThan(60);
    expect(age('android')).toBeLessThan(15);
  });

  it('an empty queue reports zero jobs and age 0', async () => {
    h = await startHarness();
    const srv = await serve(h.config.redisUrl, h.queueBase);
    await expect.poll(srv.scrape).toContain('veil_worker_queue_oldest_job_age_seconds{platform="android"} 0');
    expect(await srv.scrape()).toContain('veil_worker_queue_jobs{platform="android",state="waiting"} 0');
  });
});

describe('worker readiness', () => {
  it('/readyz answers 200 while Redis answers', async () => {
    h = await startHarness();
    const srv = await serve(h.config.redisUrl, h.queueBase);
    await expect.poll(async () => (await srv.readyz()).status).toBe(200);
    expect((await srv.readyz()).body).toEqual({ status: 'ready', redis: 'ok' });
  });

  it('/readyz answers 503 in the error shape and redis_up is 0 when Redis refuses connections', async () => {
    const srv = await serve(`redis://127.0.0.1:${await freePort()}`, 'unused');
    const ready = await srv.readyz();
    expect(ready).toEqual({ status: 503, body: { error: { code: 'not_ready', message: 'Redis not answering' } } });
    const text = await srv.scrape();
    expect(text).toContain('veil_worker_redis_up 0');
    // No made-up zeros for queues that could not be read.
    expect(text).not.toMatch(/^veil_worker_queue_jobs\{/m);
  });

  it('a Redis that accepts connections but never answers gets a 503 and a scrape within about a second', async () => {
    const srv = await serve(await blackHole(), 'unused');
    let started = Date.now();
    expect((await srv.readyz()).status).toBe(503);
    expect(Date.now() - started).toBeLessThan(2000);
    started = Date.now();
    expect(await srv.scrape()).toContain('veil_worker_redis_up 0');
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe('credentials gauge', () => {
  it('is 1 for a platform whose credentials loaded and 0 for one not configured', async () => {
    h = await startHarness({ env: { APNS_KEY_ID: '' } });
    const metrics = createWorkerMetrics();
    const providers = createProviderSet({ config: h.config, log: h.log, metrics });
    closers.push(() => providers.close());
    const text = await metrics.registry.metrics();
    expect(text).toContain('veil_worker_credentials_loaded{platform="ios",app_id="default"} 0');
    expect(text).toContain('veil_worker_credentials_loaded{platform="android",app_id="default"} 1');
  });
});
