import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import jwt, { type SignOptions } from 'jsonwebtoken';
import { loadConfig } from '@veil/config/config';
import { createLogger } from '@veil/log/logger';
import { freePort } from '@veil/testkit/ports';
import { createJwksSigningKey, startJwksStandIn, type JwksSigningKey, type JwksStandIn } from '@veil/testkit/jwks-stand-in';
import { createJwtVerifier, type JwtVerifierOptions } from '../src/http/auth.ts';
import { call, startApi, type RunningApi } from './support/api.ts';
import { createTestDb, type TestDb } from '@veil/testkit/db';
import { writeKeyPair } from './support/tokens.ts';

const JID = 'alice@example.com';
const ISSUER = 'https://id.example.com';
const AUDIENCE = 'veil-push';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb('api_jwks');
});
afterAll(async () => {
  await db?.drop();
});

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function idp(): Promise<JwksStandIn> {
  const server = await startJwksStandIn();
  cleanup.push(() => server.close());
  return server;
}

/** The real app with its verifier built from config as main builds it, plus the verifier's log lines. */
async function apiWith(jwksUrl: string, opts: JwtVerifierOptions = {}, env: Record<string, string> = {}) {
  const fullEnv = { JWT_SECRET: '', JWT_JWKS_URL: jwksUrl, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE, ...env };
  const config = loadConfig(fullEnv);
  const lines: string[] = [];
  const log = createLogger({ service: 'api', level: 'info', destination: { write: (s: string) => void lines.push(s) } });
  const api: RunningApi = await startApi({ db, env: fullEnv, verifier: createJwtVerifier(config.jwt, null, { log, ...opts }) });
  cleanup.push(() => api.close());
  return { api, verifierLog: () => lines.join('') };
}

function sign(key: { privatePem: string; kid?: string; jwk?: { kty?: string } }, claims: Record<string, unknown> = { jid: JID }, opts: SignOptions = {}): string {
  return jwt.sign(claims, key.privatePem, {
    algorithm: key.jwk?.kty === 'EC' ? 'ES256' : 'RS256',
    ...(claims.exp === undefined ? { expiresIn: '5m' } : {}),
    issuer: ISSUER,
    audience: AUDIENCE,
    ...(key.kid !== undefined ? { keyid: key.kid } : {}),
    ...opts,
  });
}

const register = (api: RunningApi, token: string) =>
  call(`${api.url}/api/v1/push/register`, { token, body: { jid: JID, device_id: randomUUID(), platform: 'android', push_token: `tok-${randomUUID()}` } });
const rows = async () => Number((await db.sql`SELECT count(*)::int AS n FROM push_registrations`)[0]!.n);

/** 401 or 503 with the SPEC's error shape, and nothing stored. */
async function expectRefused(api: RunningApi, token: string, status: 401 | 503, code: string) {
  const before = await rows();
  const res = await register(api, token);
  expect(res.status).toBe(status);
  expect(res.body).toEqual({ error: { code, message: expect.any(String) } });
  expect(await rows()).toBe(before);
  return res;
}

