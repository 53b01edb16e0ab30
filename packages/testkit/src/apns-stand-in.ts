/**
 * A local APNs (HTTP/2 over TLS) for tests and benchmarks: it speaks the provider API as Apple
 * documents it, verifies what the worker sends, records every request, and answers whatever a
 * test tells it to (any reason of the outcome table, a hang, a dropped connection).
 * https://developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns
 *
 *   const key = writeTestApnsKey(dir);            // .p8 + key id + team id
 *   const apns = await startApnsStandIn({ key }); // APNS_HOST = apns.host
 *   apns.answer(token, { status: 410, reason: 'Unregistered' }, { status: 200 });
 *   ... apns.requests[0].headers['apns-topic'] ...
 *   await apns.close();
 */
import { generateKeyPairSync, verify, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createSecureServer, type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { testServerTls } from './certs.ts';

export interface TestApnsKey {
  /** The .p8 file (EC P-256 PKCS#8 PEM) for APNS_KEY_PATH. */
  path: string;
  keyId: string;
  teamId: string;
  publicKey: KeyObject;
  /** When set, the only apns-topic values this key may push to (else 400 TopicDisallowed), as Apple ties a key to its team's apps. */
  topics?: string[];
}

/** Writes a fresh .p8 signing key into `dir`, as Apple's developer portal would hand one out. */
export function writeTestApnsKey(dir: string, ids: { keyId?: string; teamId?: string; topics?: string[] } = {}): TestApnsKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const keyId = ids.keyId ?? 'ABC123DEFG';
  const path = join(dir, `AuthKey_${keyId}.p8`);
  writeFileSync(path, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  return { path, keyId, teamId: ids.teamId ?? 'TEAM123456', publicKey, ...(ids.topics ? { topics: ids.topics } : {}) };
}

/** What the stand-in should do with a request. The last answer of a list repeats. */
export type ApnsAnswer =
  | { status: 200; delayMs?: number }
  /** timestamp: the epoch ms a 410 body carries (default: the time of the answer). */
  | { status: number; reason: string; retryAfter?: string; delayMs?: number; timestamp?: number }
  /** Never answer this stream (until close). */
  | { hang: true }
  /** Reset this stream, or tear down the whole HTTP/2 session (dropped connection). */
  | { destroy: 'stream' | 'session' };

export interface ApnsRecordedRequest {
  token: string;
  method: string;
  path: string;
  headers: Record<string, string | undefined>;
  body: unknown;
  rawBody: string;
  /** The provider JWT as sent, and its decoded parts (null if it did not verify). */
  jwt: string | null;
  jwtClaims: { kid: string; iss: string; iat: number } | null;
  /** Which TLS session (connection) carried it, numbered from 1. */
  session: number;
  /** The gateway's `environment` option (two stand-ins playing sandbox and production). */
  environment: string | null;
  /** What the stand-in found wrong (empty when the request is exactly per SPEC). */
  problems: string[];
  answered: ApnsAnswer;
  at: number;
}

export interface ApnsStandIn {
  /** host:port for APNS_HOST. */
  host: string;
  port: number;
  requests: ApnsRecordedRequest[];
  /** Connections (HTTP/2 sessions) accepted so far. */
  sessionsOpened(): number;
  /** Program answers for one token, or for every token without its own program (null). */
  answer(token: string | null, ...answers: ApnsAnswer[]): void;
  /**
   * The existing connections go silent: requests on them are never answered (a NAT that
   * dropped the mapping, a half-open TCP connection). New connections behave normally.
   */
  silenceExistingSessions(): void;
  /** Forget programs and recorded requests. */
  reset(): void;
  /** Accept provider tokens signed with this key too (another team, a rotated key). */
  addKey(key: TestApnsKey): void;
  /** Refuse this key id from now on (403 InvalidProviderToken), as after revoking it in Apple's portal. */
  revokeKey(keyId: string): void;
  close(): Promise<void>;
}

/** Epoch-ms timestamp in Apple's 410 body: when APNs found the token no longer valid. */
function unregisteredTimestamp(): number {
  return Date.now();
}

function decodeJwt(jwt: string, keys: Map<string, TestApnsKey>): { claims: ApnsRecordedRequest['jwtClaims']; problem: string | null } {
  const parts = jwt.split('.');
  if (parts.length !== 3) return { claims: null, problem: 'provider token is not a JWT' };
  try {
    const header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString()) as { alg?: string; kid?: string };
    const payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString()) as { iss?: string; iat?: number };
    const key = keys.get(header.kid ?? '');
    if (!key) return { claims: null, problem: `kid ${header.kid}` };
    const ok = verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), { key: key.publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(parts[2]!, 'base64url'));
    if (header.alg !== 'ES256') return { claims: null, problem: `alg ${header.alg}` };
    if (!ok) return { claims: null, problem: 'bad signature' };
    if (payload.iss !== key.teamId) return { claims: null, problem: `iss ${payload.iss}` };
    const age = Date.now() / 1000 - (payload.iat ?? 0);
    if (typeof payload.iat !== 'number' || age > 3600 || age < -60) return { claims: null, problem: 'iat out of range' };
    return { claims: { kid: key.keyId, iss: payload.iss, iat: payload.iat }, problem: null };
  } catch {
    return { claims: null, problem: 'unparsable JWT' };
  }
}

