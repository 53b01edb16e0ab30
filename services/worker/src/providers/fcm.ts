import { Pool } from 'undici';
import type { PushJob } from '@veil/queue/contracts';
import type { FcmAccessToken, FcmServiceAccount } from './fcm-access-token.ts';
import { fcmMessage } from './fcm-message.ts';
import { classifyFcmAnswer, type FcmErrorBody } from './fcm-outcomes.ts';
import { PermanentError, RetryableError, parseRetryAfter, type PushProvider, type SendResult } from './types.ts';

export interface FcmProviderOptions {
  /** config.fcm.apiUrl, e.g. https://fcm.googleapis.com */
  apiUrl: string;
  account: FcmServiceAccount;
  accessToken: FcmAccessToken;
  requestTimeoutMs?: number;
  /** PUSH_TTL_SECONDS: the lifetime of a "call ended" message. */
  pushTtlSeconds: number;
  now?: () => number;
}

/**
 * FCM HTTP v1 data messages over a keep-alive undici pool (HTTP/2 when the server offers it
 * through ALPN, as fcm.googleapis.com does).
 */
export function createFcmProvider(opts: FcmProviderOptions): PushProvider {
  const timeout = opts.requestTimeoutMs ?? 5000;
  const now = opts.now ?? Date.now;
  const url = new URL(opts.apiUrl);
  const basePath = url.pathname.replace(/\/+$/, '');
  const connect = () => {
    return new Pool(url.origin, {
      allowH2: true,
      connections: 4,
      pipelining: 100,
      headersTimeout: timeout,
      bodyTimeout: timeout,
      connectTimeout: timeout,
      keepAliveTimeout: 60_000,
    });
  };
  let pool = connect();

  /**
   * After a transport error (a timeout above all) the connection is not trusted again: undici
   * cancels the timed-out HTTP/2 stream but keeps the session, so a connection that died
   * silently (NAT state lost) would fail every later push and retry with the same timeout.
   * Concurrent failures on one pool replace it once.
   */
  const recycle = (failed: Pool) => {
    if (pool !== failed) return;
    pool = connect();
    // close, not destroy: streams still healthy on it finish; new pushes use the fresh pool.
    failed.close().catch(() => {});
  };
  const path = `${basePath}/v1/projects/${encodeURIComponent(opts.account.projectId)}/messages:send`;

  async function accessToken() {
    try {
      return await opts.accessToken.get();
    } catch (err) {
      const status = (err as { response?: { status?: number } }).response?.status;
      // The token endpoint refusing our assertion (400 invalid_grant, 401) is a bad key.
      if (status !== undefined && status >= 400 && status < 500 && status !== 429) {
        throw new PermanentError(`FCM OAuth token endpoint answered ${status}`, { cause: err });
      }
      throw new RetryableError('FCM OAuth token unavailable', null, { cause: err });
    }
  }

  return {
    async send(push: PushJob): Promise<SendResult> {
      const { token, afterUnauthorized } = await accessToken();
      const message = fcmMessage(push, { ttlSeconds: opts.pushTtlSeconds, now: now() });
      const used = pool;
      let res;
      try {
        res = await used.request({
          path,
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify(message),
          idempotent: true,
          signal: AbortSignal.timeout(timeout + 1000),
        });
      } catch (err) {
        recycle(used);
        throw new RetryableError(`FCM transport error: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, null, { cause: err });
      }
      if (res.statusCode === 200) {
        await res.body.dump();
        opts.accessToken.accepted(token);
        return 'delivered';
      }
      let body: FcmErrorBody | null = null;
      try {
        body = (await res.body.json()) as FcmErrorBody;
      } catch {
        // classified by status alone
      }
      const { action, code } = classifyFcmAnswer(res.statusCode, body);
      const label = `${res.statusCode} ${code}`;
      switch (action) {
        case 'token-invalid':
          return { tokenInvalid: code };
        case 'refresh-access-token':
          // One refresh per 401: a token fetched right after a 401 that is refused again means
          // the account itself is refused, which another attempt cannot fix.
          if (afterUnauthorized) throw new PermanentError(`FCM ${label} again after a token refresh`);
          opts.accessToken.rejected(token);
          throw new RetryableError(`FCM ${label}; access token refreshed`, 0);
        case 'retry':
          throw new RetryableError(`FCM ${label}`, parseRetryAfter(res.headers['retry-after']));
        default:
          throw new PermanentError(`FCM ${label}`);
      }
    },
    async close() {
      await pool.close().catch(() => pool.destroy());
    },
  };
}
