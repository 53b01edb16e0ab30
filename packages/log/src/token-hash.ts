import { createHash } from 'node:crypto';

/**
 * A push token is a bearer credential for waking someone's phone, so logs only ever carry
 * this short digest: enough to correlate lines about one device, useless to an attacker.
 */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 12);
}
