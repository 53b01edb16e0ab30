import type { ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import type { PushPlatform } from '@veil/queue/contracts';
import { startHarness, type Harness } from './support/harness.ts';
import { startOwnRedis, type OwnRedis } from '@veil/testkit/redis-server';
import { spawnWorker } from './support/worker-process.ts';

let h: Harness | undefined;
let redis: OwnRedis | undefined;
let worker: ChildProcess | undefined;
afterEach(async () => {
  if (worker && worker.exitCode === null) worker.kill('SIGKILL');
  worker = undefined;
  // The harness closes its queue connections through Redis, so it must be up for that.
  await redis?.start();
  await h?.close();
  await redis?.kill();
  h = undefined;
  redis = undefined;
});

const PLATFORMS: PushPlatform[] = ['ios', 'android'];

function delivered(h: Harness, platform: PushPlatform, token: string): number {
  const requests = platform === 'ios' ? h.apns.requests.map((r) => r.token) : h.fcm.requests.map((r) => r.body?.message?.token);
  return requests.filter((t) => t === token).length;
}

describe('a Redis restart', () => {
  it('is survived by a running worker process: pushes enqueued after Redis is back are delivered, no worker restart', async () => {
    redis = await startOwnRedis();
    h = await startHarness({ ttlSeconds: 20, redisUrl: redis.url });
    const w = spawnWorker(h);
    worker = w.child;
    const metricsPort = await w.started;

    for (const platform of PLATFORMS) {
      const { push, job } = await h.enqueue(platform);
      expect((await h.settle(job)).returnvalue).toBe('delivered');
      expect(delivered(h, platform, push.push_token)).toBe(1);
    }

    await redis.kill();
    const downAt = Date.now();
    // While Redis is away the process stays up and says so quickly (/healthz is "process up").
    const health = await fetch(`http://127.0.0.1:${metricsPort}/healthz`, { signal: AbortSignal.timeout(1000) });
    expect(health.status).toBe(200);
    await new Promise((r) => setTimeout(r, 4000 - (Date.now() - downAt)));
    expect(w.child.exitCode).toBeNull();
    expect(w.lines.some((l) => Date.parse(String(l.time)) >= downAt && l.level === 50 && String(l.msg).includes('Redis'))).toBe(true);

    await redis.start();
    const startedAgain = Date.now();
    const after = await Promise.all(PLATFORMS.map((platform) => h!.enqueue(platform)));
    for (const { push, job } of after) {
      const done = await h.settle(job, 15_000);
      expect(done).toMatchObject({ state: 'completed', returnvalue: 'delivered' });
      expect(delivered(h, push.platform, push.push_token)).toBe(1);
    }
    // Reconnection is retried at least every second; a call cannot wait much longer than that.
    expect(Date.now() - startedAgain).toBeLessThan(10_000);
    expect(w.child.exitCode).toBeNull();
  });
});
