import { Router } from 'express';
import type { Redis } from 'ioredis';
import type { Config } from '@veil/config/config';
import type { Db } from '@veil/db/client';
import { isDeviceOfUser, recordWake } from '@veil/db/wakes';
import type { Logger } from '@veil/log/logger';
import type { CallState, PendingWake } from '@veil/queue/call-state';
import type { ApiMetrics } from '../../metrics.ts';
import type { RedisWatchdog } from '../../redis-watchdog.ts';
import { viaRedis } from '../../redis-guard.ts';
import { requireMigrated } from '../errors.ts';
import { requireAllowedSource, requireSharedSecret } from '../internal-access.ts';
import { jsonBody } from '../json-body.ts';
import { instanceDeviceId, parseBody, registeredSchema } from '../validation.ts';

export interface RegisteredDeps {
  config: Config;
  db: Db;
  redis: Redis;
  redisWatchdog: RedisWatchdog;
  callState: CallState;
  isMigrated: () => boolean;
  log: Logger;
  metrics: ApiMetrics;
}

/**
 * Kamailio saw a REGISTER from a user it pushed within the TTL: the proof that a phone woke.
 * The wake goes to the device named by the Contact's +sip.instance (apps use their device_id),
 * else to the only device pushed, else it is counted as unattributed.
 */
export function registeredRoutes(deps: RegisteredDeps): Router {
  const { config, log, metrics } = deps;
  const router = Router();

  router.post(
    '/api/v1/push/registered',
    requireAllowedSource(config.callNotifyAllowedCidrs),
    requireSharedSecret(config.callNotifySecret),
    jsonBody,
    requireMigrated(deps.isMigrated),
    async (req, res) => {
      const body = parseBody(registeredSchema, req.body);
      const now = Date.now();
      const inDomain = (jid: string) => !config.sipDomain || jid.endsWith(`@${config.sipDomain}`);
      const pushed = (await viaRedis(deps.redis, deps.redisWatchdog, () => deps.callState.pendingWakes(body.username, now))).filter((w) => inDomain(w.jid));
      if (pushed.length === 0) {
        res.status(200).json({ woken: 0 });
        return;
      }
      const context = { username: body.username, instance: body.instance, user_agent: body.user_agent };
      const named = instanceDeviceId(body.instance);
      let wake: PendingWake | undefined = named ? pushed.find((w) => w.device_id === named) : undefined;
      if (!wake && named && (await isDeviceOfUser(deps.db, body.username, config.sipDomain, named))) {
        // One of the user's devices registered, but not one that was pushed: no push to credit.
        log.info({ ...context, device_id: named }, 'REGISTER from a device that was not pushed; no wake credited');
        res.status(200).json({ woken: 0 });
        return;
      }
      if (!wake) {
        if (pushed.length !== 1) {
          metrics.wakesUnattributed.inc();
          log.info({ ...context, pushed: pushed.length }, 'Wake not attributed: the instance names no pushed device');
          res.status(200).json({ woken: 0 });
          return;
        }
        wake = pushed[0]!;
      }
      // Taken in Redis first: of two api processes (or a repeated REGISTER) only one credits it.
      const taken = await viaRedis(deps.redis, deps.redisWatchdog, () => deps.callState.creditWake(body.username, wake));
      if (!taken) {
        res.status(200).json({ woken: 0 });
        return;
      }
      const wakeMs = Math.max(0, now - wake.accepted_at);
      try {
        await recordWake(deps.db, wake.jid, wake.device_id, now, wakeMs);
      } catch (err) {
        // Postgres must not lose the wake: hand it back so Kamailio's next REGISTER can credit it.
        await deps.callState.returnWake(body.username, wake).catch(() => {});
        throw err;
      }
      metrics.wakeSeconds.observe({ platform: wake.platform }, wakeMs / 1000);
      log.info({ ...context, jid: wake.jid, device_id: wake.device_id, platform: wake.platform, wake_ms: wakeMs }, 'Phone woke: REGISTER after push');
      res.status(200).json({ woken: 1 });
    },
  );

  return router;
}
