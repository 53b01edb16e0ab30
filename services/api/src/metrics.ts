import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ApiMetrics {
  registry: Registry;
  httpRequests: Histogram<'method' | 'route' | 'status'>;
  callNotify: Counter<'outcome'>;
  jobsEnqueued: Counter<'platform'>;
  callEnded: Counter<'outcome'>;
  wakeSeconds: Histogram<'platform'>;
  wakesUnattributed: Counter;
  unanswered: Counter<'platform'>;
}

/** One registry per app instance: tests build many apps in one process, so no global default registry. */
export function createApiMetrics(opts: { defaultMetrics?: boolean } = {}): ApiMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry });
  return {
    registry,
    httpRequests: new Histogram({
      name: 'veil_api_http_request_duration_seconds',
      help: 'API request duration by route and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    callNotify: new Counter({
      name: 'veil_api_call_notify_total',
      help: 'call-notify requests by outcome (queued, no_registrations, unavailable)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    jobsEnqueued: new Counter({
      name: 'veil_api_push_jobs_enqueued_total',
      help: 'Push jobs handed to Redis, by platform (deduplicated retries included)',
      labelNames: ['platform'],
      registers: [registry],
    }),
    callEnded: new Counter({
      name: 'veil_api_call_ended_total',
      help: 'call-ended requests by outcome (ended, nothing_to_end, unavailable)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    wakeSeconds: new Histogram({
      name: 'veil_push_wake_seconds',
      help: 'From Apple or Google accepting a call push to the REGISTER that proved the phone woke',
      labelNames: ['platform'],
      buckets: [0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60],
      registers: [registry],
    }),
    wakesUnattributed: new Counter({
      name: 'veil_push_wakes_unattributed_total',
      help: 'REGISTERs after a push that named none of the pushed devices while several were pushed',
      registers: [registry],
    }),
    unanswered: new Counter({
      name: 'veil_push_unanswered_total',
      help: 'Accepted call pushes with no REGISTER within PUSH_TTL_SECONDS',
      labelNames: ['platform'],
      registers: [registry],
    }),
  };
}
