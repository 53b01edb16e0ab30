import { Router } from 'express';
import type { Config } from '@veil/config/config';
import type { ApiMetrics } from '../../metrics.ts';
import { requireAllowedSource } from '../internal-access.ts';

/** Prometheus scrape; same source restriction as call-notify (it reveals traffic patterns). */
export function metricsRoutes(deps: { config: Config; metrics: ApiMetrics }): Router {
  const router = Router();
  router.get('/metrics', requireAllowedSource(deps.config.callNotifyAllowedCidrs), async (_req, res) => {
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
  return router;
}