/** Checks the request against the SPEC's APNs payload rules; returns what is wrong. */
/** Apple: "If you omit this header, APNs sets the notification priority to 10." */
function priorityIs10(priority: string | undefined): boolean {
  return priority === undefined || priority === '10';
}

function checkRequest(headers: Record<string, string | undefined>, rawBody: string, bodyLimit: number): string[] {
  return headers['apns-push-type'] === 'alert' ? checkMissedCallAlert(headers, rawBody, bodyLimit) : checkVoipPush(headers, rawBody, bodyLimit);
}

function expirationProblem(exp: string | undefined, maxAheadMs: number): string | null {
  if (!exp || !/^\d+$/.test(exp) || Number(exp) * 1000 < Date.now() - 1000 || Number(exp) * 1000 > Date.now() + maxAheadMs) return `apns-expiration ${exp}`;
  return null;
}

function parseBody(rawBody: string, problems: string[]): Record<string, unknown> | null {
  try {
    return JSON.parse(rawBody) as Record<string, unknown>;
  } catch {
    problems.push('body is not JSON');
    return null;
  }
}

function checkVoipPush(headers: Record<string, string | undefined>, rawBody: string, bodyLimit: number): string[] {
  const problems: string[] = [];
  if (headers['apns-push-type'] !== 'voip') problems.push(`apns-push-type ${headers['apns-push-type']}`);
  if (!headers['apns-topic']?.endsWith('.voip')) problems.push(`apns-topic ${headers['apns-topic']}`);
  if (!priorityIs10(headers['apns-priority'])) problems.push(`apns-priority ${headers['apns-priority']}`);
  const exp = expirationProblem(headers['apns-expiration'], 3600_000);
  if (exp) problems.push(exp);
  if (Buffer.byteLength(rawBody) > bodyLimit) problems.push('payload too large');
  const body = parseBody(rawBody, problems);
  if (body) {
    const keys = Object.keys(body).sort().join(',');
    if (keys !== 'aps,call_id,call_type,caller_name') problems.push(`body keys ${keys}`);
    if (JSON.stringify(body.aps) !== '{}') problems.push('aps is not {}');
    if (typeof body.caller_name !== 'string' || typeof body.call_id !== 'string') problems.push('caller_name/call_id not strings');
    if (body.call_type !== 'audio' && body.call_type !== 'video') problems.push(`call_type ${String(body.call_type)}`);
  }
  return problems;
}

