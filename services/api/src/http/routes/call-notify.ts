import { Router } from 'express';
import type { RedisClient } from '@veil/queue/redis';
import type { Config } from '@veil/config/config';
import type { Db } from '@veil/db/client';
import { findCalleeDevices } from '@veil/db/registrations';
import type { Logger } from '@veil/log/logger';
import { tokenHash } from '@veil/log/token-hash';
import { buildPushJobs, enqueuePushJobs, type PushQueues } from '../../enqueue.ts';
import type { ApiMetrics } from '../../metrics.ts';
import type { RedisWatchdog } from '../../redis-watchdog.ts';
import { QueueUnavailableError, requireMigrated } from '../errors.ts';
import { requireAllowedSource, requireSharedSecret } from '../internal-access.ts';
import { jsonBody } from '../json-body.ts';
import { callNotifySchema, parseBody } from '../validation.ts';

export interface CallNotifyDeps {
  config: Config;
  db: Db;
  queues: PushQueues;
  /** The producer connection behind the queues; its status says whether Redis can take jobs now. */
  redis: RedisClient;
  /** Rebuilds the producer connection when enqueueing keeps timing out on it. */
  redisWatchdog: RedisWatchdog;
  isMigrated: () => boolean;
  log: Logger;
  metrics: ApiMetrics;
  /** Bound on handing the jobs to Redis; the SPEC wants a 503 within 2 s. */
  enqueueTimeoutMs: number;
}

/** Kamailio's webhook for a callee who is not registered over SIP. */
export function callNotifyRoutes(deps: CallNotifyDeps): Router {
  const { config, log, metrics } = deps;
  const router = Router();

  router.post(
    '/api/v1/push/call-notify',
    requireAllowedSource(config.callNotifyAllowedCidrs),
    requireSharedSecret(config.callNotifySecret),
    jsonBody,
    requireMigrated(deps.isMigrated),
    async (req, res) => {
      const body = parseBody(callNotifySchema, req.body);
      // callee_domain narrows like SIP_DOMAIN and wins over it; neither means "every domain".
      const domain = body.callee_domain ?? config.sipDomain;
      const callee = { callee: body.callee_username, domain, call_id: body.call_id };
      const devices = await findCalleeDevices(deps.db, body.callee_username, domain);
      if (devices.length === 0) {
        metrics.callNotify.inc({ outcome: 'no_registrations' });
        log.info(callee, 'No push registrations found');
        res.status(200).json({ status: 'no_registrations', devices: 0 });
        return;
      }
      const jobs = buildPushJobs(
        devices,
        { caller_name: body.caller_display_name || body.caller_username, call_id: body.call_id, call_type: body.call_type },
        config.pushTtlSeconds,
      );
      try {
        await deps.redisWatchdog.watch(() =>
          enqueuePushJobs(deps.queues, jobs, {
            maxAttempts: config.pushMaxAttempts,
            ttlSeconds: config.pushTtlSeconds,
            timeoutMs: deps.enqueueTimeoutMs,
            connected: () => deps.redis.status === 'ready',
          }),
        );
      } catch (err) {
        if (err instanceof QueueUnavailableError) metrics.callNotify.inc({ outcome: 'unavailable' });
        throw err;
      }
      for (const job of jobs) metrics.jobsEnqueued.inc({ platform: job.platform });
      metrics.callNotify.inc({ outcome: 'queued' });
      log.info(
        { ...callee, call_type: body.call_type, devices: jobs.map((j) => ({ jid: j.jid, device_id: j.device_id, platform: j.platform, token_hash: tokenHash(j.push_token) })) },
        'Push jobs queued',
      );
      res.status(202).json({ status: 'queued', devices: jobs.length });
    },
  );

  return router;
}
