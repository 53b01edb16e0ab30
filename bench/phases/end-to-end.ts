import { Pool } from 'undici';
import type { Callee } from '../lib/seed.ts';
import type { Arrival } from '../lib/stack.ts';
import { summarize, type LatencySummary } from '../lib/stats.ts';

export interface EndToEndFigures extends LatencySummary {
  rate: number;
  /** Calls actually sent (rate x duration). */
  sent: number;
  /** Pushes expected (2 per call) that never reached a stand-in within the grace period. */
  missing: number;
  httpErrors: number;
}

const DURATION_S = 10;
const TICK_MS = 10;

/**
 * Open loop: calls are sent on a fixed schedule whatever the api's answer time (a closed loop
 * would slow down with the system and hide its queueing). Latency per push = stand-in receipt
 * minus the moment the webhook request was written, both on this process's monotonic clock.
 */
export async function benchEndToEnd(apiUrl: string, callees: Callee[], arrivals: Arrival[], rate: number): Promise<EndToEndFigures> {
  const pool = new Pool(apiUrl, { connections: 64, pipelining: 1 });
  const sentAt = new Map<string, number>();
  const firstArrival = arrivals.length;
  let httpErrors = 0;
  let seq = 0;
  const inflight: Promise<void>[] = [];
  const started = performance.now();
  const prefix = `e2e-${rate}-${Date.now()}-`;

  while (performance.now() - started < DURATION_S * 1000) {
    // Calls owed by now, from elapsed time (not per wake-up: timers fire late or early).
    const due = Math.min(rate * DURATION_S, Math.floor((rate * (performance.now() - started)) / 1000));
    while (seq < due) {
      const callId = `${prefix}${seq}`;
      const callee = callees[seq++ % callees.length]!;
      const body = JSON.stringify({ callee_username: callee.username, caller_username: 'alice', caller_display_name: 'Alice', call_id: callId, call_type: 'audio' });
      sentAt.set(callId, performance.now());
      inflight.push(
        pool
          .request({ path: '/api/v1/push/call-notify', method: 'POST', headers: { 'content-type': 'application/json' }, body })
          .then(async (res) => {
            if (res.statusCode !== 202) httpErrors++;
            await res.body.dump();
          })
          .catch(() => {
            httpErrors++;
          }),
      );
    }
    const next = started + (Math.floor((performance.now() - started) / TICK_MS) + 1) * TICK_MS;
    await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())));
  }
  await Promise.all(inflight);
  // Let the last pushes land.
  const expected = sentAt.size * 2;
  const until = performance.now() + 5000;
  const mine = () => arrivals.slice(firstArrival).filter((a) => a.callId.startsWith(prefix));
  while (mine().length < expected && performance.now() < until) await new Promise((r) => setTimeout(r, 50));
  await pool.close();

  const latencies = mine().map((a) => a.at - sentAt.get(a.callId)!);
  return { rate, sent: sentAt.size, ...summarize(latencies), missing: expected - latencies.length, httpErrors };
}
