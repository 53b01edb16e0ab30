import { Client } from 'undici';
import type { PushJob } from '@veil/queue/contracts';
import type { ApnsProviderToken, ApnsCredentials } from './apns-provider-token.ts';
import { classifyApnsAnswer } from './apns-outcomes.ts';
import { apnsRequest } from './apns-request.ts';
import { PermanentError, RetryableError, parseRetryAfter, type PushProvider, type SendResult } from './types.ts';

export interface ApnsProviderOptions {
  /** host[:port] (config.apns.host); always https, trusted through NODE_EXTRA_CA_CERTS. */
  host: string;
  credentials: ApnsCredentials;
  providerToken: ApnsProviderToken;
  /** Per-request bound: a call cannot wait for undici's 300 s default. */
  requestTimeoutMs?: number;
  /** Title and lifetime of missed-call alerts (MISSED_CALL_TITLE, MISSED_CALL_TTL_SECONDS). */
  missedCall: { title: string; ttlSeconds: number };
  /** Streams multiplexed on the one HTTP/2 connection (Apple allows ~1000 per connection). */
  maxConcurrentStreams?: number;
}

/**
 * VoIP pushes over one warm, multiplexed HTTP/2 connection (undici Client, allowH2).
 *
 * A connection that died silently while idle (NAT timeout, half-open TCP) answers nothing:
 * the first request on it hits the request timeout, and that timeout throws the whole client
 * away, so the retry (and every later push) opens a fresh connection. HTTP/2 PINGs alone
 * cannot do this: Node never times out an unanswered PING.
 */
export function createApnsProvider(opts: ApnsProviderOptions): PushProvider {
  const origin = `https://${opts.host}`;
  const timeout = opts.requestTimeoutMs ?? 5000;
  const streams = opts.maxConcurrentStreams ?? 500;
  const connect = () => {
    return new Client(origin, {
      allowH2: true,
      // undici only multiplexes requests up to `pipelining` at once on an h2 session.
      pipelining: streams,
      maxConcurrentStreams: streams,
      headersTimeout: timeout,
      bodyTimeout: timeout,
      connectTimeout: timeout,
      pingInterval: 30_000,
      // Keep the connection open between calls (Apple: "keep your connections open").
      keepAliveTimeout: 10 * 60_000,
      keepAliveMaxTimeout: 60 * 60_000,
    });
  };
  let client = connect();

  /** Replace a connection we no longer trust; concurrent failures on it replace it once. */
  const recycle = (failed: Client) => {
    if (client !== failed) return;
    client = connect();
    // close, not destroy: other streams on it may be healthy and finish; the dead ones hit
    // their own timeout. New pushes already go to the fresh connection.
    failed.close().catch(() => {});
  };

  return {
    async send(push: PushJob): Promise<SendResult> {
      const jwt = opts.providerToken.get();
      const request = apnsRequest(push, { bundleId: opts.credentials.bundleId, missedCall: opts.missedCall, now: Date.now() });
      const used = client;
      let res;
      try {
        res = await used.request({
          path: `/3/device/${encodeURIComponent(push.push_token)}`,
          method: 'POST',
          headers: { authorization: `bearer ${jwt}`, ...request.headers },
          body: request.body,
          // POST is not idempotent to undici, which would then send one stream at a time;
          // a push is safe to repeat (at-least-once), so let requests share the session.
          idempotent: true,
          // Belt and braces over headersTimeout: nothing may outlive the bound.
          signal: AbortSignal.timeout(timeout + 1000),
        });
      } catch (err) {
        recycle(used);
        throw new RetryableError(`APNs transport error: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, null, { cause: err });
      }

      if (res.statusCode === 200) {
        await res.body.dump();
        return 'delivered';
      }
      let reason: string | null = null;
      let timestamp: unknown;
      try {
        ({ reason = null, timestamp } = (await res.body.json()) as { reason?: string; timestamp?: unknown });
      } catch {
        // an error without a JSON body is classified by status alone
      }
      const action = classifyApnsAnswer(res.statusCode, reason);
      const label = `${res.statusCode} ${reason ?? ''}`.trim();
      switch (action) {
        case 'token-invalid':
          // 410 says since when the token is invalid; a re-registration after that keeps the row.
          return { tokenInvalid: reason ?? String(res.statusCode), ...(typeof timestamp === 'number' && Number.isFinite(timestamp) ? { unregisteredAt: timestamp } : {}) };
        case 'renew-provider-token':
          opts.providerToken.renew(jwt);
          throw new RetryableError(`APNs ${label}`);
        case 'retry':
          throw new RetryableError(`APNs ${label}`, parseRetryAfter(res.headers['retry-after']));
        default:
          throw new PermanentError(`APNs ${label}`);
      }
    },
    async close() {
      await client.close().catch(() => client.destroy());
    },
  };
}
