import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeTestApnsKey } from '@veil/testkit/apns-stand-in';
import { ApnsProviderToken, loadApnsCredentials } from '../src/providers/apns-provider-token.ts';

const key = writeTestApnsKey(mkdtempSync(join(tmpdir(), 'veil-key-')));
const apns = { keyPath: key.path, keyId: key.keyId, teamId: key.teamId, bundleId: 'com.example.veil', useSandbox: true, host: 'x' };

describe('APNs provider token rules', () => {
  it('is reused for 50 minutes, then renewed', () => {
    let now = 1_000_000;
    const creds = loadApnsCredentials(apns);
    if (typeof creds === 'string') throw new Error(creds);
    const token = new ApnsProviderToken(creds, () => now);
    const first = token.get();
    now += 49 * 60_000;
    expect(token.get()).toBe(first);
    now += 2 * 60_000;
    expect(token.get()).not.toBe(first);
    expect(token.minted).toBe(2);
  });

  it('ExpiredProviderToken answers for one JWT renew it once', () => {
    const creds = loadApnsCredentials(apns);
    if (typeof creds === 'string') throw new Error(creds);
    const token = new ApnsProviderToken(creds);
    const first = token.get();
    token.renew(first);
    token.renew(first);
    expect(token.minted).toBe(2);
    expect(token.get()).not.toBe(first);
  });

  it('a missing id or an unreadable or non-EC key is "not configured" with the problem named', () => {
    expect(loadApnsCredentials({ ...apns, keyId: null })).toBe('APNS_KEY_ID not set');
    expect(loadApnsCredentials({ ...apns, keyPath: '/nonexistent.p8' })).toMatch(/cannot read APNS_KEY_PATH/);
    expect(loadApnsCredentials({ ...apns, keyPath: '/etc/hostname' })).toMatch(/not a PEM private key/);
  });

  it('malformed ids are "not configured", every problem named in one line', () => {
    expect(loadApnsCredentials({ ...apns, keyId: 'short' })).toBe('APNS_KEY_ID must be 10 letters or digits');
    expect(loadApnsCredentials({ ...apns, keyId: 'abcdefghij', teamId: null, bundleId: 'com example', keyPath: '/nonexistent.p8' })).toBe(
      'APNS_TEAM_ID not set; APNS_KEY_ID must be 10 letters or digits; APNS_BUNDLE_ID must be a bundle identifier; ' +
        'cannot read APNS_KEY_PATH /nonexistent.p8: ENOENT',
    );
  });
});
