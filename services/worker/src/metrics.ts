import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type PushOutcome = 'delivered' | 'token_invalid' | 'retryable_error' | 'permanent_error' | 'not_configured' | 'expired' | 'withdrawn';

/** One registry per process (never prom-client's global), so tests can run several workers. */
export function createWorkerMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    pushes: new Counter({
      name: 'veil_worker_pushes_total',
      help: 'Push attempts by platform and outcome',
      labelNames: ['platform', 'outcome'] as const,
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
      labelNames: ['platform'] as const,
      registers: [registry],
    }),
    retries: new Counter({
      name: 'veil_worker_push_retries_total',
      help: 'Retries scheduled after a retryable failure',
      labelNames: ['platform'] as const,
      registers: [registry],
    }),
    expired: new Counter({
      name: 'veil_worker_pushes_expired_total',
      help: 'Pushes dropped unsent, or retries not made, because the call is older than PUSH_TTL_SECONDS',
      labelNames: ['platform'] as const,
      registers: [registry],
    }),
  };
}

export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;
