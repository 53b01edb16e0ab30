import { randomUUID } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import jwt from 'jsonwebtoken';
import { loadConfig } from '@veil/config/config';
import { createJwtVerifier, JwtKeyError, loadJwtPublicKey } from '../src/http/auth.ts';
import { call, JWT_SECRET, startApi, type RunningApi } from './support/api.ts';
import { createTestDb, type TestDb } from '@veil/testkit/db';
import { hsToken, noneToken, writeKeyPair } from './support/tokens.ts';

const body = () => ({ jid: 'alice@example.com', device_id: randomUUID(), platform: 'android', push_token: 'tok-1' });
const rsa = writeKeyPair('rsa');
const ec = writeKeyPair('ec');

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb('api_auth');
});
afterAll(async () => {
  await db?.drop();
});

/** An app whose verifier is built exactly as main builds it from the env. */
async function appWith(env: Record<string, string>): Promise<RunningApi> {
  const config = loadConfig({ JWT_SECRET: '', ...env });
  const key = config.jwt.publicKeyPath ? loadJwtPublicKey(config.jwt.publicKeyPath) : null;
  return startApi({ db, env: { JWT_SECRET: '', ...env }, verifier: createJwtVerifier(config.jwt, key) });
}

const register = (api: RunningApi, init: { token?: string; headers?: Record<string, string> }) =>
  call(`${api.url}/api/v1/push/register`, { body: body(), ...init });
const count = async () => Number((await db.sql`SELECT count(*)::int AS n FROM push_registrations`)[0]!.n);

describe('HS256 (JWT_SECRET)', () => {
  let api: RunningApi;
  beforeAll(async () => {
    api = await appWith({ JWT_SECRET, JWT_ISSUER: 'https://id.example.com', JWT_AUDIENCE: 'veil-push' });
  });
  afterAll(async () => api?.close());
  const good = (claims: Record<string, unknown> = { jid: 'alice@example.com' }, opts: jwt.SignOptions = {}) =>
    hsToken(claims, { issuer: 'https://id.example.com', audience: 'veil-push', ...opts });

  it('a valid token registers', async () => {
    expect((await register(api, { token: good() })).status).toBe(201);
  });

  it('sub is used when there is no jid claim', async () => {
    expect((await register(api, { token: good({ sub: 'alice@example.com' }) })).status).toBe(201);
  });

  it('jid wins over sub', async () => {
    expect((await register(api, { token: good({ jid: 'bob@example.com', sub: 'alice@example.com' }) })).status).toBe(403);
  });

  const failures: [string, () => { token?: string; headers?: Record<string, string> }, string][] = [
    ['missing Authorization', () => ({}), 'missing_token'],
    ['not a Bearer scheme', () => ({ headers: { authorization: `Basic ${good()}` } }), 'missing_token'],
    ['malformed token', () => ({ token: 'not.a.jwt' }), 'invalid_token'],
    ['garbage token', () => ({ token: 'abc' }), 'invalid_token'],
    ['expired', () => ({ token: jwt.sign({ jid: 'alice@example.com', exp: Math.floor(Date.now() / 1000) - 60 }, JWT_SECRET, { algorithm: 'HS256', issuer: 'https://id.example.com', audience: 'veil-push' }) }), 'token_expired'],
    ['not yet valid', () => ({ token: good({ jid: 'alice@example.com' }, { notBefore: 3600 }) }), 'invalid_token'],
    ['wrong secret', () => ({ token: hsToken({ jid: 'alice@example.com' }, { issuer: 'https://id.example.com', audience: 'veil-push' }, 'other-secret') }), 'invalid_token'],
    ['alg none', () => ({ token: noneToken({ jid: 'alice@example.com', iss: 'https://id.example.com', aud: 'veil-push' }) }), 'invalid_token'],
    ['wrong issuer', () => ({ token: good({ jid: 'alice@example.com' }, { issuer: 'https://evil.example.com' }) }), 'invalid_token'],
    ['wrong audience', () => ({ token: good({ jid: 'alice@example.com' }, { audience: 'someone-else' }) }), 'invalid_token'],
    ['no issuer at all', () => ({ token: hsToken({ jid: 'alice@example.com' }, { audience: 'veil-push' }) }), 'invalid_token'],
    ['no jid or sub claim', () => ({ token: good({ name: 'alice' }) }), 'invalid_token'],
    ['RS256 token while only HS256 is configured', () => ({ token: jwt.sign({ jid: 'alice@example.com' }, rsa.privatePem, { algorithm: 'RS256', expiresIn: '5m', issuer: 'https://id.example.com', audience: 'veil-push' }) }), 'invalid_token'],
    ['no exp claim', () => ({ token: jwt.sign({ jid: 'alice@example.com' }, JWT_SECRET, { algorithm: 'HS256', issuer: 'https://id.example.com', audience: 'veil-push' }) }), 'invalid_token'],
  ];
  it.each(failures)('%s -> 401, nothing written', async (_name, init, code) => {
    const before = await count();
    const res = await register(api, init());
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe(code);
    expect(await count()).toBe(before);
  });

  it('jid mismatch -> 403', async () => {
    const res = await register(api, { token: good({ jid: 'mallory@example.com' }) });
    expect(res).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } } });
  });
});

