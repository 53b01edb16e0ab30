import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { createCidrMatcher } from '@veil/config/cidr';
import { bearerToken } from './auth.ts';
import { HttpError } from './errors.ts';
import { jsonBody } from './json-body.ts';

/**
 * Internal endpoints (call-notify, /metrics) are for Kamailio and Prometheus on the private
 * network. The socket's peer address decides, never X-Forwarded-For: that header is whatever
 * the client chose to write, so trusting it would let anyone claim an allowed source.
 */
export function requireAllowedSource(cidrs: readonly string[]): RequestHandler {
  const matcher = createCidrMatcher(cidrs);
  return (req, _res, next) => {
    const peer = req.socket.remoteAddress ?? '';
    next(matcher.contains(peer) ? undefined : new HttpError('forbidden_source', 'source address not allowed'));
  };
}

/** CALL_NOTIFY_SECRET as a bearer token, compared in constant time (digests equalise the lengths). */
export function requireSharedSecret(secret: string | null): RequestHandler {
  if (secret === null) return (_req, _res, next) => next();
  const expected = createHash('sha256').update(secret).digest();
  return (req, _res, next) => {
    const given = bearerToken(req.headers.authorization);
    const ok = given !== null && timingSafeEqual(createHash('sha256').update(given).digest(), expected);
    next(ok ? undefined : new HttpError('unauthorized', 'a valid call-notify secret is required'));
  };
}

/**
 * The gate of every webhook Kamailio posts (call-notify, call-ended, registered): an allowed
 * source, the shared secret when one is set, then a JSON body.
 */
export function internalWebhook(config: { callNotifyAllowedCidrs: readonly string[]; callNotifySecret: string | null }): RequestHandler[] {
  return [requireAllowedSource(config.callNotifyAllowedCidrs), requireSharedSecret(config.callNotifySecret), jsonBody];
}
