/**
 * A local FCM HTTP v1 and its OAuth2 token endpoint, on one HTTPS server (HTTP/2 with HTTP/1.1
 * fallback), for tests and benchmarks. It verifies the RS256 JWT-bearer assertion of the
 * service account it wrote, hands out access tokens, checks the bearer token and the exact
 * message shape, records every request, and answers any FCM error in google.rpc form.
 * https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages/send
 * https://developers.google.com/identity/protocols/oauth2/service-account#httprest
 *
 *   const fcm = await startFcmStandIn();
 *   const saPath = fcm.writeServiceAccount(dir);  // FCM_SERVICE_ACCOUNT_PATH, token_uri = fcm.tokenUri
 *   // FCM_API_URL = fcm.url
 *   fcm.answer(token, { error: 'UNREGISTERED' });
 *   ... fcm.requests[0].body.message ...; fcm.tokenRequests
 *   fcm.tokenEndpoint = 'error';  // the OAuth endpoint answers 503 ('hang': never answers)
 */
import { generateKeyPairSync, randomBytes, verify, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createSecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { testServerTls } from './certs.ts';

export type FcmErrorName =
  | 'UNREGISTERED'
  | 'SENDER_ID_MISMATCH'
  /** INVALID_ARGUMENT with a BadRequest field violation on message.token. */
  | 'INVALID_ARGUMENT_TOKEN'
  /** INVALID_ARGUMENT about something else (the payload). */
  | 'INVALID_ARGUMENT_PAYLOAD'
  | 'QUOTA_EXCEEDED'
  | 'INTERNAL'
  | 'UNAVAILABLE'
  | 'UNAUTHENTICATED'
  | 'THIRD_PARTY_AUTH_ERROR';

/** How the OAuth2 token endpoint behaves: normally, 503 to every request, or no answer at all. */
export type FcmTokenEndpointMode = 'ok' | 'error' | 'hang';

/** The last answer of a programmed list repeats. */
export type FcmAnswer = { status: 200 } | { error: FcmErrorName; retryAfter?: string } | { hang: true };

export interface FcmRecordedRequest {
  path: string;
  /** The project of the path (several projects share one stand-in, as they share FCM). */
  projectId: string;
  httpVersion: string;
  authorization: string | undefined;
  body: { message?: { token?: string; data?: Record<string, string>; android?: { priority?: string; ttl?: string } } } | null;
  problems: string[];
  answered: FcmAnswer;
  at: number;
}

export interface FcmStandIn {
  /** For FCM_API_URL. */
  url: string;
  /** The OAuth2 token endpoint, written into the service account as token_uri. */
  tokenUri: string;
  projectId: string;
  clientEmail: string;
  requests: FcmRecordedRequest[];
  /** Token endpoint hits (successful or not). */
  tokenRequests: number;
  /** Access-token lifetime handed out, seconds (default 3600). */
  accessTokenLifetimeSeconds: number;
  /** Default 'ok'; 'error' answers 503, 'hang' never answers (requests still count). */
  tokenEndpoint: FcmTokenEndpointMode;
  /**
   * Writes a service-account JSON into `dir`; returns its path. Default: the stand-in's own
   * project. Another `projectId` creates that project (its own account and key); `newKey` adds
   * a fresh key to the account (both stay valid, as after "Add key" in Google's console).
   */
  writeServiceAccount(dir: string, opts?: { projectId?: string; newKey?: boolean }): string;
  /** Token-endpoint hits that were for this project's account. */
  tokenRequestsFor(projectId: string): number;
  answer(token: string | null, ...answers: FcmAnswer[]): void;
  /** Every access token issued so far is refused with 401 from now on. */
  revokeAccessTokens(): void;
  /** HTTP/2 connections accepted so far. */
  sessionsOpened(): number;
  /**
   * The existing HTTP/2 connections go silent: messages:send on them is never answered (a NAT
   * that lost the mapping). New connections behave normally.
   */
  silenceExistingSessions(): void;
  reset(): void;
  close(): Promise<void>;
}

const RPC: Record<FcmErrorName, { http: number; status: string; errorCode: string; tokenViolation?: boolean; otherViolation?: boolean }> = {
  UNREGISTERED: { http: 404, status: 'NOT_FOUND', errorCode: 'UNREGISTERED' },
  SENDER_ID_MISMATCH: { http: 403, status: 'PERMISSION_DENIED', errorCode: 'SENDER_ID_MISMATCH' },
  INVALID_ARGUMENT_TOKEN: { http: 400, status: 'INVALID_ARGUMENT', errorCode: 'INVALID_ARGUMENT', tokenViolation: true },
  INVALID_ARGUMENT_PAYLOAD: { http: 400, status: 'INVALID_ARGUMENT', errorCode: 'INVALID_ARGUMENT', otherViolation: true },
  QUOTA_EXCEEDED: { http: 429, status: 'RESOURCE_EXHAUSTED', errorCode: 'QUOTA_EXCEEDED' },
  INTERNAL: { http: 500, status: 'INTERNAL', errorCode: 'INTERNAL' },
  UNAVAILABLE: { http: 503, status: 'UNAVAILABLE', errorCode: 'UNAVAILABLE' },
  UNAUTHENTICATED: { http: 401, status: 'UNAUTHENTICATED', errorCode: 'UNAUTHENTICATED' },
  THIRD_PARTY_AUTH_ERROR: { http: 401, status: 'UNAUTHENTICATED', errorCode: 'THIRD_PARTY_AUTH_ERROR' },
};

/** A google.rpc.Status error body as FCM sends it. */
export function fcmErrorBody(name: FcmErrorName): { http: number; body: object } {
  const e = RPC[name];
  const details: object[] = [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode: e.errorCode }];
  if (e.tokenViolation) {
    details.push({ '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: [{ field: 'message.token', description: 'Invalid registration token' }] });
  }
  if (e.otherViolation) {
    details.push({ '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: [{ field: 'message.android.ttl', description: 'Invalid value' }] });
  }
  return { http: e.http, body: { error: { code: e.http, message: `stand-in ${name}`, status: e.status, details } } };
}

function checkMessage(body: FcmRecordedRequest['body']): string[] {
  const problems: string[] = [];
  const m = body?.message;
  if (!m) return ['no message'];
  if (Object.keys(body!).join(',') !== 'message') problems.push('extra top-level fields');
  if (Object.keys(m).sort().join(',') !== 'android,data,token') problems.push(`message keys ${Object.keys(m).sort().join(',')}`);
  if (typeof m.token !== 'string' || m.token.length === 0) problems.push('no token');
  const d = m.data ?? {};
  // A ringing call, or the "call ended" message that dismisses it (SPEC: exactly these keys).
  const expectedKeys = d.type === 'call_ended' ? 'call_id,reason,type' : 'call_id,call_type,caller_name,type';
  if (Object.keys(d).sort().join(',') !== expectedKeys) problems.push(`data keys ${Object.keys(d).sort().join(',')}`);
  if (d.type !== 'call' && d.type !== 'call_ended') problems.push(`data.type is ${String(d.type)}`);
  if (d.type === 'call_ended' && !['cancelled', 'timeout', 'answered', 'declined'].includes(String(d.reason))) problems.push(`data.reason ${String(d.reason)}`);
  if (Object.values(d).some((v) => typeof v !== 'string')) problems.push('data values must be strings');
  if (m.android?.priority !== 'high') problems.push('android.priority is not high');
  if (!/^\d+s$/.test(m.android?.ttl ?? '') || Number.parseInt(m.android!.ttl!, 10) < 1) problems.push(`android.ttl ${m.android?.ttl}`);
  return problems;
}

export interface FcmStandInOptions {
  projectId?: string;
  /** Called for every recorded messages:send request (the benchmark times pushes with it). */
  onRequest?: (record: FcmRecordedRequest) => void;
}

export async function startFcmStandIn(opts: FcmStandInOptions = {}): Promise<FcmStandIn> {
  const projectId = opts.projectId ?? 'veil-test';
  const clientEmail = `push@${projectId}.iam.gserviceaccount.com`;
  type Project = { clientEmail: string; keys: { privateKey: KeyObject; publicKey: KeyObject }[]; tokenRequests: number };
  const newProject = (id: string): Project => ({
    clientEmail: `push@${id}.iam.gserviceaccount.com`,
    keys: [generateKeyPairSync('rsa', { modulusLength: 2048 })],
    tokenRequests: 0,
  });
  const projects = new Map<string, Project>([[projectId, newProject(projectId)]]);
  /** access token -> the project whose account it was issued to */
  const issued = new Map<string, string>();
  const revoked = new Set<string>();
  const programs = new Map<string | null, FcmAnswer[]>();
  const requests: FcmRecordedRequest[] = [];
  let port = 0;

  const nextAnswer = (token: string): FcmAnswer => {
    const list = programs.get(token) ?? programs.get(null);
    if (!list || list.length === 0) return { status: 200 };
    return list.length > 1 ? list.shift()! : list[0]!;
  };
  const json = (res: Http2ServerResponse, status: number, body: object, extra: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', ...extra }).end(JSON.stringify(body));
  };

  const state = {
    tokenRequests: 0,
    accessTokenLifetimeSeconds: 3600,
    tokenEndpoint: 'ok' as FcmTokenEndpointMode,
  };

  const handleToken = (raw: string, res: Http2ServerResponse) => {
    state.tokenRequests++;
    if (state.tokenEndpoint === 'hang') return;
    if (state.tokenEndpoint === 'error') {
      return json(res, 503, { error: 'temporarily_unavailable', error_description: 'stand-in outage' });
    }
    const form = new URLSearchParams(raw);
    const assertion = form.get('assertion') ?? '';
    const iss = assertionIssuer(assertion);
    const owner = [...projects].find(([, p]) => p.clientEmail === iss);
    if (owner) owner[1].tokenRequests++;
    const problem = owner
      ? owner[1].keys.map((k) => verifyAssertion(assertion, k.publicKey, owner[1].clientEmail, `https://127.0.0.1:${port}/token`)).reduce((a, b) => (a === null || b === null ? null : a))
      : `iss ${iss}`;
    if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer' || problem) {
      return json(res, 400, { error: 'invalid_grant', error_description: problem ?? 'bad grant_type' });
    }
    const token = `ya29.stand-in-${randomBytes(12).toString('hex')}`;
    issued.set(token, owner![0]);
    json(res, 200, { access_token: token, expires_in: state.accessTokenLifetimeSeconds, token_type: 'Bearer' });
  };

  const handleSend = (req: Http2ServerRequest, raw: string, res: Http2ServerResponse) => {
    let body: FcmRecordedRequest['body'] = null;
    try {
      body = JSON.parse(raw) as FcmRecordedRequest['body'];
    } catch {
      // recorded as null
    }
    const project = /^\/v1\/projects\/([^/]+)\/messages:send$/.exec(req.url)![1]!;
    const record: FcmRecordedRequest = {
      path: req.url, projectId: project, httpVersion: req.httpVersion, authorization: req.headers.authorization, body,
      problems: checkMessage(body), answered: { status: 200 }, at: Date.now(),
    };
    requests.push(record);
    opts.onRequest?.(record);
    const bearer = (req.headers.authorization ?? '').replace(/^Bearer /, '');
    if (!issued.has(bearer) || revoked.has(bearer)) {
      const e = fcmErrorBody('UNAUTHENTICATED');
      record.answered = { error: 'UNAUTHENTICATED' };
      return json(res, e.http, e.body);
    }
    if (issued.get(bearer) !== project) {
      // Another project's account has no permission on this one.
      record.answered = { error: 'PERMISSION_DENIED' as FcmErrorName };
      return json(res, 403, { error: { code: 403, message: 'stand-in: access token of another project', status: 'PERMISSION_DENIED' } });
    }
    if (record.problems.length > 0) {
      const e = fcmErrorBody('INVALID_ARGUMENT_PAYLOAD');
      record.answered = { error: 'INVALID_ARGUMENT_PAYLOAD' };
      return json(res, e.http, e.body);
    }
    const answer = nextAnswer(body!.message!.token!);
    record.answered = answer;
    if ('hang' in answer) return;
    if ('status' in answer) return json(res, 200, { name: `projects/${projectId}/messages/${randomBytes(8).toString('hex')}` });
    const e = fcmErrorBody(answer.error);
    json(res, e.http, e.body, answer.retryAfter ? { 'retry-after': answer.retryAfter } : {});
  };

  const server = createSecureServer({ ...testServerTls(), allowHTTP1: true });
  const sessions = new Set<import('node:http2').ServerHttp2Session>();
  const silent = new Set<import('node:http2').ServerHttp2Session>();
  let sessionCount = 0;
  // HTTP/1.1 connections too (google-auth-library fetches tokens over them): close() must not
  // wait for a request the token endpoint is told to leave hanging.
  const sockets = new Set<import('node:net').Socket>();
  server.on('secureConnection', (socket: import('node:net').Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('session', (s) => {
    sessionCount++;
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString();
      if (req.method === 'POST' && req.url === '/token') return handleToken(raw, res);
      if (req.stream && silent.has(req.stream.session as import('node:http2').ServerHttp2Session)) return;
      const sendTo = /^\/v1\/projects\/([^/]+)\/messages:send$/.exec(req.url)?.[1];
      if (req.method === 'POST' && sendTo && projects.has(sendTo)) return handleSend(req, raw, res);
      json(res, 404, { error: { code: 404, message: 'not found', status: 'NOT_FOUND' } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  const url = `https://127.0.0.1:${port}`;

  return {
    url,
    tokenUri: `${url}/token`,
    projectId,
    clientEmail,
    requests,
    get tokenRequests() {
      return state.tokenRequests;
    },
    get accessTokenLifetimeSeconds() {
      return state.accessTokenLifetimeSeconds;
    },
    set accessTokenLifetimeSeconds(v: number) {
      state.accessTokenLifetimeSeconds = v;
    },
    get tokenEndpoint() {
      return state.tokenEndpoint;
    },
    set tokenEndpoint(v: FcmTokenEndpointMode) {
      state.tokenEndpoint = v;
    },
    writeServiceAccount(dir: string, wanted: { projectId?: string; newKey?: boolean } = {}) {
      const id = wanted.projectId ?? projectId;
      let project = projects.get(id);
      if (!project) projects.set(id, (project = newProject(id)));
      else if (wanted.newKey) project.keys.push(generateKeyPairSync('rsa', { modulusLength: 2048 }));
      const n = project.keys.length;
      const path = join(dir, n > 1 ? `${id}-service-account-${n}.json` : `${id}-service-account.json`);
      writeFileSync(path, JSON.stringify({
        type: 'service_account',
        project_id: id,
        private_key_id: randomBytes(20).toString('hex'),
        private_key: project.keys.at(-1)!.privateKey.export({ type: 'pkcs8', format: 'pem' }),
        client_email: project.clientEmail,
        client_id: '100000000000000000000',
        token_uri: `${url}/token`,
      }, null, 2));
      return path;
    },
    answer(token, ...answers) {
      programs.set(token, answers);
    },
    revokeAccessTokens() {
      for (const t of issued.keys()) revoked.add(t);
    },
    tokenRequestsFor: (id: string) => projects.get(id)?.tokenRequests ?? 0,
    sessionsOpened: () => sessionCount,
    silenceExistingSessions() {
      for (const s of sessions) silent.add(s);
    },
    reset() {
      programs.clear();
      requests.length = 0;
      state.tokenRequests = 0;
      state.tokenEndpoint = 'ok';
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  } as FcmStandIn;
}

function assertionIssuer(assertion: string): string | null {
  try {
    return (JSON.parse(Buffer.from(assertion.split('.')[1] ?? '', 'base64url').toString()) as { iss?: string }).iss ?? null;
  } catch {
    return null;
  }
}

/** RS256 JWT-bearer assertion per RFC 7523 as Google checks it; returns what is wrong, or null. */
function verifyAssertion(assertion: string, key: KeyObject, iss: string, aud: string): string | null {
  const parts = assertion.split('.');
  if (parts.length !== 3) return 'assertion is not a JWT';
  try {
    const header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString()) as { alg?: string };
    const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString()) as { iss?: string; aud?: string; scope?: string; iat?: number; exp?: number };
    if (header.alg !== 'RS256') return `alg ${header.alg}`;
    if (!verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), key, Buffer.from(parts[2]!, 'base64url'))) return 'bad signature';
    if (claims.iss !== iss) return `iss ${claims.iss}`;
    if (claims.aud !== aud) return `aud ${claims.aud}`;
    if (!claims.scope?.split(' ').includes('https://www.googleapis.com/auth/firebase.messaging')) return `scope ${claims.scope}`;
    const now = Date.now() / 1000;
    if (!claims.iat || !claims.exp || claims.exp < now || claims.iat > now + 60 || claims.exp - claims.iat > 3600) return 'iat/exp out of range';
    return null;
  } catch {
    return 'unparsable assertion';
  }
}
