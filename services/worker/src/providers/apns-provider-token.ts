import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Config } from '@veil/config/config';

/**
 * Apple accepts a provider JWT for an hour and answers TooManyProviderTokenUpdates when one is
 * minted more often than every 20 minutes. Renewing at 50 minutes stays inside both limits;
 * only an ExpiredProviderToken answer renews earlier.
 * https://developer.apple.com/documentation/usernotifications/establishing-a-token-based-connection-to-apns
 */
export const PROVIDER_TOKEN_RENEW_AFTER_MS = 50 * 60 * 1000;

export interface ApnsCredentials {
  key: KeyObject;
  keyId: string;
  teamId: string;
  bundleId: string;
}

// Apple's key and team ids are 10 upper-case letters or digits; a bundle id is reverse-DNS
// characters. Checked here, not in @veil/config: a typo in an APNs value must leave iOS "not
// configured" (SPEC), not stop the api (which never uses APNs) or the worker's Android pushes.
export const APPLE_ID = /^[A-Z0-9]{10}$/;
const BUNDLE_ID = /^[A-Za-z0-9.-]{1,255}$/;

/**
 * Reads and checks the ids and the .p8 key at start-up. A string is the reason iOS is "not
 * configured", naming every problem at once so the operator fixes them in one go.
 */
export function loadApnsCredentials(apns: Pick<Config['apns'], 'keyPath' | 'keyId' | 'teamId' | 'bundleId'>): ApnsCredentials | string {
  const problems: string[] = [];
  const missing = [
    apns.keyId ? null : 'APNS_KEY_ID',
    apns.teamId ? null : 'APNS_TEAM_ID',
    apns.bundleId ? null : 'APNS_BUNDLE_ID',
  ].filter(Boolean);
  if (missing.length > 0) problems.push(`${missing.join(', ')} not set`);
  if (apns.keyId && !APPLE_ID.test(apns.keyId)) problems.push('APNS_KEY_ID must be 10 letters or digits');
  if (apns.teamId && !APPLE_ID.test(apns.teamId)) problems.push('APNS_TEAM_ID must be 10 letters or digits');
  if (apns.bundleId && !BUNDLE_ID.test(apns.bundleId)) problems.push('APNS_BUNDLE_ID must be a bundle identifier');
  // Missing ids alone say enough: an operator who has not set up APNs has no key file either.
  if (missing.length === 3) return problems.join('; ');
  const key = loadKey(apns.keyPath);
  if (typeof key === 'string') return [...problems, key].join('; ');
  if (problems.length > 0) return problems.join('; ');
  return { key, keyId: apns.keyId!, teamId: apns.teamId!, bundleId: apns.bundleId! };
}

/** The .p8 key at `keyPath`, or why not; `name` is what the operator set it as (env var or apps-file field). */
export function loadKey(keyPath: string, name = 'APNS_KEY_PATH'): KeyObject | string {
  let pem: string;
  try {
    pem = readFileSync(keyPath, 'utf8');
  } catch (err) {
    return `cannot read ${name} ${keyPath}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`;
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    return `${name} ${keyPath} is not a PEM private key`;
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    return `${name} ${keyPath} is not an EC P-256 (.p8) key`;
  }
  return key;
}

function base64url(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** The ES256 provider JWT: made once, shared by every request, renewed per Apple's rules. */
export class ApnsProviderToken {
  private current: { jwt: string; issuedAt: number } | null = null;
  /** How many JWTs this process has minted (metrics, tests). */
  minted = 0;

  constructor(
    private readonly creds: ApnsCredentials,
    private readonly now: () => number = Date.now,
  ) {}

  get(): string {
    if (!this.current || this.now() - this.current.issuedAt >= PROVIDER_TOKEN_RENEW_AFTER_MS) this.mint();
    return this.current!.jwt;
  }

  /**
   * Apple said ExpiredProviderToken for `rejected`. Many in-flight requests carry the same JWT
   * and all get that answer: only the first renews, the rest reuse the new one.
   */
  renew(rejected: string): void {
    if (this.current?.jwt === rejected) this.mint();
  }

  private mint(): void {
    const issuedAt = this.now();
    const input = `${base64url({ alg: 'ES256', kid: this.creds.keyId })}.${base64url({ iss: this.creds.teamId, iat: Math.floor(issuedAt / 1000) })}`;
    // JOSE wants the raw r||s signature, not DER.
    const signature = sign('sha256', Buffer.from(input), { key: this.creds.key, dsaEncoding: 'ieee-p1363' });
    this.current = { jwt: `${input}.${signature.toString('base64url')}`, issuedAt };
    this.minted++;
  }
}
