import { loadavg } from 'node:os';
import { loadConfig } from '@veil/config/config';
import type { RedisTarget } from '@veil/config/redis-target';
import { pushQueueName } from '@veil/queue/contracts';
import { queuePrefix } from '@veil/queue/redis';
import { startCluster, type RedisClusterSet } from '@veil/testkit/redis-topology';
import type { ServiceProcess } from '../lib/proc.ts';
import type { Stack } from '../lib/stack.ts';
import { fmt } from '../lib/stats.ts';
import { benchDrain } from './drain.ts';

const WORKER_COUNTS = [1, 2, 4];

/**
 * Drain with 1, 2 and 4 worker processes, on the bench's one Redis and on a private 3-master
 * Redis Cluster with the iOS and Android queues on different masters: where adding workers
 * stops helping, and whether spreading the queues over masters moves that point.
 */
export async function scalePhase(stack: Stack, rows: string[][], say: (line: string) => void): Promise<void> {
  say('6. drain with 1, 2, 4 worker processes: one Redis, then a 3-master cluster ...');
  await drainWithWorkers(stack, rows, 'one Redis', stack.redisUrl, {});
  let cluster: RedisClusterSet | null = null;
  try {
    cluster = await startCluster(3);
    const target = loadConfig(cluster.env).redis;
    // Both default queue names hash onto the first master; move Android's slot to another one.
    const ios = await cluster.masterOf(queuePrefix(target, pushQueueName(stack.queueBase, 'ios')));
    await cluster.moveSlotOf(queuePrefix(target, pushQueueName(stack.queueBase, 'android')), cluster.nodes.find((m) => m.port !== ios)!.port);
    // The bench's REDIS_URL names a db index, which a Cluster does not have.
    await drainWithWorkers(stack, rows, '3-master cluster', target, { ...cluster.env, REDIS_URL: 'redis://127.0.0.1' });
  } finally {
    await cluster?.stop();
  }
}

async function drainWithWorkers(stack: Stack, rows: string[][], label: string, target: string | RedisTarget, env: Record<string, string>): Promise<void> {
  const workers: ServiceProcess[] = [];
  try {
    for (const n of WORKER_COUNTS) {
      while (workers.length < n) workers.push(await stack.startWorker(`scale-${label.replace(/\W+/g, '-')}-${workers.length + 1}`, env));
      // Where the cores went: the workers together, and this process (stand-ins + queueing the backlog).
      const cpu = () => ({ workers: workers.reduce((t, w) => t + w.cpuSeconds(), 0), bench: (process.cpuUsage().user + process.cpuUsage().system) / 1e6 });
      const before = cpu();
      const r = await benchDrain(target, stack.queueBase, stack.arrivals, async () => {});
      const after = cpu();
      const share = (k: 'workers' | 'bench') => `${fmt((100 * (after[k] - before[k])) / r.seconds, 0)}%`;
      rows.push([
        `drain: ${n} worker process${n > 1 ? 'es' : ''}, ${label}`,
        `${fmt(r.pushesPerSecond, 0)} pushes/s`,
        `${fmt(r.seconds, 2)} s`,
        `missing ${r.missing}; CPU per drain second (100% = one core, queueing included): workers ${share('workers')}, bench ${share('bench')}; load ${fmt(loadavg()[0]!, 1)}`,
      ]);
    }
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
}
