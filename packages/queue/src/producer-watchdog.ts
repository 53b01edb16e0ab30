import type { RedisClient } from './redis.ts';
import type { Logger } from '@veil/log/logger';

export interface ProducerWatchdog {
  /** Runs one Redis operation on the watched connection, counting the ones that time out. */
  watch<T>(op: () => Promise<T>): Promise<T>;
}

/**
 * ioredis only reconnects when its socket closes. Behind a path that silently drops bytes (NAT
 * state lost, a failover behind the same address) the socket stays "ready" and every command
 * times out until the kernel gives up on the connection, minutes later. So after `maxTimeouts`
 * consecutive operations that failed no sooner than the command timeout (no answer in time,
 * decided by the clock rather than by the error's wording), the connection is dropped and
 * ioredis reconnects per its retryStrategy. Any success resets the count; a fast failure (not
 * connected, refused) leaves it alone, since ioredis is already reconnecting then.
 */
export function createProducerWatchdog(redis: RedisClient, opts: { timeoutMs: number; log: Logger; maxTimeouts?: number }): ProducerWatchdog {
  const maxTimeouts = opts.maxTimeouts ?? 2;
  let timeouts = 0;
  // Set while a forced reconnect is under way: the old socket lingers up to ioredis's
  // disconnectTimeout and commands still time out on it meanwhile; one reconnect is enough.
  let reconnecting = false;
  redis.on('ready', () => {
    reconnecting = false;
    timeouts = 0;
  });

  return {
    async watch(op) {
      const started = performance.now();
      try {
        const result = await op();
        timeouts = 0;
        return result;
      } catch (err) {
        const timedOut = performance.now() - started >= opts.timeoutMs;
        if (timedOut && !reconnecting && redis.status === 'ready' && ++timeouts >= maxTimeouts) {
          opts.log.warn({ timeouts, error: (err as Error).message }, 'Redis commands keep timing out; reconnecting');
          reconnecting = true;
          timeouts = 0;
          redis.disconnect(true);
        }
        throw err;
      }
    },
  };
}
