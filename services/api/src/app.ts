import express, { type Express, type Router } from 'express';
import type { AppContext } from './context.ts';
import { createErrorHandler, notFound } from './http/errors.ts';
import { callEndedRoutes } from './http/routes/call-ended.ts';
import { callNotifyRoutes } from './http/routes/call-notify.ts';
import { callRoutes } from './http/routes/calls.ts';
import { registeredRoutes } from './http/routes/registered.ts';
import { healthRoutes } from './http/routes/health.ts';
import { metricsRoutes } from './http/routes/metrics.ts';
import { registrationRoutes } from './http/routes/registrations.ts';

/**
 * Every router, in the order express traverses them: the hot route first, since each router
 * mounted before it is walked on every webhook. A new route file is one more line here.
 */
const ROUTES: ((ctx: AppContext) => Router)[] = [
  callNotifyRoutes,
  callEndedRoutes,
  registeredRoutes,
  healthRoutes,
  metricsRoutes,
  registrationRoutes,
  callRoutes,
];

/** The express app, without listening: the service listens (main on PORT, tests on port 0). */
export function createApp(ctx: AppContext): Express {
  const { log, metrics } = ctx;
  const app = express();
  app.disable('x-powered-by');
  // No ETag: no client here sends conditional requests, and hashing every JSON answer was
  // measurable per webhook.
  app.set('etag', false);
  // Never trust proxy headers: the source check of call-notify reads the socket's address.
  app.set('trust proxy', false);

  const debug = log.isLevelEnabled('debug');
  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = (req.route?.path as string | undefined) ?? 'unmatched';
      metrics.httpRequests.observe({ method: req.method, route, status: String(res.statusCode) }, seconds);
      // Method, path and status only: headers (authorization) and bodies (tokens) stay out of logs.
      // Debug, not info: every call already logs one info line ("Push jobs queued" / "No push
      // registrations found"), and a second line per request was a visible share of the API's CPU.
      if (debug) log.debug({ method: req.method, path: req.path, status: res.statusCode, ms: Math.round(seconds * 1000) }, 'request');
    });
    next();
  });

  // Every answer is JSON. Express's routers would answer OPTIONS themselves with a text/plain
  // Allow list; nothing here serves browsers (no CORS), so OPTIONS is a route that does not exist.
  app.use((req, res, next) => {
    if (req.method === 'OPTIONS') notFound(req, res, next);
    else next();
  });

  for (const routes of ROUTES) app.use(routes(ctx));
  app.use(notFound);
  app.use(createErrorHandler(log));
  return app;
}
