import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ApiMetrics {
  registry: Registry;
  httpRequests: Histogram<'method' | 'route' | 'status'>;
  callNotify: Counter<'outcome'>;
  jobsEnqueued: Counter<'platform'>;
  /** Wake tracking (SPEC round 2): push accepted by Apple/Google -> the device's REGISTER seen. */
  wakeSeconds: Histogram<'platform'>;
  wakesUnattributed: Counter;
  unanswered: Counter<'platform'>;
  /** call-ended requests by outcome. */
  callEnded: Counter<'outcome'>;
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
    wakeSeconds: new Histogram({
      name: 'veil_push_wake_seconds',
      help: 'From Apple or Google accepting a call push to the woken device registering over SIP, by platform',
      labelNames: ['platform'],
      // A healthy wake takes 0.5-5 s; past PUSH_TTL_SECONDS (30 by default, 60 at most in practice) it is too late.
      buckets: [0.5, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60],
      registers: [registry],
    }),
    wakesUnattributed: new Counter({
      name: 'veil_push_wakes_unattributed_total',
      help: 'REGISTERs after a push that could not be credited to one device (no matching instance id, several pushed)',
      registers: [registry],
    }),
    unanswered: new Counter({
      name: 'veil_push_unanswered_total',
      help: 'Call pushes accepted by Apple or Google with no wake credited within PUSH_TTL_SECONDS, by platform',
      labelNames: ['platform'],
      registers: [registry],
    }),
    callEnded: new Counter({
      name: 'veil_api_call_ended_total',
      help: 'call-ended requests by outcome (ended, nothing_to_end, unavailable)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
  };
}
