import type { Config } from '@veil/config/config';
import { createDb, type Db } from '@veil/db/client';
import type { Logger } from '@veil/log/logger';
import { createWorkerMetrics, type WorkerMetrics } from './metrics.ts';
import { startMetricsServer } from './metrics-server.ts';
import { createQueueProbe } from './queue-probe.ts';
import type { FcmAccessTokenOptions } from './providers/fcm-access-token.ts';
import { createProviderSet, type ProviderSet } from './providers/provider-set.ts';
import { startPushWorkers, type PushWorkers } from './push-workers.ts';
import { startRegistrationExpiry } from './registration-expiry.ts';

export interface WorkerServiceOptions {
  log: Logger;
  /** A database the caller owns (a test's schema); otherwise DATABASE_URL, closed by destroy(). */
  db?: Db;
  metrics?: WorkerMetrics;
  /** FCM access-token timings (tests use seconds). */
  fcmAccessToken?: Omit<FcmAccessTokenOptions, 'log'>;
  /** Bound on one provider request (tests shorten it). */
  requestTimeoutMs?: number;
}

export interface WorkerService {
  config: Config;
  metrics: WorkerMetrics;
  /** Every credential set (defaults and PUSH_APPS_PATH apps); reload() is SIGHUP's. */
  providers: ProviderSet;
  /** Binds METRICS_PORT (the process exits there if it cannot), then takes jobs; resolves with the bound port. */
  start(): Promise<number>;
  /** Takes jobs without a metrics server (in-process tests). */
  startWorkers(): PushWorkers;
  /** No new jobs, in-flight pushes finish (bounded by the request timeouts), then providers, Postgres and the metrics port close. */
  destroy(): Promise<void>;
}

/**
 * The worker's one composition root, used by main.ts and the test harness: config -> providers
 * (checked now: a bad credential leaves that platform "not configured") -> db -> BullMQ workers.
 */
export function createWorkerService(config: Config, opts: WorkerServiceOptions): WorkerService {
  const { log } = opts;
  // Metrics first: the providers report which credentials loaded.
  const metrics = opts.metrics ?? createWorkerMetrics();
  const providers = createProviderSet({ config, log, metrics, requestTimeoutMs: opts.requestTimeoutMs, fcmAccessToken: opts.fcmAccessToken });
  // Postgres only for purges; the hot path reads everything from the job.
  const db = opts.db ?? createDb({ url: config.databaseUrl, max: 4 });
  let workers: PushWorkers | null = null;
  let metricsServer: { close(): Promise<void> } | null = null;
  let expiry: { close(): Promise<void> } | null = null;

  const startWorkers = () => (workers ??= startPushWorkers({ config, providers, db, log, metrics }));
  return {
    config,
    metrics,
    providers,
    async start() {
      // The metrics port first: if it cannot be bound the process exits before it holds any job.
      // Queue depth and Redis readiness are read on scrape, over a connection of their own.
      const probe = createQueueProbe({ redis: config.redis, queueBase: config.pushQueue });
      const server = await startMetricsServer(metrics, config.metricsPort, { probe });
      metricsServer = server;
      startWorkers();
      // Hourly clean-up of stale registrations; one run per period across all worker processes.
      expiry = startRegistrationExpiry({ config, db, log, metrics, queueBase: config.pushQueue });
      return server.port;
    },
    startWorkers,
    async destroy() {
      await workers?.close();
      await expiry?.close();
      await providers.close();
      if (!opts.db) await db.close();
      await metricsServer?.close();
    },
  };
}
