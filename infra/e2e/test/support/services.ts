// The real api and worker as child processes (tsx), each on a database and a Redis db index of
// the suite's own: the api migrates the default search_path and the queue names are fixed.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { fileURLToPath } from 'node:url';
// infra/ is not a workspace package: the workspace modules are imported by path.
import { createDb } from '../../../../packages/db/src/client.ts';
import { PUSH_QUEUE } from '../../../../packages/queue/src/contracts.ts';
import { createRedis } from '../../../../packages/queue/src/redis.ts';

const repo = fileURLToPath(new URL('../../../../', import.meta.url));
const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A database of the suite's own: `CREATE DATABASE veil_e2e_<random>`, dropped by `drop()`. */
export async function createE2eDatabase() {
  const name = `veil_e2e_${randomBytes(5).toString('hex')}`;
  const admin = createDb({ url: ADMIN_URL, max: 1, queryTimeoutMs: 30_000 });
  await admin.sql.unsafe(`CREATE DATABASE ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    async drop() {
      await admin.sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.close();
    },
  };
}

/** A Redis db index in 1..15 (db 0 holds the other suites' queues); cleans our queue keys only. */
export function pickRedisDb() {
  const index = randomInt(1, 16);
  const base = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const url = `${base.replace(/\/\d*$/, '')}/${index}`;
  return {
    index,
    url,
    async clean() {
      const redis = createRedis(url, 'worker');
      try {
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', `bull:${PUSH_QUEUE}*`, 'COUNT', 500);
          cursor = next;
          if (keys.length) await redis.del(...keys);
        } while (cursor !== '0');
      } finally {
        redis.disconnect();
      }
    },
  };
}

export interface ServiceProcess {
  name: string;
  log(): string;
  /** Parsed JSON log lines (pino) so far. */
  lines(): Record<string, unknown>[];
  stop(): Promise<void>;
}

/**
 * Starts `node --import tsx services/<name>/src/main.ts` (one process: the tsx CLI would add a
 * relay process that a SIGKILL orphans) and waits for its ready line.
 */
export async function startService(name: 'api' | 'worker', env: Record<string, string>, readyMsg: string): Promise<ServiceProcess> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', `services/${name}/src/main.ts`], {
    cwd: repo,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const lines = () =>
    output
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return {};
        }
      });
  const proc: ServiceProcess = {
    name,
    log: () => output,
    lines,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 8000);
      await exited;
      clearTimeout(t);
    },
  };
  const deadline = Date.now() + 45_000;
  while (!lines().some((l) => l.msg === readyMsg)) {
    if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}):\n${output}`);
    if (Date.now() > deadline) {
      await proc.stop();
      throw new Error(`${name} did not log "${readyMsg}":\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return proc;
}

/** Polls until `get` returns something truthy, or gives up with `what` in the error. */
export async function eventually<T>(what: string, get: () => T | undefined | null | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = get();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
