import type { Redis } from 'ioredis';
import { QueueUnavailableError } from './http/errors.ts';
import type { RedisWatchdog } from './redis-watchdog.ts';

/**
 * One Redis step of a request (call state, wake state): answered now when the connection is not
 * ready, bounded by the connection's command timeout otherwise, and any failure is Redis being
 * unavailable (503), never a 500: the scripts' inputs were validated.
 */
export async function viaRedis<T>(redis: Redis, watchdog: RedisWatchdog, op: () => Promise<T>): Promise<T> {
  if (redis.status !== 'ready') throw new QueueUnavailableError('Redis connection is not ready');
  try {
    return await watchdog.watch(op);
  } catch (err) {
    throw new QueueUnavailableError(`Redis did not answer: ${(err as Error).message}`, { cause: err });
  }
}
