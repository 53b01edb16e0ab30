// Scale-out: two api and two worker processes on one Redis. Kamailio may post one call to
// either api (or both, when it retries through another): every device still rings once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisCommand, startRedisServer, type RedisProcess } from '../../../packages/testkit/src/redis-topology.ts';
import { callNotify, startHaStack, type HaStack } from './support/ha-stack.ts';

describe('two api and two worker processes on one Redis', () => {
  let redis: RedisProcess;
  let stack: HaStack;

  beforeAll(async () => {
    redis = await startRedisServer();
    stack = await startHaStack({ ios: 3, android: 3 });
  });
  afterAll(async () => {
    await stack?.close();
    await redis?.kill();
  });

  it('rings each device once per call_id posted to both apis, each push sent by exactly one worker', async () => {
    const env = { REDIS_URL: redis.url };
    const [a, b] = await Promise.all([stack.startApi(env), stack.startApi(env)]);
    await Promise.all([stack.startWorker(env), stack.startWorker(env)]);

    const callIds = Array.from({ length: 40 }, (_, i) => `scale-${i}`);
    // The same call_id to both apis at the same moment, twice (a retransmission); five calls at a time.
    const answers = [];
    for (let i = 0; i < callIds.length; i += 5) {
      const wave = callIds.slice(i, i + 5);
      answers.push(...(await Promise.all(wave.flatMap((id) => [callNotify(a.url, id), callNotify(b.url, id), callNotify(b.url, id), callNotify(a.url, id)]))));
    }
    expect(answers.filter((r) => r.status !== 202)).toEqual([]);

    const tokens = [...stack.tokens.ios, ...stack.tokens.android];
    const expected = callIds.flatMap((id) => tokens.map((t) => `${id} ${t}`)).sort();
    await expect.poll(() => stack.deliveries().length, { timeout: 20_000, interval: 100 }).toBeGreaterThanOrEqual(expected.length);
    // Both workers now idle on empty queues: nothing more can arrive, so the count is final.
    await expect.poll(() => queueBacklog(redis.port), { timeout: 10_000, interval: 100 }).toBe(0);
    expect([...stack.deliveries()].sort()).toEqual(expected);
  }, 90_000);
});

/** Jobs still waiting, delayed or active in either platform queue. */
async function queueBacklog(port: number): Promise<number> {
  let n = 0;
  for (const platform of ['ios', 'android']) {
    const key = (s: string) => `bull:veil-push-${platform}:${s}`;
    n += Number(await redisCommand(port, 'LLEN', key('wait')));
    n += Number(await redisCommand(port, 'LLEN', key('active')));
    n += Number(await redisCommand(port, 'ZCARD', key('delayed')));
  }
  return n;
}