/** A visible missed-call alert: to the alert token, bundle topic (no .voip), a collapse id. */
function checkMissedCallAlert(headers: Record<string, string | undefined>, rawBody: string, bodyLimit: number): string[] {
  const problems: string[] = [];
  const topic = headers['apns-topic'];
  if (!topic || topic.endsWith('.voip')) problems.push(`apns-topic ${topic}`);
  if (!priorityIs10(headers['apns-priority'])) problems.push(`apns-priority ${headers['apns-priority']}`);
  // A missed call stays worth showing for a day by default (MISSED_CALL_TTL_SECONDS).
  const exp = expirationProblem(headers['apns-expiration'], 31 * 86400_000);
  if (exp) problems.push(exp);
  const collapse = headers['apns-collapse-id'];
  if (!collapse || Buffer.byteLength(collapse) > 64) problems.push(`apns-collapse-id ${collapse}`);
  if (Buffer.byteLength(rawBody) > bodyLimit) problems.push('payload too large');
  const body = parseBody(rawBody, problems);
  if (body) {
    const keys = Object.keys(body).sort().join(',');
    if (keys !== 'aps,call_id,call_type,type') problems.push(`body keys ${keys}`);
    const aps = body.aps as { alert?: Record<string, unknown> } | undefined;
    if (Object.keys(aps ?? {}).join(',') !== 'alert') problems.push(`aps keys ${Object.keys(aps ?? {}).join(',')}`);
    const alert = aps?.alert ?? {};
    if (Object.keys(alert).sort().join(',') !== 'body,title' || typeof alert.title !== 'string' || typeof alert.body !== 'string') problems.push('aps.alert is not {title, body}');
    if (body.type !== 'missed_call') problems.push(`type ${String(body.type)}`);
    if (typeof body.call_id !== 'string') problems.push('call_id not a string');
    if (body.call_type !== 'audio' && body.call_type !== 'video') problems.push(`call_type ${String(body.call_type)}`);
  }
  return problems;
}

export interface ApnsStandInOptions {
  key: TestApnsKey;
  /** Listen address (default 127.0.0.1). */
  host?: string;
  /** Listen port (default 0: any free one). The benchmark's apns2 baseline needs 443. */
  port?: number;
  /** Called for every recorded request as it is answered (the benchmark times pushes with it). */
  onRequest?: (record: ApnsRecordedRequest) => void;
  /** More keys accepted besides `key` (several teams, a rotation). */
  keys?: TestApnsKey[];
  /** A label recorded on each request ('sandbox', 'production'). */
  environment?: string;
}