describe('JWT_JWKS_URL: keys from the identity provider', () => {
  it('RS256 and ES256 tokens whose kid is in the set register', async () => {
    const server = await idp();
    const rsa = server.addKey('rsa', 'rsa-1');
    const ec = server.addKey('ec', 'ec-1');
    const { api } = await apiWith(server.url);
    expect((await register(api, sign(rsa))).status).toBe(201);
    expect((await register(api, sign(ec))).status).toBe(201);
    // Both kids came from one fetch: the set is cached.
    expect(server.fetches()).toBe(1);
  });

  it('issuer, audience and exp are checked as for the other keys', async () => {
    const server = await idp();
    const key = server.addKey('rsa', 'k1');
    const { api } = await apiWith(server.url);
    await expectRefused(api, sign(key, { jid: JID }, { issuer: 'https://evil.example.com' }), 401, 'invalid_token');
    await expectRefused(api, sign(key, { jid: JID }, { audience: 'someone-else' }), 401, 'invalid_token');
    await expectRefused(api, sign(key, { jid: JID, exp: Math.floor(Date.now() / 1000) - 60 }), 401, 'token_expired');
    const noExp = jwt.sign({ jid: JID }, key.privatePem, { algorithm: 'RS256', keyid: 'k1', issuer: ISSUER, audience: AUDIENCE });
    await expectRefused(api, noExp, 401, 'invalid_token');
  });

  it('a key rotated in at the provider is accepted without a restart, and a withdrawn one is refused', async () => {
    const server = await idp();
    const old = server.addKey('rsa', 'old');
    const { api } = await apiWith(server.url, { jwksRefetchIntervalMs: 0 });
    expect((await register(api, sign(old))).status).toBe(201);
    // The provider rotates: the new key replaces the old one in the set.
    const fresh = createJwksSigningKey('ec', 'new');
    server.setKeys([fresh.jwk]);
    expect((await register(api, sign(fresh))).status).toBe(201);
    expect(server.fetches()).toBe(2);
    await expectRefused(api, sign(old), 401, 'invalid_token');
  });

  it('unknown kids within 30 s (the default interval) of the last fetch fetch nothing, and stay 401', async () => {
    const server = await idp();
    const key = server.addKey('rsa', 'k1');
    const { api } = await apiWith(server.url); // the default interval
    expect((await register(api, sign(key))).status).toBe(201);
    expect(server.fetches()).toBe(1);
    // Junk kids cannot turn requests into fetches of the provider.
    await Promise.all(
      Array.from({ length: 5 }, async (_, i) => {
        const res = await expectRefused(api, sign(createJwksSigningKey('ec', `unknown-${i}`)), 401, 'invalid_token');
        expect(res.body.error.message).toMatch(/kid/);
      }),
    );
    // A key published now is not seen until the interval has passed: the bound holds for good kids too.
    const late = server.addKey('rsa', 'late');
    await expectRefused(api, sign(late), 401, 'invalid_token');
    expect(server.fetches()).toBe(1);
  });

  it('unknown kids arriving together share one refetch', async () => {
    const server = await idp();
    const key = server.addKey('rsa', 'k1');
    const { api } = await apiWith(server.url, { jwksRefetchIntervalMs: 0 });
    expect((await register(api, sign(key))).status).toBe(201);
    server.answer({ hang: true }); // holds the refetch open while the others arrive
    const pending = Array.from({ length: 5 }, (_, i) => register(api, sign(createJwksSigningKey('ec', `unknown-${i}`))));
    const answers = await Promise.all(pending);
    expect(answers.map((a) => a.status)).toEqual([503, 503, 503, 503, 503]);
    expect(server.fetches()).toBe(2);
  });

  it('after the interval an unknown kid fetches the set again', async () => {
    const server = await idp();
    const key = server.addKey('rsa', 'k1');
    const { api } = await apiWith(server.url, { jwksRefetchIntervalMs: 300 });
    expect((await register(api, sign(key))).status).toBe(201);
    const late = server.addKey('ec', 'late');
    await expect.poll(async () => (await register(api, sign(late))).status, { timeout: 5000, interval: 100 }).toBe(201);
    expect(server.fetches()).toBeGreaterThanOrEqual(2);
  });

  it('a set past its max age is refreshed in the background: a key the provider withdrew stops verifying', async () => {
    const server = await idp();
    const key = server.addKey('rsa', 'k1');
    const { api } = await apiWith(server.url, { jwksRefetchIntervalMs: 0, jwksMaxAgeMs: 0 });
    expect((await register(api, sign(key))).status).toBe(201);
    server.setKeys([createJwksSigningKey('ec', 'k2').jwk]);
    // The request that notices the age is still answered from the set in hand; a later one is not.
    await expect.poll(async () => (await register(api, sign(key))).status, { timeout: 5000, interval: 100 }).toBe(401);
    expect(server.fetches()).toBeGreaterThanOrEqual(2);
  });

  it('a cached set keeps verifying its keys while the provider is down', async () => {
    const server = await idp();
    const key = server.addKey('rsa', 'k1');
    const { api } = await apiWith(server.url, { jwksRefetchIntervalMs: 0 });
    expect((await register(api, sign(key))).status).toBe(201);
    server.answer({ status: 500, body: 'oops' });
    expect((await register(api, sign(key))).status).toBe(201);
    // An unknown kid while the provider fails: we could not check it, so 503, not 401.
    await expectRefused(api, sign(createJwksSigningKey('rsa', 'other')), 503, 'jwks_unavailable');
  });
});

