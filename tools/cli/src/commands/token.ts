import { parseArgs } from 'node:util';
import jwt from 'jsonwebtoken';
import type { Config } from '@veil/config/config';
import type { CliDeps } from '../cli.ts';
import { UsageError } from '../errors.ts';

const TTL = /^(\d+)([smhd]?)$/;
const UNIT_SECONDS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86400 };

/** "90", "90s", "15m", "1h", "7d" -> seconds. */
export function parseTtl(text: string): number {
  const m = TTL.exec(text.trim());
  if (!m || Number(m[1]) === 0) throw new UsageError(`--ttl must look like 90s, 15m, 1h or 7d (got "${text}")`);
  return Number(m[1]) * UNIT_SECONDS[m[2]!]!;
}

/** A development JWT the api accepts for <jid>: HS256 with JWT_SECRET, issuer/audience when set. */
export function tokenCommand(argv: string[], config: Config, deps: CliDeps): number {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ttl: { type: 'string', default: '1h' } } });
  const jid = positionals[0];
  if (!jid || positionals.length > 1) throw new UsageError('token takes exactly one JID');
  if (!config.jwt.secret) {
    // With only a public key configured, tokens come from the real identity provider.
    deps.err.write('veil token: JWT_SECRET is not set, so there is no key to sign a dev token with\n');
    return 1;
  }
  const token = jwt.sign({ jid }, config.jwt.secret, {
    algorithm: 'HS256',
    subject: jid,
    expiresIn: parseTtl(values.ttl),
    ...(config.jwt.issuer ? { issuer: config.jwt.issuer } : {}),
    ...(config.jwt.audience ? { audience: config.jwt.audience } : {}),
  });
  deps.out.write(`${token}\n`);
  return 0;
}
