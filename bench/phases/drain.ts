import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import type { RedisTarget } from '@veil/config/redis-target';
import { PUSH_JOB, pushJobOptions, pushQueueName, type PushJob } from '@veil/queue/contracts';
import { createRedis, queueOptions } from '@veil/queue/redis';
import type { Arrival } from '../lib/stack.ts';

export const DRAIN_JOBS = 20_000;

/**
 * Queues DRAIN_JOBS pushes (half iOS, half Android) while the queues are paused, then resumes
 * them and times the whole backlog reaching the stand-ins: pushes per second. `appIds` spreads
 * the pushes round-robin over those apps (null: the default credentials).
 */
export async function benchDrain(
  redis: string | RedisTarget,
  queueBase: string,
  arrivals: Arrival[],
  startDrainers: () => Promise<void>,
  appIds: (string | null)[] = [null],
): Promise<{ pushesPerSecond: number; seconds: number; missing: number }> {
  const connection = createRedis(redis, 'worker');
  const queue = (name: string) => new Queue(name, { connection, ...queueOptions(redis, name) });
  const queues = { ios: queue(pushQueueName(queueBase, 'ios')), android: queue(pushQueueName(queueBase, 'android')) };
  await Promise.all(Object.values(queues).map((q) => q.pause()));
  const prefix = `drain-${randomUUID()}-`;
  const now = Date.now();
  for (let i = 0; i < DRAIN_JOBS; i += 1000) {
    const batch: Record<'ios' | 'android', { name: string; data: PushJob; opts: ReturnType<typeof pushJobOptions> }[]> = { ios: [], android: [] };
    for (let j = i; j < Math.min(DRAIN_JOBS, i + 1000); j++) {
      const platform = j % 2 === 0 ? 'ios' : 'android';
      const job: PushJob = {
        v: 2,
        kind: 'call',
        apns_environment: null,
        platform,
        jid: `drain${j}@bench.example`,
        device_id: randomUUID(),
        push_token: platform === 'ios' ? (j.toString(16).padStart(8, '0') + 'cd'.repeat(28)).slice(0, 64) : `drain-fcm-${j}`,
        // j >> 1: both platforms cycle through every app.
        app_id: appIds[(j >> 1) % appIds.length]!,
        caller_name: 'Alice',
        call_id: `${prefix}${j}`,
        call_type: 'audio',
        enqueued_at: now,
        // Long enough that no push of the backlog expires: this measures throughput, not the TTL.
        deadline: now + 600_000,
      };
      batch[platform].push({ name: PUSH_JOB, data: job, opts: pushJobOptions(job, 5, 600) });
    }
    await Promise.all([queues.ios.addBulk(batch.ios), queues.android.addBulk(batch.android)]);
  }
  await startDrainers();
  const count = () => arrivals.reduce((n, a) => n + (a.callId.startsWith(prefix) ? 1 : 0), 0);
  const before = arrivals.length;
  const started = performance.now();
  await Promise.all(Object.values(queues).map((q) => q.resume()));
  const until = started + 180_000;
  while (arrivals.length - before < DRAIN_JOBS && performance.now() < until) await new Promise((r) => setTimeout(r, 20));
  const seconds = (performance.now() - started) / 1000;
  const delivered = count();
  await Promise.all(Object.values(queues).map((q) => q.close()));
  connection.disconnect();
  return { pushesPerSecond: delivered / seconds, seconds, missing: DRAIN_JOBS - delivered };
}
