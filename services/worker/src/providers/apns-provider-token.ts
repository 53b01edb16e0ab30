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

/** Reads and checks the .p8 key at start-up; a string names the problem ("not configured"). */
export function loadApnsCredentials(apns: Config['apns']): ApnsCredentials | string {
  const missing = [
    apns.keyId ? null : 'APNS_KEY_ID',
    apns.teamId ? null : 'APNS_TEAM_ID',
    apns.bundleId ? null : 'APNS_BUNDLE_ID',
  ].filter(Boolean);
  if (missing.length > 0) return `${missing.join(', ')} not set`;
  let pem: string;
  try {
    pem = readFileSync(apns.keyPath, 'utf8');
  } catch (err) {
    return `cannot read APNS_KEY_PATH ${apns.keyPath}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`;
  }
  try {
    const key = createPrivateKey(pem);
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      return `APNS_KEY_PATH ${apns.keyPath} is not an EC P-256 (.p8) key`;
    }
    return { key, keyId: apns.keyId!, teamId: apns.teamId!, bundleId: apns.bundleId! };
  } catch {
    return `APNS_KEY_PATH ${apns.keyPath} is not a PEM private key`;
  }
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
