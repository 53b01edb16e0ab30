import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jwt, { type SignOptions } from 'jsonwebtoken';
import { JWT_SECRET } from './api.ts';

/** An HS256 client JWT as the app's identity provider would mint it. */
export function hsToken(claims: Record<string, unknown>, opts: SignOptions = {}, secret = JWT_SECRET): string {
  return jwt.sign(claims, secret, { algorithm: 'HS256', expiresIn: '5m', ...opts });
}

export interface TestKeyPair {
  privatePem: string;
  publicPem: string;
  /** JWT_PUBLIC_KEY_PATH for this key. */
  publicPath: string;
}

export function writeKeyPair(kind: 'rsa' | 'ec'): TestKeyPair {
  const pair =
    kind === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const publicPem = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const privatePem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const dir = mkdtempSync(join(tmpdir(), 'veil-api-jwt-'));
  const publicPath = join(dir, `${kind}.pub.pem`);
  writeFileSync(publicPath, publicPem);
  return { privatePem, publicPem, publicPath };
}

/** A token with alg "none": header and payload, empty signature. */
export function noneToken(claims: Record<string, unknown>): string {
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc({ alg: 'none', typ: 'JWT' })}.${enc({ ...claims, exp: Math.floor(Date.now() / 1000) + 300 })}.`;
}
