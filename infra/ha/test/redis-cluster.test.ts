// Redis Cluster: three masters, the real api and worker pointed at them with REDIS_CLUSTER_NODES,
// the iOS and Android queues placed on different masters.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushQueueName } from '../../../packages/queue/src/contracts.ts';
import { createRedis, queuePrefix } from '../../../packages/queue/src/redis.ts';
import { loadConfig } from '../../../packages/config/src/config.ts';
import { redisCommand, startCluster, type RedisClusterSet } from '../../../packages/testkit/src/redis-topology.ts';
import { callNotify, startHaStack, type HaStack } from './support/ha-stack.ts';

describe('Redis Cluster', () => {
  let cluster: RedisClusterSet;
  let stack: HaStack;

  beforeAll(async () => {
    cluster = await startCluster(3);
    stack = await startHaStack({ ios: 2, android: 2 });
  });
  afterAll(async () => {
    await stack?.close();
    await cluster?.stop();
  });

  it('queues and delivers every push with each platform queue on its own master, without CROSSSLOT', async () => {
    const target = loadConfig(cluster.env).redis;
    const names = { ios: pushQueueName(stack.env.PUSH_QUEUE!, 'ios'), android: pushQueueName(stack.env.PUSH_QUEUE!, 'android') };
    // Both default names hash into the first master's slots: move one, as an operator would.
    const iosMaster = await cluster.masterOf(queuePrefix(target, names.ios));
    const other = cluster.nodes.find((m) => m.port !== iosMaster)!.port;
    await cluster.moveSlotOf(queuePrefix(target, names.android), other);

    const api = await stack.startApi(cluster.env);
    const worker = await stack.startWorker(cluster.env);
    const ready = await fetch(`${api.url}/readyz`);
    expect(ready.status).toBe(200);

    const calls = await Promise.all(Array.from({ length: 30 }, (_, i) => callNotify(api.url, `cluster-${i}`)));
    expect(calls.map((c) => c.status)).toEqual(calls.map(() => 202));
    const tokens = [...stack.tokens.ios, ...stack.tokens.android];
    const expected = calls.flatMap((c) => tokens.map((t) => `${c.callId} ${t}`)).sort();
    await expect.poll(() => [...stack.deliveries()].sort(), { timeout: 20_000, interval: 200 }).toEqual(expected);

    // Each queue's keys live on its own master (its id counter is never removed).
    const client = createRedis(target, 'worker');
    try {
      expect(await client.exists(`${queuePrefix(target, names.ios)}:${names.ios}:id`)).toBe(1);
      expect(await client.exists(`${queuePrefix(target, names.android)}:${names.android}:id`)).toBe(1);
    } finally {
      client.disconnect();
    }
    expect(await cluster.masterOf(queuePrefix(target, names.ios))).toBe(iosMaster);
    expect(await cluster.masterOf(queuePrefix(target, names.android))).toBe(other);
    for (const proc of [api.proc, worker]) expect(proc.output()).not.toMatch(/CROSSSLOT|error/i);
  }, 90_000);

  // Runs last: it kills a master for good (this cluster has no replicas).
  it("turns both services' /readyz to 503 when the master of a queue's slot is down, though other nodes answer PING", async () => {
    const target = loadConfig(cluster.env).redis;
    const api = await stack.startApi(cluster.env);
    const worker = await stack.startWorker(cluster.env);
    const metricsPort = worker.lines().find((l) => l.msg === 'Worker started')!.metrics_port as number;
    const workerReady = `http://127.0.0.1:${metricsPort}/readyz`;
    await expect.poll(async () => (await fetch(workerReady)).status, { timeout: 10_000 }).toBe(200);
    expect((await fetch(`${api.url}/readyz`)).status).toBe(200);

    const iosMaster = await cluster.masterOf(queuePrefix(target, pushQueueName(stack.env.PUSH_QUEUE!, 'ios')));
    await cluster.nodes.find((n) => n.port === iosMaster)!.kill();
    const alive = cluster.nodes.find((n) => n.running())!;
    expect(await redisCommand(alive.port, 'PING')).toBe('PONG');
    await expect.poll(async () => (await fetch(`${api.url}/readyz`)).status, { timeout: 10_000, interval: 100 }).toBe(503);
    await expect.poll(async () => (await fetch(workerReady)).status, { timeout: 10_000, interval: 100 }).toBe(503);
  }, 60_000);
});
