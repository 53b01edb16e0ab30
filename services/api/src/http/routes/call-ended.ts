import { Router } from 'express';
import type { Redis } from 'ioredis';
import type { Config } from '@veil/config/config';
import type { Logger } from '@veil/log/logger';
import type { CallState } from '@veil/queue/call-state';
import { buildCallEndedJobs } from '@veil/queue/call-state';
import { enqueuePushJobs, type PushQueues } from '../../enqueue.ts';
import type { ApiMetrics } from '../../metrics.ts';
import type { RedisWatchdog } from '../../redis-watchdog.ts';
import { viaRedis } from '../../redis-guard.ts';
import { QueueUnavailableError } from '../errors.ts';
import { requireAllowedSource, requireSharedSecret } from '../internal-access.ts';
import { jsonBody } from '../json-body.ts';
import { callEndedSchema, parseBody } from '../validation.ts';

export interface CallEndedDeps {
  config: Config;
  queues: PushQueues;
  redis: Redis;
  redisWatchdog: RedisWatchdog;
  callState: CallState;
  log: Logger;
  metrics: ApiMetrics;
  enqueueTimeoutMs: number;
}

/**
 * Kamailio's "the call is over" (caller hung up, nobody answered in time, a device answered or
 * declined). Pushes not yet accepted by Apple/Google are withdrawn; devices already rung get one
 * "call ended" message. Only Redis is read: the call's devices were recorded by call-notify.
 */
export function callEndedRoutes(deps: CallEndedDeps): Router {
  const { config, log, metrics } = deps;
  const router = Router();

  router.post(
    '/api/v1/push/call-ended',
    requireAllowedSource(config.callNotifyAllowedCidrs),
    requireSharedSecret(config.callNotifySecret),
    jsonBody,
    async (req, res) => {
      const body = parseBody(callEndedSchema, req.body);
      const domain = body.callee_domain ?? config.sipDomain;
      const context = { callee: body.callee_username, domain, call_id: body.call_id, reason: body.reason };
      try {
        const ended = await viaRedis(deps.redis, deps.redisWatchdog, () =>
          deps.callState.end(body.call_id, body.callee_username, domain, body.reason),
        );
        const jobs = buildCallEndedJobs(ended.devices, body.call_id, body.reason, config.pushTtlSeconds);
        if (jobs.length > 0) {
          await deps.redisWatchdog.watch(() =>
            enqueuePushJobs(deps.queues, jobs, {
              maxAttempts: config.pushMaxAttempts,
              ttlSeconds: config.pushTtlSeconds,
              timeoutMs: deps.enqueueTimeoutMs,
              connected: () => deps.redis.status === 'ready',
            }),
          );
        }
        metrics.callEnded.inc({ outcome: ended.withdrawn + ended.notified > 0 ? 'ended' : 'nothing_to_end' });
        log.info({ ...context, withdrawn: ended.withdrawn, notified: ended.notified }, 'Call ended: pending pushes withdrawn');
        res.status(200).json({ status: 'ended', withdrawn: ended.withdrawn, notified: ended.notified });
      } catch (err) {
        if (err instanceof QueueUnavailableError) metrics.callEnded.inc({ outcome: 'unavailable' });
        throw err;
      }
    },
  );

  return router;
}
