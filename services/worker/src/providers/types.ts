import type { PushJob } from '@veil/queue/contracts';

/**
 * What a provider answers for one push. A rejected token is a normal answer (the queue has
 * nothing to retry), so it is returned; everything else that is not delivery is thrown as a
 * RetryableError or a PermanentError.
 */
export type SendResult =
  | 'delivered'
  /** unregisteredAt: APNs 410's `timestamp` (epoch ms), when Apple found the token invalid. */
  | { tokenInvalid: string; unregisteredAt?: number };

export interface PushProvider {
  send(push: PushJob): Promise<SendResult>;
  close(): Promise<void>;
}

/** Worth another attempt (429, 5xx, timeouts, dropped connections, a refreshed credential). */
export class RetryableError extends Error {
  constructor(
    message: string,
    /** The provider asked for this pause (Retry-After); the backoff never goes below it. */
    readonly retryAfterMs: number | null = null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RetryableError';
  }
}

/** The same request can only fail again (bad key, topic, payload, a second 401): no retry. */
export class PermanentError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentError';
  }
}

/** Retry-After is either delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | null {
  const raw = Array.isArray(value) ? value[0] : value;
  if (!raw) return null;
  if (/^\d+$/.test(raw.trim())) return Number(raw.trim()) * 1000;
  const at = Date.parse(raw);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}
