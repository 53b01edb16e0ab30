import { Router } from 'express';
import type { AppContext } from '../../context.ts';
import { requireAllowedSource } from '../internal-access.ts';

/** Prometheus scrape; same source restriction as call-notify (it reveals traffic patterns). */
export function metricsRoutes(ctx: AppContext): Router {
  const router = Router();
  router.get('/metrics', requireAllowedSource(ctx.config.callNotifyAllowedCidrs), async (_req, res) => {
    res.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics());
  });
  return router;
}
