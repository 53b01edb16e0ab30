import type { Config } from '@veil/config/config';
import type { Db } from '@veil/db/client';
import type { Logger } from '@veil/log/logger';
import type { PushProducer } from '@veil/queue/producer';
import type { JwtVerifier } from './http/auth.ts';
import type { ApiMetrics } from './metrics.ts';

/** The one object every route gets: built by createApiService, for main and the tests alike. */
export interface AppContext {
  config: Config;
  db: Db;
  /** Hands push jobs to Redis; owns the connection, its readiness and its failures. */
  producer: PushProducer;
  log: Logger;
  verifier: JwtVerifier;
  metrics: ApiMetrics;
  /** Bound on Postgres checks and enqueueing, so a 503 comes well inside Kamailio's 2 s budget. */
  dependencyTimeoutMs: number;
  /**
   * False until the background loop has applied the migrations: the routes that need the
   * database answer 503 database_unavailable meanwhile (never a 500 from a missing table).
   */
  isMigrated: () => boolean;
}
