import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Db } from '@veil/db/client';
import { runMigrations } from '@veil/db/migrate';
import { upsertRegistration } from '@veil/db/registrations';
import { tokenHash } from '@veil/log/token-hash';
import { runCli } from './cli.ts';

const DEV_SECRET = 'dev-secret-0123456789abcdef-local';
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

function capture() {
  let out = '';
  let err = '';
  return {
    out: { write: (t: string) => (out += t) },
    err: { write: (t: string) => (err += t) },
    get stdout() {
      return out;
    },
    get stderr() {
      return err;
    },
  };
}

describe('veil token', () => {
  it('mints an HS256 JWT for the JID that verifies with JWT_SECRET and expires with --ttl', async () => {
    const io = capture();
    const code = await runCli(['token', 'alice@example.com', '--ttl', '15m'], { env: { JWT_SECRET: DEV_SECRET, JWT_ISSUER: 'veil' }, ...io });
    expect(code).toBe(0);
    const claims = jwt.verify(io.stdout.trim(), DEV_SECRET, { algorithms: ['HS256'], issuer: 'veil' }) as jwt.JwtPayload;
    expect(claims.jid).toBe('alice@example.com');
    expect(claims.sub).toBe('alice@example.com');
    expect(claims.exp! - claims.iat!).toBe(15 * 60);
  });

  it('refuses without JWT_SECRET', async () => {
    const io = capture();
    expect(await runCli(['token', 'alice@example.com'], { env: {}, ...io })).toBe(1);
    expect(io.stdout).toBe('');
    expect(io.stderr).toMatch(/JWT_SECRET is not set/);
  });

  it('rejects a malformed --ttl and a missing JID as usage errors', async () => {
    const io = capture();
    expect(await runCli(['token', 'alice@example.com', '--ttl', 'soon'], { env: { JWT_SECRET: DEV_SECRET }, ...io })).toBe(2);
    expect(await runCli(['token'], { env: { JWT_SECRET: DEV_SECRET }, ...io })).toBe(2);
    expect(io.stdout).toBe('');
  });

  it('refuses a JWT_SECRET shorter than 32 bytes as invalid configuration (exit 78)', async () => {
    const io = capture();
    expect(await runCli(['token', 'alice@example.com'], { env: { JWT_SECRET: 'dev-secret' }, ...io })).toBe(78);
    expect(io.stdout).toBe('');
    expect(io.stderr).toMatch(/JWT_SECRET must be at least 32 bytes/);
  });

  it('reports invalid configuration with exit code 78', async () => {
    const io = capture();
    expect(await runCli(['token', 'a@b'], { env: { JWT_SECRET: DEV_SECRET, PORT: 'eighty' }, ...io })).toBe(78);
    expect(io.stderr).toMatch(/PORT must be a whole number/);
  });
});

describe('veil registrations', () => {
  let db: Db;
  const schema = `cli_test_${randomBytes(5).toString('hex')}`;
  const token = 'ab'.repeat(32);

  beforeAll(async () => {
    db = createDb({ url: DATABASE_URL, schema, queryTimeoutMs: 10_000 });
    await runMigrations(db);
    await upsertRegistration(db, { jid: 'bob@example.com', device_id: '550e8400-e29b-41d4-a716-446655440000', platform: 'ios', push_token: token, app_id: 'com.example.veil' });
  });

  afterAll(async () => {
    await db.sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await db.close();
  });

  it('lists the devices with the token masked, never whole', async () => {
    const io = capture();
    expect(await runCli(['registrations', 'bob@example.com'], { env: {}, ...io, openDb: () => db })).toBe(0);
    expect(io.stdout).toContain('device 550e8400-e29b-41d4-a716-446655440000');
    expect(io.stdout).toContain('ios');
    expect(io.stdout).toContain(`hash ${tokenHash(token)}`);
    expect(io.stdout).not.toContain(token);
  });

  it('shows the wake fields: last push, last wake and how long it took, unanswered pushes', async () => {
    await db.sql`UPDATE push_registrations SET last_push_at = '2026-12-01T10:00:00Z', last_wake_at = '2026-12-01T10:00:02Z', last_wake_ms = 1800, unanswered_pushes = 3`;
    const io = capture();
    expect(await runCli(['registrations', 'bob@example.com'], { env: {}, ...io, openDb: () => db })).toBe(0);
    expect(io.stdout).toContain('last push 2026-12-01T10:00:00.000Z');
    expect(io.stdout).toContain('last wake 2026-12-01T10:00:02.000Z (1800 ms after the push)');
    expect(io.stdout).toContain('unanswered in a row 3');
  });

  it('says so when the JID has no registrations', async () => {
    const io = capture();
    expect(await runCli(['registrations', 'nobody@example.com'], { env: {}, ...io, openDb: () => db })).toBe(0);
    expect(io.stdout).toMatch(/no push registrations for nobody@example.com/);
  });
});

describe('veil call', () => {
  let server: http.Server;
  let port: number;
  const seen: { headers: http.IncomingHttpHeaders; body: Record<string, unknown> }[] = [];
  let status = 202;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let raw = '';
      req.on('data', (c: Buffer) => (raw += c));
      req.on('end', () => {
        seen.push({ headers: req.headers, body: JSON.parse(raw) as Record<string, unknown> });
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(status === 202 ? '{"status":"queued","devices":1}' : '{"error":{"code":"unauthorized","message":"no"}}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('posts the call-notify body to the api on PORT with the CALL_NOTIFY_SECRET', async () => {
    status = 202;
    const io = capture();
    const code = await runCli(['call', 'bob', '--from', 'alice', '--name', 'Alice', '--video', '--call-id', 'cli-1'], {
      env: { PORT: String(port), CALL_NOTIFY_SECRET: 'hook-secret' },
      ...io,
    });
    expect(code).toBe(0);
    const last = seen.at(-1)!;
    expect(last.headers.authorization).toBe('Bearer hook-secret');
    expect(last.body).toEqual({ callee_username: 'bob', caller_username: 'alice', caller_display_name: 'Alice', call_id: 'cli-1', call_type: 'video' });
    expect(io.stdout).toMatch(/202 \{"status":"queued","devices":1\}/);
  });

  it('sends no Authorization without a secret and fails on a non-2xx answer', async () => {
    status = 401;
    const io = capture();
    expect(await runCli(['call', 'bob'], { env: { PORT: String(port) }, ...io })).toBe(1);
    const last = seen.at(-1)!;
    expect(last.headers.authorization).toBeUndefined();
    expect(last.body.call_type).toBe('audio');
    expect(io.stdout).toMatch(/401/);
  });

  it('fails with a message when nothing listens on PORT', async () => {
    const io = capture();
    expect(await runCli(['call', 'bob'], { env: { PORT: '9' }, ...io })).toBe(1);
    expect(io.stderr).toMatch(/veil call:/);
  });
});
