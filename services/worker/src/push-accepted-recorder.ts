import type { Db } from '@veil/db/client';
import { recordPushesAccepted, type AcceptedPush } from '@veil/db/wakes';
import type { Logger } from '@veil/log/logger';

export interface PushAcceptedRecorder {
  /** Never waits and never throws: a delivered push must not hold a concurrency slot for Postgres. */
  record(push: AcceptedPush): void;
  /** Writes what is collected (shutdown: after the last job, before Postgres closes). */
  flush(): Promise<void>;
}

/**
 * last_push_at of accepted call pushes, written in batches: what arrives within `windowMs` of
 * the first push goes out in one UPDATE (at most `maxBatch` rows; a full batch goes at once).
 * One statement per push cost the worker and Postgres more CPU than the rest of the push's
 * bookkeeping. Only GET /push/register and operators read the column, so 50 ms late is fine.
 */
export function createPushAcceptedRecorder(db: Db, log: Logger, opts: { windowMs?: number; maxBatch?: number } = {}): PushAcceptedRecorder {
  const windowMs = opts.windowMs ?? 50;
  const maxBatch = opts.maxBatch ?? 500;
  let pending: AcceptedPush[] = [];
  let timer: NodeJS.Timeout | null = null;
  const inFlight = new Set<Promise<void>>();

  const write = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    const done = recordPushesAccepted(db, batch)
      .catch((err: Error) => log.warn({ err: err.message, pushes: batch.length }, 'Recording last_push_at failed'))
      .finally(() => inFlight.delete(done));
    inFlight.add(done);
  };

  return {
    record(push) {
      pending.push(push);
      if (pending.length >= maxBatch) write();
      else timer ??= setTimeout(write, windowMs);
    },
    async flush() {
      write();
      await Promise.all(inFlight);
    },
  };
}
