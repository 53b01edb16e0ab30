import type { RedisClient } from './redis.ts';

/**
 * Resolves true once the connection is ready, false after `ms`; never rejects. (events.once
 * would also reject on the next 'error' event, long after a timeout won the race: an
 * unhandled rejection that takes the process down while Redis is unreachable.)
 */
export function waitForRedisReady(redis: RedisClient, ms: number): Promise<boolean> {
  if (redis.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ready: boolean) => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      resolve(ready);
    };
    const onReady = () => done(true);
    const timer = setTimeout(() => done(false), ms);
    redis.on('ready', onReady);
  });
}
