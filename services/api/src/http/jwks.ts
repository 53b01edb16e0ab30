import { createLocalJWKSet, errors, type JWTHeaderParameters } from 'jose';
import type { Logger } from '@veil/log/logger';

/**
 * The identity provider's key set (JWT_JWKS_URL), cached in memory.
 *
 * jose does the key work (JWK import, choosing the key by kid and by the key type the token's
 * alg requires, refusing private and symmetric keys); this file only decides when to fetch.
 * jose's own createRemoteJWKSet was not enough here: it refetches on every unknown kid while the
 * provider is failing (its cool-down starts only after a success, so junk kids would turn each
 * request into a fetch of a dead provider), and once its cache is stale a failed refetch fails
 * every token, even ones whose key is still in hand.
 */
export interface JwksOptions {
  url: string;
  log: Logger;
  /** Least time between two fetch attempts, successful or not (SPEC: at most once every 30 s). */
  refetchIntervalMs?: number;
  /** Bound on one fetch, connect to last byte: a hanging provider still gets its answer within 2 s. */
  timeoutMs?: number;
  /** A set older than this is refreshed in the background, so a key the provider withdrew stops verifying. */
  maxAgeMs?: number;
}

/** No usable key set could be fetched: the api answers 503 jwks_unavailable, not 401. */
export class JwksUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JwksUnavailableError';
  }
}

type KeySet = ReturnType<typeof createLocalJWKSet>;
export type JwksKeySource = (header: JWTHeaderParameters) => ReturnType<KeySet>;

// Real key sets are a few KiB; a multi-megabyte answer is a misconfigured URL, not keys.
const MAX_JWKS_BYTES = 256 * 1024;

async function fetchKeySet(url: string, timeoutMs: number): Promise<{ set: KeySet; kids: number }> {
  // No redirects: a 3xx could lead off https or to a host the operator never configured.
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error', headers: { accept: 'application/json' } });
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`HTTP ${res.status}`);
  }
  if (Number(res.headers.get('content-length') ?? 0) > MAX_JWKS_BYTES) {
    await res.body?.cancel();
    throw new Error('key set larger than 256 KiB');
  }
  const text = await res.text();
  if (text.length > MAX_JWKS_BYTES) throw new Error('key set larger than 256 KiB');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error('not JSON');
  }
  try {
    return { set: createLocalJWKSet(json as never), kids: (json as { keys: unknown[] }).keys.length };
  } catch {
    throw new Error('not a JSON Web Key Set');
  }
}

function describe(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return 'timed out';
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}

export function createJwksKeySource(opts: JwksOptions): JwksKeySource {
  const interval = opts.refetchIntervalMs ?? 30_000;
  const timeoutMs = opts.timeoutMs ?? 1500;
  const maxAge = opts.maxAgeMs ?? 10 * 60_000;
  const host = new URL(opts.url).host;
  let current: KeySet | null = null;
  let fetchedAt = 0;
  let attemptedAt = Number.NEGATIVE_INFINITY;
  let lastFailed = false;
  let inFlight: Promise<void> | null = null;

  /** One fetch at a time; every caller waiting on a refresh shares it. Failures keep the old set. */
  const refresh = (): Promise<void> => {
    inFlight ??= (async () => {
      attemptedAt = Date.now();
      try {
        const { set, kids } = await fetchKeySet(opts.url, timeoutMs);
        current = set;
        fetchedAt = Date.now();
        lastFailed = false;
        opts.log.info({ jwks_host: host, keys: kids }, 'JWKS fetched');
      } catch (err) {
        lastFailed = true;
        const reason = describe(err);
        opts.log.error({ jwks_host: host, reason }, `JWKS fetch failed: ${reason}`);
      } finally {
        inFlight = null;
      }
    })();
    return inFlight;
  };
  /** Waits for a fetch already under way, or starts one if the interval allows. */
  const refreshIfAllowed = async () => {
    if (inFlight) await inFlight;
    else if (Date.now() - attemptedAt >= interval) await refresh();
  };

  return async (header) => {
    if (current === null) {
      await refreshIfAllowed();
      if (current === null) throw new JwksUnavailableError('the identity provider key set could not be fetched');
    } else if (Date.now() - fetchedAt >= maxAge && !inFlight && Date.now() - attemptedAt >= interval) {
      void refresh(); // background: this token is checked against the set in hand
    }
    try {
      return await (current as KeySet)(header);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
    }
    // An unknown kid: the provider may have rotated its keys since the last fetch.
    await refreshIfAllowed();
    try {
      return await (current as KeySet)(header);
    } catch (err) {
      // Still unknown while the provider is failing: we could not check, so this is our outage, not a bad token.
      if (err instanceof errors.JWKSNoMatchingKey && lastFailed) throw new JwksUnavailableError('the identity provider key set could not be refreshed');
      throw err;
    }
  };
}
