import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '@veil/config/config';
import { createDb, type Db } from '@veil/db/client';
import type { Logger } from '@veil/log/logger';
import { createPushProducer } from '@veil/queue/producer';
import { createApp } from './app.ts';
import type { AppContext } from './context.ts';
import { createJwtVerifier, type JwtVerifier } from './http/auth.ts';
import { createApiMetrics, type ApiMetrics } from './metrics.ts';
import { startMigrationLoop } from './migration-loop.ts';
import { startUnansweredSweeper } from './unanswered-sweeper.ts';

export interface ApiServiceOptions {
  log: Logger;
  /** Built by main from the key file; defaults to JWT_SECRET only. */
  verifier?: JwtVerifier;
  metrics?: ApiMetrics;
  /** A database the caller owns (a test's schema); otherwise the service opens DATABASE_URL and migrates it in the background. */
  db?: Db;
  /** With `db`: whether its schema is in (defaults to "yes"). */
  isMigrated?: () => boolean;
  /** How long start() gives Redis (and the first migration attempt) before listening anyway. */
  readyWaitMs?: number;
}

export interface ApiService {
  ctx: AppContext;
  /** Listens; resolves with the bound port (0 picks a free one). */
  start(port?: number, host?: string): Promise<number>;
  /**
   * Stops accepting, lets in-flight requests answer (`graceMs`, 10 s by default; 0 cuts them at
   * once, as tests do), then closes Redis and, if the service opened it, Postgres.
   */
  destroy(opts?: { graceMs?: number }): Promise<void>;
}

/**
 * The api's one composition root, used by main.ts and by the tests: config -> db (+ background
 * migrations) -> push producer -> context -> app. Nothing here reads process.env or exits.
 */
export function createApiService(config: Config, opts: ApiServiceOptions): ApiService {
  const { log } = opts;
  const ownDb = !opts.db;
  const db = opts.db ?? createDb({ url: config.databaseUrl, connectTimeoutSeconds: 1, queryTimeoutMs: 1500 });
  // Migrations run in the background until they succeed (Compose starts Postgres with everything
  // else; an outage at start must not keep the API down): the database routes answer 503 meanwhile.
  const migrations = ownDb ? startMigrationLoop({ databaseUrl: config.databaseUrl, log }) : null;
  const dependencyTimeoutMs = 1500;
  const ctx: AppContext = {
    config,
    db,
    log,
    verifier: opts.verifier ?? createJwtVerifier(config.jwt, null, { log }),
    metrics: opts.metrics ?? createApiMetrics(),
    dependencyTimeoutMs,
    isMigrated: migrations?.isMigrated ?? opts.isMigrated ?? (() => true),
    producer: createPushProducer({
      redis: config.redis,
      queueBase: config.pushQueue,
      maxAttempts: config.pushMaxAttempts,
      ttlSeconds: config.pushTtlSeconds,
      timeoutMs: dependencyTimeoutMs,
      log,
    }),
  };
  let server: Server | null = null;
  // Counts accepted pushes whose wake window closed without a REGISTER (veil_push_unanswered_total).
  const sweeper = startUnansweredSweeper({ db, calls: ctx.producer.calls, metrics: ctx.metrics, log, isReady: ctx.isMigrated });

  return {
    ctx,
    async start(port = config.port, host) {
      // Give Redis and the first migration attempt a moment (both bounded) before taking traffic,
      // so the first calls after a deploy are not 503s while they handshake; if either is down the
      // API listens anyway (readyz says 503 until it is back).
      const waitMs = opts.readyWaitMs ?? 3000;
      await Promise.all([ctx.producer.waitReady(waitMs), migrations && Promise.race([migrations.firstAttempt, sleep(waitMs)])]);
      const app = createApp(ctx);
      const s = host === undefined ? app.listen(port) : app.listen(port, host);
      server = s;
      await new Promise<void>((resolve, reject) => {
        s.once('listening', resolve);
        s.once('error', reject);
      });
      return (s.address() as AddressInfo).port;
    },
    async destroy({ graceMs = 10_000 } = {}) {
      migrations?.stop();
      sweeper.stop();
      if (server) {
        const s = server;
        if (graceMs === 0) s.closeAllConnections();
        // close() resolves once in-flight requests have answered. Idle keep-alive sockets would
        // hold it open, so they go now; a hard stop after 10 s bounds the whole thing.
        const closed = new Promise<void>((resolve) => s.close(() => resolve()));
        s.closeIdleConnections();
        const force = setTimeout(() => {
          log.warn(`In-flight requests did not finish within ${graceMs / 1000} s; closing them`);
          s.closeAllConnections();
        }, graceMs);
        force.unref();
        await closed;
        clearTimeout(force);
      }
      await ctx.producer.close();
      if (ownDb) await db.close();
    },
  };
}
