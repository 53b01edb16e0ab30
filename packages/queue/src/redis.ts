import { Redis, type RedisOptions } from 'ioredis';

/**
 * Producer (API): fail fast instead of queueing commands while Redis is away, so a request
 * gets a 503 in about a second rather than hanging on an offline queue.
 * Worker: BullMQ's blocking commands need maxRetriesPerRequest null and reconnect forever.
 */
export function createRedis(url: string, role: 'producer' | 'worker', extra: RedisOptions = {}): Redis {
  const base: RedisOptions =
    role === 'producer'
      ? {
          enableOfflineQueue: false,
          maxRetriesPerRequest: 1,
          connectTimeout: 1000,
          commandTimeout: 1000,
        }
      : { maxRetriesPerRequest: null, connectTimeout: 2000 };
  return new Redis(url, {
    ...base,
    retryStrategy: (times) => Math.min(times * 100, 1000),
    lazyConnect: false,
    ...extra,
  });
}
