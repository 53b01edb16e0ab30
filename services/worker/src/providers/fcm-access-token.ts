import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { JWT } from 'google-auth-library';
import type { Logger } from '@veil/log/logger';

/** The OAuth2 scope for FCM HTTP v1. */
export const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
/** google-auth-library (gtoken) posts here whatever the service account says. */
const LIBRARY_TOKEN_URL = 'https://oauth2.googleapis.com/token';
/** Start fetching a new access token this long before the old one expires, in the background. */
export const ACCESS_TOKEN_REFRESH_EARLY_MS = 5 * 60 * 1000;
/** A token this close to its expiry is not sent: it could expire on its way to FCM. */
export const ACCESS_TOKEN_EXPIRY_SKEW_MS = 30 * 1000;
/** After a background refresh, the next one waits this long: an outage is not hammered. */
export const ACCESS_TOKEN_REFRESH_RETRY_MS = 5 * 1000;
/** One token request, start to answer; the library's own retries are off (the queue retries). */
const TOKEN_REQUEST_TIMEOUT_MS = 5000;

export interface FcmAccessTokenOptions {
  /** Default ACCESS_TOKEN_REFRESH_EARLY_MS; tests use seconds with short-lived tokens. */
  refreshEarlyMs?: number;
  /** Default ACCESS_TOKEN_EXPIRY_SKEW_MS. */
  expirySkewMs?: number;
  /** Default ACCESS_TOKEN_REFRESH_RETRY_MS. */
  refreshRetryMs?: number;
  /** Where a failed background refresh is reported. */
  log: Pick<Logger, 'warn'>;
  now?: () => number;
}

export interface FcmServiceAccount {
  projectId: string;
  clientEmail: string;
  privateKey: string;
  tokenUri: string;
}

/** Reads and checks the service-account JSON at start-up; a string names the problem. */
export function loadFcmServiceAccount(path: string, name = 'FCM_SERVICE_ACCOUNT_PATH'): FcmServiceAccount | string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return `cannot read ${name} ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`;
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return `${name} ${path} is not JSON`;
  }
  const field = (name: string) => (typeof json[name] === 'string' && (json[name] as string).length > 0 ? (json[name] as string) : null);
  const missing = ['project_id', 'client_email', 'private_key'].filter((name) => !field(name));
  if (missing.length > 0) return `FCM service account ${path} lacks ${missing.join(', ')}`;
  try {
    if (createPrivateKey(field('private_key')!).asymmetricKeyType !== 'rsa') return `FCM service account ${path}: private_key is not RSA`;
  } catch {
    return `FCM service account ${path}: private_key is not a PEM private key`;
  }
  const tokenUri = field('token_uri') ?? LIBRARY_TOKEN_URL;
  try {
    new URL(tokenUri);
  } catch {
    return `FCM service account ${path}: token_uri is not a URL`;
  }
  return { projectId: field('project_id')!, clientEmail: field('client_email')!, privateKey: field('private_key')!, tokenUri };
}

/**
 * The OAuth2 access token for FCM, from google-auth-library's JWT (service-account) client:
 * cached, shared by every push, fetched once however many pushes ask at the same moment.
 *
 * Refreshed early and in the background: a push never waits for, nor fails with, Google's token
 * endpoint while the cached token is still good. Only when none is left (first push, real expiry,
 * a 401) do pushes wait, all on one fetch, whose failure they report as their own.
 */
export class FcmAccessToken {
  private readonly jwt: JWT;
  private cached: { token: string; expiresAt: number; afterUnauthorized: boolean } | null = null;
  private inflight: Promise<{ token: string; afterUnauthorized: boolean }> | null = null;
  private nextIsAfterUnauthorized = false;
  private nextBackgroundRefreshAt = 0;
  private readonly refreshEarlyMs: number;
  private readonly expirySkewMs: number;
  private readonly refreshRetryMs: number;
  private readonly log: Pick<Logger, 'warn'>;
  private readonly now: () => number;