describe('JWT_JWKS_URL: a provider that fails', () => {
  it('a dead provider (connection refused) answers 503 jwks_unavailable at once and logs why', async () => {
    const url = `https://127.0.0.1:${await freePort()}/.well-known/jwks.json`;
    const { api, verifierLog } = await apiWith(url);
    const res = await expectRefused(api, sign(createJwksSigningKey('rsa', 'k1')), 503, 'jwks_unavailable');
    expect(res.ms).toBeLessThan(2000);
    expect(verifierLog()).toContain('JWKS fetch failed: ECONNREFUSED');
  });

  it('a provider that never answers gets 503 jwks_unavailable within 2 s, and the next request does not wait again', async () => {
    const server = await idp();
    server.answer({ hang: true });
    const { api, verifierLog } = await apiWith(server.url);
    const first = await expectRefused(api, sign(createJwksSigningKey('rsa', 'k1')), 503, 'jwks_unavailable');
    expect(first.ms).toBeLessThan(2000);
    expect(verifierLog()).toContain('JWKS fetch failed: timed out');
    // Inside the refetch interval nothing is fetched: no request waits on the dead provider again.
    const second = await expectRefused(api, sign(createJwksSigningKey('rsa', 'k1')), 503, 'jwks_unavailable');
    expect(second.ms).toBeLessThan(1000);
    expect(server.fetches()).toBe(1);
  });

  for (const [name, answer] of [
    ['an HTTP error', { status: 500, body: '{"keys":[]}' }],
    ['a body that is not JSON', { status: 200, body: '<html>login</html>' }],
    ['JSON that is not a key set', { status: 200, body: '{"keys":"none"}' }],
    ['a set whose members are not objects', { status: 200, body: '{"keys":[1,2]}' }],
  ] as const) {
    it(`a malformed answer (${name}) is 503 jwks_unavailable, nothing stored`, async () => {
      const server = await idp();
      server.answer(answer);
      const { api, verifierLog } = await apiWith(server.url);
      await expectRefused(api, sign(createJwksSigningKey('rsa', 'k1')), 503, 'jwks_unavailable');
      expect(verifierLog()).toContain('JWKS fetch failed');
    });
  }
});

