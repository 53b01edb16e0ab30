import { Cluster } from 'ioredis';
import type { RedisTarget } from '@veil/config/redis-target';
import { callStateTag } from './call-state.ts';
import { PUSH_PLATFORMS, pushQueueName } from './contracts.ts';
import { queuePrefix, type RedisClient } from './redis.ts';

/** A key in each hash slot a deployment writes to: both platform queues and the call state. */
export function readinessKeys(target: string | RedisTarget, queueBase: string): string[] {
  const queues = PUSH_PLATFORMS.map((p) => {
    const name = pushQueueName(queueBase, p);
    return `${queuePrefix(target, name)}:${name}:meta`;
  });
  return [...queues, `${callStateTag(queueBase)}:ready`];
}

/**
 * Resolves when Redis answers for every given key, rejects otherwise. One server or Sentinel:
 * a PING. A Cluster: one EXISTS per key, each routed to the master that owns the key's slot,
 * because a PING reaches one node of the cluster and would answer "ready" while the master
 * holding a queue is down (every push to it failing).
 */
export async function pingFor(client: RedisClient, keys: string[]): Promise<void> {
  if (client instanceof Cluster) await Promise.all(keys.map((key) => client.exists(key)));
  else await client.ping();
}
