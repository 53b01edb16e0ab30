import { Router } from 'express';
import { isDeviceOfUser, recordWake } from '@veil/db/wakes';
import type { PendingWake } from '@veil/queue/call-state';
import type { AppContext } from '../../context.ts';
import { requireMigrated } from '../errors.ts';
import { internalWebhook } from '../internal-access.ts';
import { instanceDeviceId, parseBody, registeredSchema } from '../validation.ts';

/**
 * Kamailio saw a REGISTER from a user it pushed within the TTL: the proof that a phone woke.
 * The wake goes to the device named by the Contact's +sip.instance (apps use their device_id),
 * else to the only device pushed, else it is counted as unattributed.
 */
export function registeredRoutes(ctx: AppContext): Router {
  const { config, log, metrics } = ctx;
  const router = Router();

  router.post(
    '/api/v1/push/registered',
    ...internalWebhook(config),
    requireMigrated(ctx.isMigrated),
    async (req, res) => {
      const body = parseBody(registeredSchema, req.body);
      const now = Date.now();
      // The user is found as call-notify finds its callee: username, narrowed by SIP_DOMAIN.
      const inDomain = (jid: string) => !config.sipDomain || jid.endsWith(`@${config.sipDomain}`);
      const pushed = (await ctx.producer.calls.pendingWakes(body.username, now)).filter((w) => inDomain(w.jid));
      const woken = (n: 0 | 1) => res.status(200).json({ woken: n });
      if (pushed.length === 0) return woken(0);

      const context = { username: body.username, instance: body.instance, user_agent: body.user_agent };
      const named = instanceDeviceId(body.instance);
      let wake: PendingWake | undefined = named ? pushed.find((w) => w.device_id === named) : undefined;
      if (!wake && named && (await isDeviceOfUser(ctx.db, body.username, config.sipDomain, named))) {
        // One of the user's devices registered, but not one that was pushed: no push to credit.
        log.info({ ...context, device_id: named }, 'REGISTER from a device that was not pushed; no wake credited');
        return woken(0);
      }
      if (!wake) {
        if (pushed.length !== 1) {
          metrics.wakesUnattributed.inc();
          log.info({ ...context, pushed: pushed.length }, 'Wake not attributed: the instance names no pushed device');
          return woken(0);
        }
        wake = pushed[0]!;
      }
      // A refresh REGISTER of a device whose wake was already credited changes nothing.
      if (wake.credited) return woken(0);
      // Taken in Redis first: of two api processes (or a repeated REGISTER) only one credits it.
      if (!(await ctx.producer.calls.creditWake(body.username, wake))) return woken(0);
      const wakeMs = Math.max(0, now - wake.accepted_at);
      let recorded: boolean;
      try {
        recorded = await recordWake(ctx.db, wake.jid, wake.device_id, now, wakeMs);
      } catch (err) {
        // Postgres must not lose the wake: hand it back so Kamailio's next REGISTER can credit it.
        await ctx.producer.calls.returnWake(body.username, wake).catch(() => {});
        throw err;
      }
      if (!recorded) {
        // Deregistered, evicted or moved since the push: nobody left to credit.
        log.info({ ...context, jid: wake.jid, device_id: wake.device_id }, 'Wake not credited: the registration is gone');
        return woken(0);
      }
      metrics.wakeSeconds.observe({ platform: wake.platform }, wakeMs / 1000);
      log.info({ ...context, jid: wake.jid, device_id: wake.device_id, platform: wake.platform, wake_ms: wakeMs }, 'Phone woke: REGISTER after push');
      return woken(1);
    },
  );

  return router;
}