  constructor(account: FcmServiceAccount, opts: FcmAccessTokenOptions) {
    this.refreshEarlyMs = opts.refreshEarlyMs ?? ACCESS_TOKEN_REFRESH_EARLY_MS;
    this.expirySkewMs = opts.expirySkewMs ?? ACCESS_TOKEN_EXPIRY_SKEW_MS;
    this.refreshRetryMs = opts.refreshRetryMs ?? ACCESS_TOKEN_REFRESH_RETRY_MS;
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
    this.jwt = new JWT({
      email: account.clientEmail,
      key: account.privateKey,
      scopes: [FCM_SCOPE],
      // The assertion's audience is the endpoint that receives it.
      additionalClaims: { aud: account.tokenUri },
    });
    // The library posts to Google's fixed token URL; the service account names its own
    // token_uri (a private Google endpoint, an egress proxy, a test stand-in). Its transporter
    // (gaxios) takes request interceptors, so the request is pointed there without forking.
    this.jwt.transporter.interceptors.request.add({
      resolved: async (options) => {
        if (String(options.url) === LIBRARY_TOKEN_URL) {
          options.url = new URL(account.tokenUri);
          // gaxios turns `timeout` into a signal before interceptors run (a `timeout` set here is
          // ignored and a silent endpoint held pushes forever), so the signal is set here. Its
          // retries (3 more on 5xx, 2 on no answer) are off: a waiting push fails fast and the
          // queue retries it; a failed background refresh is retried on a later use.
          const timeout = AbortSignal.timeout(TOKEN_REQUEST_TIMEOUT_MS);
          options.signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
          options.retryConfig = { ...options.retryConfig, retry: 0, noResponseRetries: 0 };
        }
        return options;
      },
    });
  }

  /** A valid access token; whether it was fetched right after a 401 (see `rejected`). */
  async get(): Promise<{ token: string; afterUnauthorized: boolean }> {
    const c = this.cached;
    const now = this.now();
    if (c && c.expiresAt - now > this.expirySkewMs) {
      if (c.expiresAt - now <= this.refreshEarlyMs) this.refreshInBackground(now, c.expiresAt);
      return { token: c.token, afterUnauthorized: c.afterUnauthorized };
    }
    return this.fetchShared();
  }

  /** FCM answered 401 to `token`: the next get() fetches a new one (once for all in flight). */
  rejected(token: string): void {
    if (this.cached?.token !== token) return;
    this.cached = null;
    this.nextIsAfterUnauthorized = true;
  }

  /** A push with this token got through: a later 401 is a fresh problem again. */
  accepted(token: string): void {
    if (this.cached?.token === token) this.cached.afterUnauthorized = false;
  }

  /** At most one refresh at a time and one attempt per refreshRetryMs; nobody waits for it. */
  private refreshInBackground(now: number, expiresAt: number): void {
    if (this.inflight || now < this.nextBackgroundRefreshAt) return;
    this.nextBackgroundRefreshAt = now + this.refreshRetryMs;
    this.fetchShared().catch((err: unknown) => {
      // Status and code only: the error also carries the request, whose body is the signed
      // assertion, and an answer may echo it.
      const e = err as { code?: unknown; response?: { status?: number } };
      this.log.warn(
        {
          status: e.response?.status ?? null,
          code: typeof e.code === 'string' ? e.code : null,
          cached_expires_in_ms: expiresAt - this.now(),
          retry_in_ms: this.refreshRetryMs,
        },
        'FCM access token refresh failed; pushes keep the cached token',
      );
    });
  }

  /** One fetch for every caller that asks while it is under way. */
  private fetchShared(): Promise<{ token: string; afterUnauthorized: boolean }> {
    this.inflight ??= this.fetch().finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  private async fetch(): Promise<{ token: string; afterUnauthorized: boolean }> {
    // Marks the library's copy expired, so it really asks the endpoint instead of its own cache.
    this.jwt.credentials = { expiry_date: 1 };
    const credentials = await this.jwt.authorize();
    if (!credentials.access_token) throw new Error('token endpoint answered without access_token');
    const expiresAt = credentials.expiry_date ?? this.now() + 3600_000;
    this.cached = { token: credentials.access_token, expiresAt, afterUnauthorized: this.nextIsAfterUnauthorized };
    this.nextIsAfterUnauthorized = false;
    return { token: this.cached.token, afterUnauthorized: this.cached.afterUnauthorized };
  }
}