describe('JWT_JWKS_URL: tokens that must not pass', () => {
  it('a kid whose key has the wrong type for the token alg is 401 (no alg confusion)', async () => {
    const server = await idp();
    const ec = server.addKey('ec', 'ec-1');
    const rsa = createJwksSigningKey('rsa', 'ec-1'); // the same kid, an RSA signature
    const { api } = await apiWith(server.url);
    await expectRefused(api, sign(rsa), 401, 'invalid_token');
    // ES256 header over an RSA-published kid, signed with the EC key: refused as well.
    const rsaPublished = server.addKey('rsa', 'rsa-1');
    const forged = jwt.sign({ jid: JID }, ec.privatePem, { algorithm: 'ES256', keyid: rsaPublished.kid, expiresIn: '5m', issuer: ISSUER, audience: AUDIENCE });
    await expectRefused(api, forged, 401, 'invalid_token');
  });

  it('a symmetric (oct) key in the set never verifies HS256, with or without JWT_SECRET', async () => {
    const server = await idp();
    const secret = 'a-shared-secret-from-the-key-set-0123456789';
    server.setKeys([{ kty: 'oct', kid: 'hs', k: Buffer.from(secret).toString('base64url') }]);
    const hs = jwt.sign({ jid: JID }, secret, { algorithm: 'HS256', keyid: 'hs', expiresIn: '5m', issuer: ISSUER, audience: AUDIENCE });
    for (const env of [{}, { JWT_SECRET: 'the-real-jwt-secret-0123456789abcdef' }] as Record<string, string>[]) {
      const { api } = await apiWith(server.url, {}, env);
      await expectRefused(api, hs, 401, 'invalid_token');
    }
  });

  it('RS256 public key used as an HS256 secret is 401', async () => {
    const server = await idp();
    const key = server.addKey('rsa', 'k1');
    const publicPem = (await import('node:crypto')).createPublicKey(key.privatePem).export({ type: 'spki', format: 'pem' }).toString();
    const { api } = await apiWith(server.url);
    await expectRefused(api, jwt.sign({ jid: JID }, publicPem, { algorithm: 'HS256', keyid: 'k1', expiresIn: '5m', issuer: ISSUER, audience: AUDIENCE }), 401, 'invalid_token');
  });

  for (const header of ['jku', 'x5u'] as const) {
    it(`a token with a ${header} header is 401 and the URL is never fetched`, async () => {
      const server = await idp();
      const key = server.addKey('rsa', 'k1');
      const { api } = await apiWith(server.url);
      const lure = server.url.replace('jwks.json', `attacker-${header}.json`);
      const token = jwt.sign({ jid: JID }, key.privatePem, { algorithm: 'RS256', keyid: 'k1', expiresIn: '5m', issuer: ISSUER, audience: AUDIENCE, header: { alg: 'RS256', [header]: lure } });
      await expectRefused(api, token, 401, 'invalid_token');
      expect(server.paths.some((p) => p.includes('attacker'))).toBe(false);
    });
  }

  for (const kid of [42, { id: 'k1' }, ['k1'], null]) {
    it(`a kid that is not a string (${JSON.stringify(kid)}) is 401`, async () => {
      const server = await idp();
      const key = server.addKey('rsa', 'k1');
      const { api } = await apiWith(server.url);
      const token = jwt.sign({ jid: JID }, key.privatePem, { algorithm: 'RS256', expiresIn: '5m', issuer: ISSUER, audience: AUDIENCE, header: { alg: 'RS256', kid } as never });
      await expectRefused(api, token, 401, 'invalid_token');
    });
  }

  it('an RS256 token without a kid is 401 when only the JWKS is configured', async () => {
    const server = await idp();
    const key = server.addKey('rsa', 'k1');
    const { api } = await apiWith(server.url);
    await expectRefused(api, sign({ privatePem: key.privatePem }), 401, 'invalid_token');
  });

  it('JWT_SECRET and JWT_PUBLIC_KEY_PATH keep working beside the JWKS', async () => {
    const server = await idp();
    const idpKey = server.addKey('rsa', 'k1');
    const pem = writeKeyPair('ec');
    const secret = 'the-real-jwt-secret-0123456789abcdef';
    const fullEnv = { JWT_SECRET: secret, JWT_PUBLIC_KEY_PATH: pem.publicPath, JWT_JWKS_URL: server.url };
    const config = loadConfig(fullEnv);
    const { loadJwtPublicKey } = await import('../src/http/auth.ts');
    const api = await startApi({ db, env: fullEnv, verifier: createJwtVerifier(config.jwt, loadJwtPublicKey(pem.publicPath)) });
    cleanup.push(() => api.close());
    expect((await register(api, jwt.sign({ jid: JID }, secret, { algorithm: 'HS256', expiresIn: '5m' }))).status).toBe(201);
    expect((await register(api, jwt.sign({ jid: JID }, pem.privatePem, { algorithm: 'ES256', expiresIn: '5m' }))).status).toBe(201);
    expect((await register(api, jwt.sign({ jid: JID }, idpKey.privatePem, { algorithm: 'RS256', keyid: 'k1', expiresIn: '5m' }))).status).toBe(201);
  });
});
