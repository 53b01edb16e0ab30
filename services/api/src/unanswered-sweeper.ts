import { countUnansweredPushes } from '@veil/db/wakes';
import type { Db } from '@veil/db/client';
import type { Logger } from '@veil/log/logger';
import type { CallState } from '@veil/queue/call-state';
import type { ApiMetrics } from './metrics.ts';

const SWEEP_EVERY_MS = 1000;
const BATCH = 200;

/**
 * Counts accepted pushes whose wake window (PUSH_TTL_SECONDS) closed without a REGISTER: each
 * due push is taken from Redis by exactly one api process, then counted in Postgres (up to BATCH
 * in one statement); if Postgres is down the batch goes back, so an outage delays the count but
 * never loses it. Runs every second, so a push is counted at most about TTL + 1 s after it was
 * accepted.
 */
export function startUnansweredSweeper(deps: { db: Db; calls: CallState; metrics: ApiMetrics; log: Logger; isReady: () => boolean }): { stop(): void } {
  let running = false;
  let lastError = '';
  const sweep = async () => {
    if (running || !deps.isReady()) return;
    running = true;
    try {
      for (;;) {
        // Through the producer: answered at once while Redis is away, never queued up.
        const due = await deps.calls.takeUnanswered(Date.now(), BATCH);
        let counted;
        try {
          // The whole batch in one statement: all counted, or all put back.
          counted = await countUnansweredPushes(deps.db, due);
        } catch (err) {
          await deps.calls.returnUnanswered(due);
          throw err;
        }
        for (const w of due) {
          const key = `${w.jid} ${w.device_id}`;
          const left = counted.get(key) ?? 0;
          if (left === 0) continue;
          counted.set(key, left - 1);
          deps.metrics.unanswered.inc({ platform: w.platform });
          deps.log.info({ jid: w.jid, device_id: w.device_id, platform: w.platform }, 'Push unanswered: no REGISTER within PUSH_TTL_SECONDS');
        }
        if (due.length < BATCH) break;
      }
      lastError = '';
    } catch (err) {
      const error = (err as Error).message;
      if (error !== lastError) deps.log.warn({ error }, 'Counting unanswered pushes failed; retrying');
      lastError = error;
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void sweep(), SWEEP_EVERY_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
