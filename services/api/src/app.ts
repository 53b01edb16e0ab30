import express, { type Express } from 'express';
import { commandTimeoutOf, type RedisClient } from '@veil/queue/redis';
import type { Config } from '@veil/config/config';
import type { Db } from '@veil/db/client';
import type { Logger } from '@veil/log/logger';
import type { PushQueues } from './enqueue.ts';
import { createJwtVerifier, type JwtVerifier } from './http/auth.ts';
import { createErrorHandler, notFound } from './http/errors.ts';
import { callNotifyRoutes } from './http/routes/call-notify.ts';
import { healthRoutes } from './http/routes/health.ts';
import { metricsRoutes } from './http/routes/metrics.ts';
import { registrationRoutes } from './http/routes/registrations.ts';
import { createApiMetrics, type ApiMetrics } from './metrics.ts';
import { createRedisWatchdog } from './redis-watchdog.ts';

export interface AppDeps {
  config: Config;
  db: Db;
  /** The producer connection (fail-fast options); used for /readyz's PING. */
  redis: RedisClient;
  queues: PushQueues;
  log: Logger;
  /** Built by main from the key file; tests may pass their own. Defaults to JWT_SECRET only. */
  verifier?: JwtVerifier;
  metrics?: ApiMetrics;
  /** Bound on Redis/Postgres checks and enqueueing; 503 comes well inside the SPEC's 2 s. */
  dependencyTimeoutMs?: number;
  /**
   * False until main's background loop has applied the migrations: the routes that need the
   * database answer 503 database_unavailable meanwhile (never a 500 from a missing table).
   */
  isMigrated?: () => boolean;
}

/** The express app, without listening: main listens, tests listen on port 0. */
export function createApp(deps: AppDeps): Express {
  const { config, log } = deps;
  const verifier = deps.verifier ?? createJwtVerifier(config.jwt, null);
  const metrics = deps.metrics ?? createApiMetrics();
  const timeoutMs = deps.dependencyTimeoutMs ?? 1500;
  const isMigrated = deps.isMigrated ?? (() => true);
  // A silent-but-open producer socket is rebuilt after repeated timeouts (call-notify and /readyz).
  const redisWatchdog = createRedisWatchdog(deps.redis, { timeoutMs: commandTimeoutOf(deps.redis) ?? timeoutMs, log });

  const app = express();
  app.disable('x-powered-by');
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

  // SPEC: every answer is JSON. Express's routers would answer OPTIONS themselves with a text/plain
  // Allow list; nothing here serves browsers (no CORS), so OPTIONS is a route that does not exist.
  app.use((req, res, next) => {
    if (req.method === 'OPTIONS') notFound(req, res, next);
    else next();
  });

  // The hot route first: every router mounted before it is traversed on each webhook.
  app.use(
    callNotifyRoutes({ config, db: deps.db, queues: deps.queues, redis: deps.redis, redisWatchdog, isMigrated, log, metrics, enqueueTimeoutMs: timeoutMs }),
  );
  app.use(healthRoutes({ db: deps.db, redis: deps.redis, redisWatchdog, isMigrated, timeoutMs }));
  app.use(metricsRoutes({ config, metrics }));
  app.use(registrationRoutes({ db: deps.db, verifier, isMigrated, log }));
  app.use(notFound);
  app.use(createErrorHandler(log));
  return app;
}
