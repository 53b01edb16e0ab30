import { BlockList, isIP } from 'node:net';

/** Loopback and private ranges: where Kamailio and Prometheus sit in a normal deployment. */
export const DEFAULT_ALLOWED_CIDRS = [
  '127.0.0.0/8',
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '::1/128',
  'fc00::/7',
];

export interface CidrMatcher {
  contains(address: string): boolean;
}

/** Parses "a.b.c.d/n" or "x::y/n" (a bare address means a single host); returns null when invalid. */
export function parseCidr(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | null {
  const [address = '', prefixText, extra] = text.trim().split('/');
  if (extra !== undefined) return null;
  const version = isIP(address);
  if (version === 0) return null;
  const max = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!/^\d{1,3}$/.test(prefixText ?? String(max)) || prefix > max) return null;
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** Express reports IPv4 peers on a dual-stack socket as ::ffff:a.b.c.d; match them as IPv4. */
function unmapIpv4(address: string): string {
  return address.toLowerCase().startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

export function createCidrMatcher(cidrs: readonly string[]): CidrMatcher {
  const list = new BlockList();
  for (const text of cidrs) {
    const parsed = parseCidr(text);
    if (!parsed) throw new Error(`invalid CIDR: ${text}`);
    list.addSubnet(parsed.address, parsed.prefix, parsed.family);
  }
  const check = (address: string): boolean => {
    const plain = unmapIpv4(address);
    const version = isIP(plain);
    if (version === 0) return false;
    return list.check(plain, version === 4 ? 'ipv4' : 'ipv6');
  };
  // The answer per peer address, remembered: the webhook comes from a handful of Kamailio hosts,
  // and BlockList.check builds a SocketAddress per call (1% of the api's CPU at 500 calls/s).
  // Bounded, since any address may knock; the list never changes after start.
  const seen = new Map<string, boolean>();
  return {
    contains(address: string): boolean {
      let allowed = seen.get(address);
      if (allowed === undefined) {
        allowed = check(address);
        if (seen.size >= 1024) seen.clear();
        seen.set(address, allowed);
      }
      return allowed;
    },
  };
}
