import { Router } from 'express';
import type { RedisClient } from '@veil/queue/redis';
import { timed, type Db } from '@veil/db/client';
import type { RedisWatchdog } from '../../redis-watchdog.ts';
import { sendError } from '../errors.ts';

/** Races a promise against a deadline; false when it fails or is late. */
async function answersWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true, () => false), late]);
  } finally {
    clearTimeout(timer);
  }
}

export function healthRoutes(deps: { db: Db; redis: RedisClient; redisWatchdog: RedisWatchdog; isMigrated: () => boolean; timeoutMs: number }): Router {
  const router = Router();

  // Liveness: the process answers. Never depends on Postgres or Redis, so an outage does not get it restarted.
  router.get('/healthz', (_req, res) => {
    res.status(200).json({ status: 'ok' });
  });

  // Readiness: both dependencies answer in time (and the schema is in); a load balancer stops routing here otherwise.
  router.get('/readyz', async (_req, res) => {
    const migrated = deps.isMigrated();
    const [postgres, redis] = await Promise.all([
      migrated && answersWithin(timed(deps.db, deps.db.sql`SELECT 1`), deps.timeoutMs),
      answersWithin(deps.redisWatchdog.watch(() => deps.redis.ping()), deps.timeoutMs),
    ]);
    if (postgres && redis) {
      res.status(200).json({ status: 'ready', postgres: 'ok', redis: 'ok' });
      return;
    }
    const down = [postgres ? null : migrated ? 'Postgres not answering' : 'Postgres not migrated yet', redis ? null : 'Redis not answering'];
    sendError(res, 503, 'not_ready', down.filter(Boolean).join('; '));
  });

  return router;
}
