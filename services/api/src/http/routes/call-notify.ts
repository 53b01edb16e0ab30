import { Router } from 'express';
import { findCalleeDevices } from '@veil/db/registrations';
import { tokenHash } from '@veil/log/token-hash';
import { QueueUnavailableError } from '@veil/queue/producer';
import type { AppContext } from '../../context.ts';
import { endedDeviceMeta } from '@veil/queue/call-state';
import { buildPushJobs } from '../../push-jobs.ts';
import { requireMigrated } from '../errors.ts';
import { internalWebhook } from '../internal-access.ts';
import { callNotifySchema, parseBody } from '../validation.ts';

/** Kamailio's webhook for a callee who is not registered over SIP. */
export function callNotifyRoutes(ctx: AppContext): Router {
  const { config, log, metrics } = ctx;
  const router = Router();

  router.post(
    '/api/v1/push/call-notify',
    ...internalWebhook(config),
    requireMigrated(ctx.isMigrated),
    async (req, res) => {
      const body = parseBody(callNotifySchema, req.body);
      // callee_domain narrows like SIP_DOMAIN and wins over it; neither means "every domain".
      const domain = body.callee_domain ?? config.sipDomain;
      const callee = { callee: body.callee_username, domain, call_id: body.call_id };
      const devices = await findCalleeDevices(ctx.db, body.callee_username, domain);
      if (devices.length === 0) {
        metrics.callNotify.inc({ outcome: 'no_registrations' });
        log.info(callee, 'No push registrations found');
        res.status(200).json({ status: 'no_registrations', devices: 0 });
        return;
      }
      const call = { caller_name: body.caller_display_name || body.caller_username, call_id: body.call_id, call_type: body.call_type };
      let jobs;
      try {
        // Recorded before the jobs exist, so a worker always finds the device's state, and a
        // call-ended that raced ahead of this call-notify (or a late retransmission) pushes nothing.
        const live = new Set((await ctx.producer.calls.begin(body.call_id, body.callee_username, endedDeviceMeta(devices, call))).map((d) => d.device_id));
        if (live.size === 0) {
          metrics.callNotify.inc({ outcome: 'ended' });
          log.info(callee, 'Call already ended: nothing pushed');
          res.status(200).json({ status: 'ended', devices: 0 });
          return;
        }
        jobs = buildPushJobs(devices.filter((d) => live.has(d.device_id)), call, config.pushTtlSeconds);
        await ctx.producer.enqueue(jobs);
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