describe('RS256 / ES256 (JWT_PUBLIC_KEY_PATH)', () => {
  it('an RS256 token signed by the key registers', async () => {
    const api = await appWith({ JWT_PUBLIC_KEY_PATH: rsa.publicPath });
    try {
      const token = jwt.sign({ jid: 'alice@example.com' }, rsa.privatePem, { algorithm: 'RS256', expiresIn: '5m' });
      expect((await register(api, { token })).status).toBe(201);
    } finally {
      await api.close();
    }
  });

  it('an ES256 token signed by the key registers', async () => {
    const api = await appWith({ JWT_PUBLIC_KEY_PATH: ec.publicPath });
    try {
      const token = jwt.sign({ sub: 'alice@example.com' }, ec.privatePem, { algorithm: 'ES256', expiresIn: '5m' });
      expect((await register(api, { token })).status).toBe(201);
    } finally {
      await api.close();
    }
  });

  it('HS256 signed with the public key (algorithm confusion) -> 401, with and without JWT_SECRET set', async () => {
    const forged = hsToken({ jid: 'alice@example.com' }, {}, rsa.publicPem);
    const envs: Record<string, string>[] = [{ JWT_PUBLIC_KEY_PATH: rsa.publicPath }, { JWT_PUBLIC_KEY_PATH: rsa.publicPath, JWT_SECRET }];
    for (const env of envs) {
      const api = await appWith(env);
      try {
        const res = await register(api, { token: forged });
        expect(res).toMatchObject({ status: 401, body: { error: { code: 'invalid_token' } } });
      } finally {
        await api.close();
      }
    }
  });

  it('RS256 and ES256 tokens without exp -> 401, nothing written', async () => {
    for (const [pair, algorithm] of [[rsa, 'RS256'], [ec, 'ES256']] as const) {
      const api = await appWith({ JWT_PUBLIC_KEY_PATH: pair.publicPath });
      try {
        const before = await count();
        const res = await register(api, { token: jwt.sign({ jid: 'alice@example.com' }, pair.privatePem, { algorithm }) });
        expect(res).toMatchObject({ status: 401, body: { error: { code: 'invalid_token', message: 'token has no exp claim' } } });
        expect(await count()).toBe(before);
      } finally {
        await api.close();
      }
    }
  });

  it('a token from another RSA key -> 401; alg none -> 401', async () => {
    const api = await appWith({ JWT_PUBLIC_KEY_PATH: rsa.publicPath });
    try {
      const other = writeKeyPair('rsa');
      const token = jwt.sign({ jid: 'alice@example.com' }, other.privatePem, { algorithm: 'RS256', expiresIn: '5m' });
      expect((await register(api, { token })).status).toBe(401);
      expect((await register(api, { token: noneToken({ jid: 'alice@example.com' }) })).status).toBe(401);
    } finally {
      await api.close();
    }
  });

  it('both configured: HS256 and RS256 tokens are each verified with their own key', async () => {
    const api = await appWith({ JWT_PUBLIC_KEY_PATH: rsa.publicPath, JWT_SECRET });
    try {
      expect((await register(api, { token: hsToken({ jid: 'alice@example.com' }) })).status).toBe(201);
      const rs = jwt.sign({ jid: 'alice@example.com' }, rsa.privatePem, { algorithm: 'RS256', expiresIn: '5m' });
      expect((await register(api, { token: rs })).status).toBe(201);
      // An ES256 header is not among the pinned algorithms of an RSA key.
      const es = jwt.sign({ jid: 'alice@example.com' }, ec.privatePem, { algorithm: 'ES256', expiresIn: '5m' });
      expect((await register(api, { token: es })).status).toBe(401);
    } finally {
      await api.close();
    }
  });
});

describe('loadJwtPublicKey refuses a bad key file (main exits 78 on it: startup.test.ts)', () => {
  it('an unreadable path', () => {
    expect(() => loadJwtPublicKey('/nonexistent/key.pem')).toThrow(JwtKeyError);
  });
  it('a file that is not PEM', () => {
    const path = `${rsa.publicPath}.txt`;
    writeFileSync(path, 'hello');
    expect(() => loadJwtPublicKey(path)).toThrow(/not a PEM public key/);
  });
  it('a private key where the public key belongs', () => {
    const path = `${rsa.publicPath}.private`;
    writeFileSync(path, rsa.privatePem);
    expect(() => loadJwtPublicKey(path)).toThrow(/not a PEM public key/);
  });
  it('a PEM header around garbage', () => {
    const path = `${rsa.publicPath}.broken`;
    writeFileSync(path, '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n');
    expect(() => loadJwtPublicKey(path)).toThrow(/not a PEM public key/);
  });
});

describe('JWT configuration problems stop the api at start (exit 78, one line)', () => {
  const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
  const start = (env: Record<string, string>) =>
    spawnSync(process.execPath, ['--import', 'tsx', main], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8', timeout: 20_000 });

  it('a JWT_SECRET shorter than 32 bytes', () => {
    const run = start({ JWT_SECRET: 'dev-secret' });
    expect(run.status).toBe(78);
    expect(run.stderr.trim().split('\n')).toEqual(['api: invalid configuration: JWT_SECRET must be at least 32 bytes (e.g. openssl rand -base64 32)']);
  });

  it('a JWT_JWKS_URL that is not https', () => {
    const run = start({ JWT_JWKS_URL: 'http://id.example.com/jwks.json' });
    expect(run.status).toBe(78);
    expect(run.stderr.trim().split('\n')).toEqual(['api: invalid configuration: JWT_JWKS_URL must be an https URL']);
  });
});

describe('no JWT configured', () => {
  it('register and deregister answer 401 jwt_not_configured, with or without a token', async () => {
    const api = await appWith({});
    try {
      for (const init of [{}, { token: hsToken({ jid: 'alice@example.com' }) }]) {
        const res = await register(api, init);
        expect(res).toMatchObject({ status: 401, body: { error: { code: 'jwt_not_configured' } } });
      }
      const del = await call(`${api.url}/api/v1/push/register`, { method: 'DELETE', body: { jid: 'alice@example.com', device_id: randomUUID() } });
      expect(del).toMatchObject({ status: 401, body: { error: { code: 'jwt_not_configured' } } });
    } finally {
      await api.close();
    }
  });
});
