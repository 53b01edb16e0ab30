/**
 * A local identity provider's JWKS endpoint (HTTPS with the test CA) for JWT_JWKS_URL tests:
 * it serves whatever key set a test gives it, counts fetches, and can fail the ways a real
 * provider does (an error status, a body that is not a key set, a connection that never answers).
 *
 *   const idp = await startJwksStandIn();     // JWT_JWKS_URL = idp.url
 *   const key = idp.addKey('rsa', 'k1');      // sign tokens with key.privatePem, header kid k1
 *   idp.answer({ hang: true });               // the provider goes silent
 *   await idp.close();
 */
import { generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { testServerTls } from './certs.ts';

export interface JwksSigningKey {
  kid: string;
  /** PKCS#8 PEM, to sign test tokens with. */
  privatePem: string;
  /** The public JWK as the provider publishes it (kid included). */
  jwk: JsonWebKey & { kid: string };
}

/** A fresh RS256 (RSA 2048) or ES256 (P-256) key pair and its public JWK. */
export function createJwksSigningKey(kind: 'rsa' | 'ec', kid: string): JwksSigningKey {
  const pair = kind === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const jwk = { ...pair.publicKey.export({ format: 'jwk' }), kid, use: 'sig' };
  return { kid, privatePem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), jwk };
}

/** Instead of the key set: an HTTP status with a raw body, or no answer at all. */
export type JwksAnswer = { status: number; body: string } | { hang: true };

export interface JwksStandIn {
  /** https://127.0.0.1:<port>/.well-known/jwks.json */
  url: string;
  /** Requests for the key set so far. */
  fetches(): number;
  /** Every path requested (a token's jku/x5u must never show up here). */
  paths: string[];
  /** Creates a key, publishes it in the set and returns it. */
  addKey(kind: 'rsa' | 'ec', kid: string): JwksSigningKey;
  /** Replaces the published set (any JSON: tests also serve malformed ones). */
  setKeys(keys: unknown[]): void;
  /** Fail the next requests this way until answer(null). */
  answer(answer: JwksAnswer | null): void;
  close(): Promise<void>;
}

export async function startJwksStandIn(): Promise<JwksStandIn> {
  let keys: unknown[] = [];
  let override: JwksAnswer | null = null;
  let fetches = 0;
  const paths: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer(testServerTls(), (req, res) => {
    paths.push(req.url ?? '');
    if (req.url !== '/.well-known/jwks.json') {
      res.writeHead(404).end();
      return;
    }
    fetches++;
    if (override && 'hang' in override) return;
    if (override) {
      res.writeHead(override.status, { 'content-type': 'application/json' }).end(override.body);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
  });
  server.on('secureConnection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}/.well-known/jwks.json`,
    fetches: () => fetches,
    paths,
    addKey(kind, kid) {
      const key = createJwksSigningKey(kind, kid);
      keys = [...keys, key.jwk];
      return key;
    },
    setKeys(next) {
      keys = next;
    },
    answer(next) {
      override = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
