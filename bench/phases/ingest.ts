import { randomUUID } from 'node:crypto';
import autocannon from 'autocannon';
import jwt from 'jsonwebtoken';
import type { Callee } from '../lib/seed.ts';

export interface IngestFigures {
  label: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

const DURATION_S = 10;

function figures(label: string, r: autocannon.Result): IngestFigures {
  return { label, rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.timeouts, non2xx: r.non2xx };
}

function callNotifyBody(callees: Callee[]): string {
  const callee = callees[Math.floor(Math.random() * callees.length)]!;
  return JSON.stringify({
    callee_username: callee.username,
    caller_username: 'alice',
    caller_display_name: 'Alice',
    call_id: `bench-${randomUUID()}`,
    call_type: 'audio',
  });
}

/** call-notify flat out (closed loop, 50 connections), then at a fixed offered 1,000 requests/s. */
export async function benchCallNotify(apiUrl: string, callees: Callee[]): Promise<IngestFigures[]> {
  const base = {
    url: `${apiUrl}/api/v1/push/call-notify`,
    method: 'POST' as const,
    headers: { 'content-type': 'application/json' },
    duration: DURATION_S,
    requests: [{ setupRequest: (req: autocannon.Request) => ({ ...req, body: callNotifyBody(callees) }) }],
  };
  const max = await autocannon({ ...base, connections: 50 });
  const fixed = await autocannon({ ...base, connections: 50, overallRate: 1000 });
  return [figures('call-notify, max (50 conns)', max), figures('call-notify @ 1,000/s', fixed)];
}

/** register upserts: 1,000 users, each request a new or existing device of a random user. */
export async function benchRegister(apiUrl: string, secret: string): Promise<IngestFigures> {
  const users = Array.from({ length: 1000 }, (_, i) => {
    const jid = `user${i}@bench.example`;
    return { jid, auth: `Bearer ${jwt.sign({ jid }, secret, { algorithm: 'HS256', expiresIn: '1h' })}`, devices: [randomUUID(), randomUUID()] };
  });
  const r = await autocannon({
    url: `${apiUrl}/api/v1/push/register`,
    method: 'POST',
    connections: 50,
    duration: DURATION_S,
    requests: [
      {
        setupRequest: (req: autocannon.Request) => {
          const u = users[Math.floor(Math.random() * users.length)]!;
          const platform = Math.random() < 0.5 ? 'ios' : 'android';
          const token = platform === 'ios' ? randomUUID().replace(/-/g, '').repeat(2) : `fcm-${randomUUID()}`;
          return {
            ...req,
            headers: { 'content-type': 'application/json', authorization: u.auth },
            body: JSON.stringify({ jid: u.jid, device_id: u.devices[Math.random() < 0.5 ? 0 : 1], platform, push_token: token }),
          };
        },
      },
    ],
  });
  return figures('register upsert, max (50 conns)', r);
}
