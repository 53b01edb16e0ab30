import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { QueueProbe } from './queue-probe.ts';

export type PushOutcome = 'delivered' | 'token_invalid' | 'retryable_error' | 'permanent_error' | 'not_configured' | 'expired' | 'withdrawn';

/** The job states an operator watches; completed jobs are removed at once, so never counted. */
export const QUEUE_STATES = ['waiting', 'delayed', 'active', 'failed'] as const;
export type QueueState = (typeof QUEUE_STATES)[number];

/** One registry per process (never prom-client's global), so tests can run several workers. */
export function createWorkerMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // Set by the metrics server once it has a Redis connection; until then the queue gauges and
  // redis_up report nothing rather than a made-up 0.
  let probe: QueueProbe | null = null;
  const metrics = {
    registry,
    /** Hands the scrape-time gauges their Redis probe (null detaches it). */
    attachQueueProbe(p: QueueProbe | null) {
      probe = p;
    },
    pushes: new Counter({
      name: 'veil_worker_pushes_total',
      help: 'Push attempts by platform, outcome and app (app_id: an app of PUSH_APPS_PATH, else "default")',
      labelNames: ['platform', 'outcome', 'app_id'] as const,
      registers: [registry],
    }),
    callEndedMessages: new Counter({
      name: 'veil_worker_call_ended_messages_total',
      help: '"Call ended" messages (Android call_ended data messages, iOS missed-call alerts) by platform, outcome and app',
      labelNames: ['platform', 'outcome', 'app_id'] as const,
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'veil_worker_push_latency_seconds',
      help: 'From the API accepting the call (enqueued_at) to the provider answering',
      labelNames: ['platform', 'outcome'] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60],
      registers: [registry],
    }),
    purges: new Counter({
      name: 'veil_worker_registrations_purged_total',
      help: 'Registrations deleted because Apple or Google rejected their token',
      labelNames: ['platform', 'app_id'] as const,
      registers: [registry],
    }),
    retries: new Counter({
      name: 'veil_worker_push_retries_total',
      help: 'Retries scheduled after a retryable failure',
      labelNames: ['platform'] as const,
      registers: [registry],
    }),
    registrationsExpired: new Counter({
      name: 'veil_worker_registrations_expired_total',
      help: 'Registrations deleted because they were not updated for REGISTRATION_MAX_AGE_DAYS',
      registers: [registry],
    }),
    expired: new Counter({
      name: 'veil_worker_pushes_expired_total',
      help: 'Pushes dropped unsent, or retries not made, because the call is older than PUSH_TTL_SECONDS',
      labelNames: ['platform'] as const,
      registers: [registry],
    }),
    credentialsLoaded: new Gauge({
      name: 'veil_worker_credentials_loaded',
      help: 'Push credentials usable by platform and app (1) or not configured (0); app_id "default" is APNS_* / FCM_SERVICE_ACCOUNT_PATH',
      labelNames: ['platform', 'app_id'] as const,
      registers: [registry],
    }),
    credentialReloads: new Counter({
      name: 'veil_worker_credential_reloads_total',
      help: 'SIGHUP reloads of keys, service accounts and the apps file; result "failed" kept the previous credentials',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    apnsEnvironmentFallbacks: new Counter({
      name: 'veil_worker_apns_environment_fallbacks_total',
      help: 'iOS pushes without apns_environment that the default gateway answered BadDeviceToken, tried on the other one: delivered or rejected there too',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    // The three below are computed when Prometheus scrapes (one bounded Redis round trip), so
    // they cost nothing between scrapes and are never stale.
    queueJobs: new Gauge({
      name: 'veil_worker_queue_jobs',
      help: 'Jobs in the push queue by platform and state (waiting, delayed = waiting for a retry, active, failed = kept for inspection)',
      labelNames: ['platform', 'state'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        const snap = probe ? await probe.snapshot() : null;
        if (!snap) return;
        for (const [platform, q] of Object.entries(snap.queues)) {
          for (const state of QUEUE_STATES) this.set({ platform, state }, q.counts[state]);
        }
      },
    }),
    queueOldestAge: new Gauge({
      name: 'veil_worker_queue_oldest_job_age_seconds',
      help: 'Age of the oldest unfinished (waiting, delayed or active) push job, by platform; 0 when none',
      labelNames: ['platform'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        const snap = probe ? await probe.snapshot() : null;
        if (!snap) return;
        for (const [platform, q] of Object.entries(snap.queues)) this.set({ platform }, q.oldestAgeSeconds);
      },
    }),
    redisUp: new Gauge({
      name: 'veil_worker_redis_up',
      help: 'Whether Redis answered the last scrape-time check within a second (1) or not (0)',
      registers: [registry],
      async collect() {
        if (!probe) return;
        this.set((await probe.snapshot()) ? 1 : 0);
      },
    }),
  };
  return metrics;
}

export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;
