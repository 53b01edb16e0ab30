import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { RedisTarget } from '@veil/config/redis-target';

/** What createRedis hands out: one server (also the master behind Sentinel) or a Cluster. */
export type RedisClient = Redis | Cluster;
export type RedisRole = 'producer' | 'worker';

/** Reconnect quickly but never give up: a failover or a restarted Redis must be followed without a restart. */
const reconnectDelay = (times: number) => Math.min(times * 100, 1000);

/**
 * Producer (API): fail fast instead of queueing commands while Redis is away, so a request
 * gets a 503 in about a second rather than hanging on an offline queue (BullMQ's "going to
 * production" guide: enableOfflineQueue false for producers).
 * Worker: BullMQ's blocking commands need maxRetriesPerRequest null and reconnect forever.
 */
function roleOptions(role: RedisRole): RedisOptions {
  return role === 'producer'
    ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 1000, commandTimeout: 1000 }
    : { maxRetriesPerRequest: null, connectTimeout: 2000 };
}

// enableAutoPipelining stays off in every mode: BullMQ users saw "Job is not in the active list"
// errors with it (taskforcesh/bullmq#457), and the api already sends a call's jobs in one round
// trip (addBulk). natMap is not needed: the nodes announce addresses the services can reach.

/**
 * After a Sentinel failover an old master that comes back is a replica: a connection still
 * on it gets READONLY for every write. Reconnecting asks the sentinels for the master again.
 */
const reconnectOnReadonly = (err: Error) => err.message.startsWith('READONLY');

export function createRedis(url: string, role: RedisRole, extra?: RedisOptions): Redis;
export function createRedis(target: string | RedisTarget, role: RedisRole, extra?: RedisOptions): RedisClient;
export function createRedis(target: string | RedisTarget, role: RedisRole, extra: RedisOptions = {}): RedisClient {
  const t: RedisTarget = typeof target === 'string' ? { mode: 'single', url: target } : target;
  const base: RedisOptions = { ...roleOptions(role), retryStrategy: reconnectDelay, lazyConnect: false };
  if (t.mode === 'single') return new Redis(t.url, { ...base, ...extra });
  const auth = { ...(t.username ? { username: t.username } : {}), ...(t.password ? { password: t.password } : {}), ...(t.tls ? { tls: {} } : {}) };
  if (t.mode === 'sentinel') {
    return new Redis({
      ...base,
      ...auth,
      sentinels: t.sentinels,
      name: t.name,
      db: t.db,
      sentinelRetryStrategy: reconnectDelay,
      // No failoverDetector: in ioredis 5.11 its +switch-master handler disconnects the connector
      // even while the connection is already re-resolving the master after the old one died; the
      // connect then fails with "Connection is closed", the client goes to status "end" and never
      // reconnects (seen under load in infra/ha/test/sentinel-failover.test.ts: 503 for good).
      // A master that died closes its sockets anyway; one that was demoted while reachable (a
      // partition, a manual failover) answers READONLY, and that reconnects through the sentinels.
      reconnectOnError: reconnectOnReadonly,
      ...extra,
    });
  }
  const options: ClusterOptions = {
    redisOptions: { ...base, ...auth, ...extra },
    // The producer's fail-fast applies to the cluster's own queue too (slots not yet known).
    enableOfflineQueue: role !== 'producer',
    clusterRetryStrategy: reconnectDelay,
    // A master failover inside the cluster answers MOVED/CLUSTERDOWN for a moment: retry briefly.
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    slotsRefreshTimeout: 1000,
    // Every BullMQ command writes or must see its own writes: never read from replicas.
    scaleReads: 'master',
  };
  return new Cluster(t.nodes, options);
}

/** The per-command timeout the client was built with (Cluster keeps it per node). */
export function commandTimeoutOf(client: RedisClient): number | undefined {
  return client instanceof Cluster ? client.options.redisOptions?.commandTimeout : client.options.commandTimeout;
}

/**
 * BullMQ's key prefix for one queue. BullMQ's Lua scripts touch several keys of a queue at
 * once, which Redis Cluster only allows when they hash to one slot: on a Cluster the prefix is
 * the hash tag `{<queue name>}`, so each queue lives in one slot and the two platform queues
 * spread over the masters (https://docs.bullmq.io/patterns/redis-cluster). One server and
 * Sentinel keep BullMQ's default `bull`, so upgrading a running deployment orphans no job.
 */
export function queuePrefix(target: string | RedisTarget, name: string): string {
  return typeof target !== 'string' && target.mode === 'cluster' ? `{${name}}` : 'bull';
}

/** Spread into every Queue, Worker and QueueEvents of a push queue: `new Queue(name, { connection, ...queueOptions(target, name) })`. */
export function queueOptions(target: string | RedisTarget, name: string): { prefix: string } {
  return { prefix: queuePrefix(target, name) };
}
