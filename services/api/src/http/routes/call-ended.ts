import { Router } from 'express';
import { buildCallEndedJobs } from '@veil/queue/call-state';
import { QueueUnavailableError } from '@veil/queue/producer';
import type { AppContext } from '../../context.ts';
import { internalWebhook } from '../internal-access.ts';
import { callEndedSchema, parseBody } from '../validation.ts';

/**
 * Kamailio's "the call is over" (caller hung up, nobody answered in time, a device answered or
 * declined). Pushes not yet accepted by Apple/Google are withdrawn; devices already rung get one
 * "call ended" message. Only Redis is read: the call's devices were recorded by call-notify.
 */
export function callEndedRoutes(ctx: AppContext): Router {
  const { config, log, metrics } = ctx;
  const router = Router();

  router.post(
    '/api/v1/push/call-ended',
    ...internalWebhook(config),
    async (req, res) => {
      const body = parseBody(callEndedSchema, req.body);
      const domain = body.callee_domain ?? config.sipDomain;
      const context = { callee: body.callee_username, domain, call_id: body.call_id, reason: body.reason };
      try {
        const ended = await ctx.producer.calls.end(body.call_id, body.callee_username, domain, body.reason);
        const jobs = buildCallEndedJobs(ended.devices, body.call_id, body.reason, config.pushTtlSeconds);
        if (jobs.length > 0) await ctx.producer.enqueue(jobs);
        // Only now are the messages safe in Redis: a repeat after a failure above queues them again.
        await ctx.producer.calls.confirmNotified(body.call_id, ended.devices);
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