export async function startApnsStandIn(opts: ApnsStandInOptions): Promise<ApnsStandIn> {
  const requests: ApnsRecordedRequest[] = [];
  const programs = new Map<string | null, ApnsAnswer[]>();
  const sessions = new Map<ServerHttp2Session, number>();
  const silent = new Set<ServerHttp2Session>();
  let sessionCount = 0;
  const keys = new Map<string, TestApnsKey>([opts.key, ...(opts.keys ?? [])].map((k) => [k.keyId, k]));
  // A provider token is reused for up to an hour: verify each distinct one once (its age is
  // still checked on every use), so the stand-in's own CPU stays out of benchmark figures.
  const verified = new Map<string, { claims: ApnsRecordedRequest['jwtClaims']; problem: string | null }>();
  const verifyCached = (jwt: string) => {
    let result = verified.get(jwt);
    if (!result) {
      result = decodeJwt(jwt, keys);
      verified.set(jwt, result);
    }
    if (result.claims && Date.now() / 1000 - result.claims.iat > 3600) return { claims: null, problem: 'iat out of range' };
    if (result.claims && !keys.has(result.claims.kid)) return { claims: null, problem: `kid ${result.claims.kid} revoked` };
    return result;
  };

  const nextAnswer = (token: string): ApnsAnswer => {
    const list = programs.get(token) ?? programs.get(null);
    if (!list || list.length === 0) return { status: 200 };
    return list.length > 1 ? list.shift()! : list[0]!;
  };

  const reply = (res: Http2ServerResponse, status: number, reason?: string, extra: Record<string, string> = {}, timestamp?: number) => {
    res.writeHead(status, { 'apns-id': crypto.randomUUID(), ...(reason ? { 'content-type': 'application/json' } : {}), ...extra });
    if (!reason) return res.end();
    res.end(JSON.stringify(status === 410 ? { reason, timestamp: timestamp ?? unregisteredTimestamp() } : { reason }));
  };

  const server = createSecureServer({ ...testServerTls(), allowHTTP1: false });
  server.on('session', (session) => {
    sessions.set(session, ++sessionCount);
    session.on('close', () => sessions.delete(session));
  });
  server.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const session = req.stream.session as ServerHttp2Session;
      const rawBody = Buffer.concat(chunks).toString();
      const headers: Record<string, string | undefined> = {};
      for (const [k, v] of Object.entries(req.headers)) if (!k.startsWith(':')) headers[k] = Array.isArray(v) ? v.join(',') : v;
      const match = /^\/3\/device\/([0-9A-Za-z]+)$/.exec(req.url);
      const token = match?.[1] ?? '';
      const auth = headers.authorization ?? '';
      const jwt = auth.toLowerCase().startsWith('bearer ') ? auth.slice(7) : null;
      const decoded = jwt ? verifyCached(jwt) : { claims: null, problem: 'no provider token' };
      const problems = checkRequest(headers, rawBody, 5120);
      let body: unknown = null;
      try {
        body = JSON.parse(rawBody);
      } catch {
        // recorded raw
      }
      const record: ApnsRecordedRequest = {
        token, method: req.method, path: req.url, headers, body, rawBody, jwt, jwtClaims: decoded.claims,
        session: sessions.get(session) ?? 0, environment: opts.environment ?? null, problems, answered: { status: 200 }, at: Date.now(),
      };
      requests.push(record);
      opts.onRequest?.(record);

      if (silent.has(session)) {
        record.answered = { hang: true };
        return;
      }
      // The protocol errors Apple itself would send come first; then the test's program.
      if (req.method !== 'POST') return void reply(res, (record.answered = { status: 405, reason: 'MethodNotAllowed' }).status, 'MethodNotAllowed');
      if (!match) return void reply(res, (record.answered = { status: 404, reason: 'BadPath' }).status, 'BadPath');
      if (!jwt) return void reply(res, (record.answered = { status: 403, reason: 'MissingProviderToken' }).status, 'MissingProviderToken');
      if (decoded.problem) return void reply(res, (record.answered = { status: 403, reason: 'InvalidProviderToken' }).status, 'InvalidProviderToken');
      const allowed = keys.get(decoded.claims!.kid)?.topics;
      if (allowed && !allowed.includes(headers['apns-topic'] ?? '')) {
        return void reply(res, (record.answered = { status: 400, reason: 'TopicDisallowed' }).status, 'TopicDisallowed');
      }
      if (problems.length > 0) {
        const reason = problems.includes('payload too large') ? 'PayloadTooLarge' : 'BadRequestStandIn';
        record.answered = { status: reason === 'PayloadTooLarge' ? 413 : 400, reason };
        return void reply(res, record.answered.status, reason);
      }
      const answer = nextAnswer(token);
      record.answered = answer;
      if ('hang' in answer) return;
      if ('destroy' in answer) {
        if (answer.destroy === 'session') session.destroy();
        else req.stream.close(2); // INTERNAL_ERROR
        return;
      }
      const a = answer as { status: number; reason?: string; retryAfter?: string; delayMs?: number; timestamp?: number };
      const send = () => {
        if (res.stream.destroyed) return;
        if (a.status === 200) reply(res, 200);
        else reply(res, a.status, a.reason, a.retryAfter ? { 'retry-after': a.retryAfter } : {}, a.timestamp);
      };
      if (a.delayMs) setTimeout(send, a.delayMs);
      else send();
    });
  });

  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    port,
    requests,
    sessionsOpened: () => sessionCount,
    answer(token, ...answers) {
      programs.set(token, answers);
    },
    silenceExistingSessions() {
      for (const s of sessions.keys()) silent.add(s);
    },
    reset() {
      programs.clear();
      requests.length = 0;
    },
    addKey(key) {
      keys.set(key.keyId, key);
    },
    revokeKey(keyId) {
      keys.delete(keyId);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sessions.keys()) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Apple's two gateways as two stand-ins sharing the accepted keys: point APNS_SANDBOX_HOST and
 * APNS_PRODUCTION_HOST at them. Each records its requests with its environment.
 */
export async function startApnsGateways(opts: Omit<ApnsStandInOptions, 'environment'>): Promise<{ sandbox: ApnsStandIn; production: ApnsStandIn }> {
  const [sandbox, production] = await Promise.all([
    startApnsStandIn({ ...opts, environment: 'sandbox' }),
    startApnsStandIn({ ...opts, environment: 'production' }),
  ]);
  return { sandbox, production };
}
