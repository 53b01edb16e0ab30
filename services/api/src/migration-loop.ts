import { setTimeout as sleep } from 'node:timers/promises';
import { createDb, timed } from '@veil/db/client';
import { runMigrations } from '@veil/db/migrate';
import type { Logger } from '@veil/log/logger';

export interface MigrationLoop {
  /** True once the migrations have been applied (or found up to date); stays true. */
  isMigrated(): boolean;
  /** Settles after the first attempt, whatever its outcome: main waits on it briefly before listening. */
  firstAttempt: Promise<void>;
  stop(): void;
}

const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 5000;

/**
 * Applies the migrations in the background, retrying with capped backoff until they are in. The
 * API listens meanwhile (healthz answers, the database routes answer 503), so a Postgres that is
 * late or down at start delays nothing but the database routes and never stops the process.
 */
export function startMigrationLoop(opts: { databaseUrl: string; log: Logger }): MigrationLoop {
  const { log } = opts;
  let migrated = false;
  let stopped = false;
  let settleFirst!: () => void;
  const firstAttempt = new Promise<void>((resolve) => (settleFirst = resolve));

  void (async () => {
    let lastError = '';
    for (let attempt = 1; !stopped; attempt++) {
      try {
        const db = createDb({ url: opts.databaseUrl, max: 1, connectTimeoutSeconds: 2, queryTimeoutMs: 60_000 });
        try {
          // Client-side deadline too: a connection that goes silent mid-migration must not keep
          // the database routes at 503 until TCP keepalive notices (the pool is closed below).
          const applied = await timed(db, runMigrations(db));
          migrated = true;
          log.info({ applied, attempt }, applied.length ? 'Migrations applied' : 'Database is up to date');
          return;
        } finally {
          await db.close().catch(() => {});
        }
      } catch (err) {
        const error = (err as Error).message;
        // A Postgres that stays down would repeat the same line every few seconds: once per distinct error.
        if (error !== lastError) log.warn({ attempt, error }, 'Postgres not ready for migrations; retrying');
        lastError = error;
      } finally {
        settleFirst();
      }
      await sleep(Math.min(FIRST_DELAY_MS * 2 ** (attempt - 1), MAX_DELAY_MS));
    }
  })();

  return { isMigrated: () => migrated, firstAttempt, stop: () => void (stopped = true) };
}
