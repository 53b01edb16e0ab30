import { describe, expect, it } from 'vitest';
import { DEFAULT_ALLOWED_CIDRS, createCidrMatcher, parseCidr } from './cidr.ts';

describe('cidr', () => {
  const defaults = createCidrMatcher(DEFAULT_ALLOWED_CIDRS);

  it('allows loopback and private sources by default, also as IPv4-mapped IPv6', () => {
    for (const a of ['127.0.0.1', '::1', '10.1.2.3', '172.20.0.5', '192.168.1.1', '::ffff:127.0.0.1', '::ffff:10.0.0.2', 'fd00::1']) {
      expect(defaults.contains(a), a).toBe(true);
    }
  });

  it('refuses public sources and garbage', () => {
    for (const a of ['8.8.8.8', '172.32.0.1', '2001:db8::1', '::ffff:8.8.8.8', '', 'not-an-ip']) {
      expect(defaults.contains(a), a).toBe(false);
    }
  });

  it('treats a bare address as a single host and rejects bad prefixes', () => {
    expect(createCidrMatcher(['203.0.113.7']).contains('203.0.113.7')).toBe(true);
    expect(createCidrMatcher(['203.0.113.7']).contains('203.0.113.8')).toBe(false);
    expect(parseCidr('10.0.0.0/33')).toBeNull();
    expect(parseCidr('10.0.0.0/-1')).toBeNull();
    expect(parseCidr('10.0.0.0/8/1')).toBeNull();
  });

  it('answers the same for a repeated address, also after more distinct addresses than it remembers', () => {
    const m = createCidrMatcher(['10.0.0.0/8']);
    expect([m.contains('10.0.0.1'), m.contains('8.8.8.8')]).toEqual([true, false]);
    for (let i = 0; i < 1500; i++) m.contains(`10.${(i >> 8) & 255}.${i & 255}.1`);
    expect([m.contains('10.0.0.1'), m.contains('8.8.8.8'), m.contains('10.0.0.1'), m.contains('8.8.8.8')]).toEqual([true, false, true, false]);
  });
});
