import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { PUSH_JOB, PUSH_PLATFORMS, pushJobOptions, pushQueueName, type PushJob, type PushPlatform } from '@veil/queue/contracts';
import { Redis } from 'ioredis';
import { REPO_ROOT, findPids, readCpuSeconds } from '../lib/proc.ts';

export interface FloorFigures {
  rate: number;
  calls: number;
  /** CPU ms per call. */
  producer: number;
  consumer: number;
  redis: number;
  /** Scripts and blocking pops the clients sent, per call. */
  sent: number;
  /** Commands Redis ran per call, including those inside the scripts. */
  run: number;
}


/**
 * The floor under CPU per call: what BullMQ alone costs for one call's two push jobs (one per
 * platform queue: the SPEC's "one push job per device", our per-platform queues), or in the
 * layouts of FloorLayout, with a
 * processor that does nothing: no HTTP, no Postgres, no call state, no logs. This process adds
 * two jobs per call with our job options (dedup, attempts, custom backoff, removeOnComplete) on
 * an open-loop schedule, as the api would; a child process consumes them as the worker would.
 */
/**
 * How a call's pushes map onto BullMQ: `per-platform` is veil-push (one job per device, one
 * queue per platform); `one-queue` keeps one job per device but puts both platforms' jobs in one
 * queue; `one-job` carries the call's devices in a single job. The last two are measured for the
 * trade-off only.
 */
export type FloorLayout = 'per-platform' | 'one-queue' | 'one-job';

export async function benchBullmqFloor(redisUrl: string, rate: number, layout: FloorLayout = 'per-platform', seconds = 10): Promise<FloorFigures> {
  const base = `veil-floor-${randomBytes(4).toString('hex')}`;
  const admin = new Redis(redisUrl);
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  const queues = PUSH_PLATFORMS.map((p) => new Queue(pushQueueName(base, p), { connection }));
  const child = spawn(process.execPath, ['--import', 'tsx', `${REPO_ROOT}bench/bullmq-floor-consumer.ts`, base], {
    env: { ...process.env, REDIS_URL: redisUrl },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  try {
    await new Promise((resolve, reject) => {
      child.once('message', resolve);
      child.once('exit', (code) => reject(new Error(`floor consumer exited (${code})`)));
    });
    const sample = async () => ({
      redis: new Map(findPids('redis-server').map((pid) => [pid, readCpuSeconds(pid)])),
      consumer: readCpuSeconds(child.pid!),
      producer: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
      commands: parseCommandStats(await admin.info('commandstats')),
    });
    const before = await sample();
    const started = performance.now();
    const total = rate * seconds;
    const adds: Promise<unknown>[] = [];
    let sent = 0;
    while (sent < total) {
      const due = Math.min(total, Math.floor((rate * (performance.now() - started)) / 1000));
      for (; sent < due; sent++) {
        // Jobs as the api builds them (a call's iOS and Android device), with our job options.
        const jobs = PUSH_PLATFORMS.map((platform) => floorJob(platform, `floor-call-${sent}`));
        const add = (q: Queue, data: object, job: PushJob) => adds.push(q.add(PUSH_JOB, data, pushJobOptions(job, 5, 30)));
        if (layout === 'one-job') add(queues[0]!, { devices: jobs }, jobs[0]!);
        else for (const [i, job] of jobs.entries()) add(queues[layout === 'per-platform' ? i : 0]!, job, job);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    await Promise.all(adds);
    // Until both queues are empty and nothing is active.
    for (;;) {
      const counts = await Promise.all(queues.map((q) => q.getJobCounts('wait', 'active', 'delayed')));
      if (counts.every((c) => (c.wait ?? 0) + (c.active ?? 0) + (c.delayed ?? 0) === 0)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const after = await sample();
    let redisCpu = 0;
    for (const [pid, end] of after.redis) redisCpu += end - (before.redis.get(pid) ?? 0);
    const perCall = (x: number) => (1000 * x) / total;
    return {
      rate,
      calls: total,
      producer: perCall(after.producer - before.producer),
      consumer: perCall(after.consumer - before.consumer),
      redis: perCall(redisCpu),
      sent: (after.commands.sent - before.commands.sent) / total,
      run: (after.commands.run - before.commands.run) / total,
    };
  } finally {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    await Promise.all(queues.map((q) => q.obliterate({ force: true }).then(() => q.close())));
    connection.disconnect();
    admin.disconnect();
  }
}

function floorJob(platform: PushPlatform, callId: string): PushJob {
  const now = Date.now();
  return {
    v: 2,
    kind: 'call',
    apns_environment: null,
    platform,
    jid: 'bob@floor.example',
    device_id: randomUUID(),
    push_token: platform === 'ios' ? randomBytes(32).toString('hex') : `floor-fcm-${randomBytes(16).toString('base64url')}`,
    app_id: null,
    caller_name: 'Alice',
    call_id: callId,
    call_type: 'audio',
    enqueued_at: now,
    deadline: now + 30_000,
  };
}

/** Scripts and blocking pops are what clients send; the rest of commandstats ran inside scripts. */
function parseCommandStats(stats: string): { sent: number; run: number } {
  const calls = (name: string) => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
  const run = [...stats.matchAll(/calls=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
  return { sent: calls('evalsha') + calls('bzpopmin'), run };
}
