// Redis Cluster with a replica per master: the master holding the iOS queue is SIGKILLed under
// traffic. Its replica takes over; api and worker must follow without a restart.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../packages/config/src/config.ts';
import { pushQueueName } from '../../../packages/queue/src/contracts.ts';
import { queuePrefix } from '../../../packages/queue/src/redis.ts';
import { redisCommand, startCluster, type RedisClusterSet } from '../../../packages/testkit/src/redis-topology.ts';
import { callNotify, startHaStack, type HaStack, type NotifyResult } from './support/ha-stack.ts';

describe('Redis Cluster failover', () => {
  let cluster: RedisClusterSet;
  let stack: HaStack;

  beforeAll(async () => {
    cluster = await startCluster(3, 1);
    stack = await startHaStack();
  });
  afterAll(async () => {
    await stack?.close();
    await cluster?.stop();
  });

  it('answers 503 within 2 s while the iOS queue has no master (and /readyz says so), serves again within 15 s of the promotion, and delivers what came after', async () => {
    const iosTag = queuePrefix(loadConfig(cluster.env).redis, pushQueueName(stack.env.PUSH_QUEUE!, 'ios'));
    const { url, proc: api } = await stack.startApi(cluster.env);
    const worker = await stack.startWorker(cluster.env);
    const oldMaster = await cluster.masterOf(iosTag);
    const results: NotifyResult[] = [];
    const readiness: { sentAt: number; status: number }[] = [];
    const inFlight: Promise<void>[] = [];
    let n = 0;
    let killedAt = 0;
    let promotedAt = 0;
    let stopAt = Infinity;
    const deadline = Date.now() + 60_000;
    while (Date.now() < stopAt && Date.now() < deadline) {
      inFlight.push(callNotify(url, `cf-${++n}`).then((r) => void results.push(r)));
      await new Promise((r) => setTimeout(r, 50));
      if (!killedAt && results.filter((r) => r.status === 202).length >= 20) {
        killedAt = Date.now();
        await cluster.nodes.find((p) => p.port === oldMaster)!.kill();
      }
      if (killedAt && !promotedAt) {
        const sentAt = Date.now();
        inFlight.push(fetch(`${url}/readyz`).then((r) => void readiness.push({ sentAt, status: r.status }), () => {}));
        const owner = await cluster.masterOf(iosTag).catch(() => oldMaster);
        if (owner !== oldMaster) promotedAt = Date.now();
      }
      if (promotedAt && stopAt === Infinity && results.filter((r) => r.status === 202 && r.sentAt > promotedAt).length >= 20) stopAt = Date.now();
    }
    await Promise.all(inFlight);

    const counts: Record<string, number> = {};
    for (const r of results) counts[`${r.status} ${r.code ?? ''}`.trim()] = (counts[`${r.status} ${r.code ?? ''}`.trim()] ?? 0) + 1;
    const nodes = promotedAt ? '' : String(await redisCommand(cluster.nodes.find((p) => p.running())!.port, 'CLUSTER', 'NODES'));
    expect(promotedAt, `the replica took over (${JSON.stringify(counts)}); killed ${oldMaster}; nodes:\n${nodes}`).toBeGreaterThan(0);
    expect(results.filter((r) => r.ms >= 2000 || (r.status !== 202 && r.status !== 503)), 'answers slower than 2 s or not 202/503').toEqual([]);
    const firstBack = results.filter((r) => r.status === 202 && r.sentAt > promotedAt).sort((a, b) => a.sentAt - b.sentAt)[0];
    expect(firstBack, `call-notify served again: ${JSON.stringify(counts)}`).toBeDefined();
    expect(firstBack!.sentAt + firstBack!.ms - promotedAt).toBeLessThan(15_000);
    // Readiness asks the master of each queue's slot, not whichever node answers a PING: while the
    // iOS queue has no master, a load balancer must see this api as not ready. The outage ends when
    // call-notify is served again (the test's own view of the promotion can lag by a second:
    // cluster nodes learn it by gossip); half a second of margin on each side.
    const servedAgain = Math.min(promotedAt, ...results.filter((r) => r.status === 202 && r.sentAt > killedAt + 500).map((r) => r.sentAt));
    const outage = readiness.filter((r) => r.sentAt > killedAt + 500 && r.sentAt < servedAgain - 500);
    expect(outage.length, 'readiness checks during the outage').toBeGreaterThanOrEqual(3);
    const timeline = readiness.map((r) => `${r.sentAt - killedAt} ms: ${r.status}`).join(', ');
    expect(outage.filter((r) => r.status !== 503), `/readyz answers other than 503 while the iOS queue had no master (after the kill; promotion seen at ${promotedAt - killedAt} ms, call-notify served again at ${servedAgain - killedAt} ms): ${timeline}`).toEqual([]);
    await expect.poll(async () => (await fetch(`${url}/readyz`)).status, { timeout: 15_000, interval: 200 }).toBe(200);

    const tokens = [...stack.tokens.ios, ...stack.tokens.android];
    const expected = results.filter((r) => r.status === 202 && r.sentAt > promotedAt).flatMap((r) => tokens.map((t) => `${r.callId} ${t}`));
    const missing = () => expected.filter((e) => !stack.deliveries().includes(e));
    const end = Date.now() + 30_000; // the TTL: the worker retries within it, then drops the push
    while (missing().length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
    expect(missing(), `undelivered after the promotion; worker log:\n${tail(worker)}`).toEqual([]);
    for (const proc of [api, worker]) expect(proc.output()).not.toMatch(/CROSSSLOT/);
    console.info(
      `cluster failover: promotion seen ${promotedAt - killedAt} ms after the kill; first 202 ${firstBack!.sentAt + firstBack!.ms - promotedAt} ms after it; ` +
        `${results.filter((r) => r.status === 503).length} answers 503`,
    );
  }, 120_000);
});

/** The process's warnings and errors, last 30. */
function tail(proc: { lines(): Record<string, unknown>[] }): string {
  return proc.lines().filter((l) => Number(l.level) >= 40).slice(-30).map((l) => JSON.stringify(l)).join('\n');
}
