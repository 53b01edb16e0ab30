import autocannon from 'autocannon';
import { Pool } from 'undici';
import type { Callee } from '../lib/seed.ts';
import { summarize, type LatencySummary } from '../lib/stats.ts';

export interface CallEndedFigures extends LatencySummary {
  calls: number;
  withdrawn: number;
  notified: number;
  httpErrors: number;
}

const DURATION_S = 10;

/**
 * Open loop at `rate` calls/s: each call is a call-notify, then, 0-300 ms later (some pushes still
 * queued or in flight, most already accepted), a call-ended `cancelled`. The figure is call-ended's
 * answer time: the answer comes once every withdrawal is recorded and every "call ended" message
 * is in Redis, so it is the request -> last withdrawal or message queued latency.
 */
export async function benchCallEnded(apiUrl: string, callees: Callee[], rate: number): Promise<CallEndedFigures> {
  const pool = new Pool(apiUrl, { connections: 64, pipelining: 1 });
  const post = async (path: string, body: object) => {
    const res = await pool.request({ path, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const text = await res.body.text();
    return { status: res.statusCode, body: text ? (JSON.parse(text) as Record<string, number>) : {} };
  };
  const latencies: number[] = [];
  let withdrawn = 0;
  let notified = 0;
  let httpErrors = 0;
  const inflight: Promise<void>[] = [];
  const prefix = `ended-${rate}-${Date.now()}-`;
  const started = performance.now();
  let seq = 0;
  while (performance.now() - started < DURATION_S * 1000) {
    const due = Math.min(rate * DURATION_S, Math.floor((rate * (performance.now() - started)) / 1000));
    while (seq < due) {
      const callId = `${prefix}${seq}`;
      const callee = callees[seq++ % callees.length]!;
      inflight.push(
        (async () => {
          const notify = await post('/api/v1/push/call-notify', { callee_username: callee.username, caller_username: 'alice', call_id: callId });
          if (notify.status !== 202) throw new Error(`call-notify ${notify.status}`);
          await new Promise((r) => setTimeout(r, Math.random() * 300));
          const t0 = performance.now();
          const ended = await post('/api/v1/push/call-ended', { callee_username: callee.username, call_id: callId, reason: 'cancelled' });
          latencies.push(performance.now() - t0);
          if (ended.status !== 200) throw new Error(`call-ended ${ended.status}`);
          withdrawn += ended.body.withdrawn ?? 0;
          notified += ended.body.notified ?? 0;
        })().catch(() => {
          httpErrors++;
        }),
      );
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  await Promise.all(inflight);
  await pool.close();
  return { calls: seq, withdrawn, notified, httpErrors, ...summarize(latencies) };
}

/**
 * `registered` flat out (closed loop, 50 connections) for users pushed moments before: the path
 * Kamailio takes after every REGISTER of a recently pushed user.
 */
export async function benchRegistered(apiUrl: string, callees: Callee[]): Promise<{ rps: number; p50: number; p99: number; non2xx: number }> {
  const r = await autocannon({
    url: `${apiUrl}/api/v1/push/registered`,
    method: 'POST',
    connections: 50,
    duration: DURATION_S,
    requests: [
      {
        setupRequest: (req: autocannon.Request) => {
          const callee = callees[Math.floor(Math.random() * callees.length)]!;
          return { ...req, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: callee.username, domain: 'bench.example', instance: '', user_agent: 'bench' }) };
        },
      },
    ],
  });
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx };
}
