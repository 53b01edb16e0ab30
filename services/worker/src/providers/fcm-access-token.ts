import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { JWT } from 'google-auth-library';

/** The OAuth2 scope for FCM HTTP v1. */
export const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
/** google-auth-library (gtoken) posts here whatever the service account says. */
const LIBRARY_TOKEN_URL = 'https://oauth2.googleapis.com/token';
/** Fetch a new access token this long before the old one expires, never mid-burst at expiry. */
export const ACCESS_TOKEN_REFRESH_EARLY_MS = 5 * 60 * 1000;

export interface FcmAccessTokenOptions {
  /** Default ACCESS_TOKEN_REFRESH_EARLY_MS; tests use seconds with short-lived tokens. */
  refreshEarlyMs?: number;
  now?: () => number;
}

export interface FcmServiceAccount {
  projectId: string;
  clientEmail: string;
  privateKey: string;
  tokenUri: string;
}

/** Reads and checks the service-account JSON at start-up; a string names the problem. */
export function loadFcmServiceAccount(path: string): FcmServiceAccount | string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return `cannot read FCM_SERVICE_ACCOUNT_PATH ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`;
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return `FCM_SERVICE_ACCOUNT_PATH ${path} is not JSON`;
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
 */
export class FcmAccessToken {
  private readonly jwt: JWT;
  private cached: { token: string; expiresAt: number; afterUnauthorized: boolean } | null = null;
  private inflight: Promise<{ token: string; expiresAt: number }> | null = null;
  private nextIsAfterUnauthorized = false;
  private readonly refreshEarlyMs: number;
  private readonly now: () => number;

  constructor(account: FcmServiceAccount, opts: FcmAccessTokenOptions = {}) {
    this.refreshEarlyMs = opts.refreshEarlyMs ?? ACCESS_TOKEN_REFRESH_EARLY_MS;
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
          options.timeout = 5000;
        }
        return options;
      },
    });
  }

  /** A valid access token; whether it was fetched right after a 401 (see `rejected`). */
  async get(): Promise<{ token: string; afterUnauthorized: boolean }> {
    const c = this.cached;
    if (c && c.expiresAt - this.now() > this.refreshEarlyMs) return c;
    this.inflight ??= this.fetch().finally(() => {
      this.inflight = null;
    });
    const fresh = await this.inflight;
    return { token: fresh.token, afterUnauthorized: this.cached?.afterUnauthorized ?? false };
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

  private async fetch(): Promise<{ token: string; expiresAt: number }> {
    // Marks the library's copy expired, so it really asks the endpoint instead of its own cache.
    this.jwt.credentials = { expiry_date: 1 };
    const credentials = await this.jwt.authorize();
    if (!credentials.access_token) throw new Error('token endpoint answered without access_token');
    const expiresAt = credentials.expiry_date ?? this.now() + 3600_000;
    this.cached = { token: credentials.access_token, expiresAt, afterUnauthorized: this.nextIsAfterUnauthorized };
    this.nextIsAfterUnauthorized = false;
    return this.cached;
  }
}
