/**
 * Private Redis topologies for fault tests, built from the machine's redis-server on free
 * loopback ports: a plain server, a Sentinel set (master, replica, three sentinels) and a
 * three-master Cluster. Nothing is persisted; stop() SIGKILLs every process it started (call it
 * from afterAll/afterEach so a failing test leaves nothing behind) and removes the work dir.
 * `redis-sentinel` is not always installed: a sentinel is `redis-server <conf> --sentinel`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './ports.ts';

export interface RedisProcess {
  port: number;
  url: string;
  /** SIGKILL, as a crash or an OOM kill would; resolves once the process is gone. */
  kill(): Promise<void>;
  running(): boolean;
}

/** Starts one redis-server (args appended) and resolves once it logged `readyText`. */
async function launch(args: string[], port: number, readyText: RegExp): Promise<RedisProcess> {
  const child: ChildProcess = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`redis-server on ${port} not ready in time:\n${out}`)), 15_000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      out = (out + chunk.toString()).slice(-20_000);
      if (readyText.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('error', fail);
    child.once('exit', (code) => fail(new Error(`redis-server on ${port} exited (${code}):\n${out}`)));
  });
  // Keep draining its output so a full pipe never blocks it.
  child.stdout!.resume();
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    running,
    async kill() {
      if (running()) child.kill('SIGKILL');
      await exited;
    },
  };
}

const noPersistence = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'];

/** A plain redis-server of the test's own. Its work dir is private: a replica writes the RDB it receives there. */
export async function startRedisServer(extra: string[] = []): Promise<RedisProcess> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'veil-redis-'));
  try {
    const proc = await launch(['--port', String(port), ...noPersistence, '--dir', dir, ...extra], port, /Ready to accept connections/);
    return {
      ...proc,
      async kill() {
        await proc.kill();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Polls `check` until it returns true; Redis state changes (replication, gossip) are asynchronous. */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > end) throw new Error(`${what}: not reached in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One command on a short-lived connection (no retries: a dead node answers with an error). */
export async function redisCommand(port: number, ...args: (string | number)[]): Promise<unknown> {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
  r.on('error', () => {});
  try {
    await r.connect();
    return await r.call(String(args[0]), ...args.slice(1).map(String));
  } finally {
    r.disconnect();
  }
}

/** Stops everything in `procs` (also the ones started before a failure) and removes `dir`. */
async function stopAll(procs: { kill(): Promise<void> }[], dir: string, extra?: () => void): Promise<void> {
  extra?.();
  await Promise.all(procs.map((p) => p.kill()));
  rmSync(dir, { recursive: true, force: true });
}

export interface SentinelSet {
  name: string;
  master: RedisProcess;
  replica: RedisProcess;
  sentinels: RedisProcess[];
  /** REDIS_SENTINELS and REDIS_SENTINEL_NAME for the services. */
  env: Record<string, string>;
  /** The port the sentinels currently name as master. */
  masterPort(): Promise<number>;
  /** Epoch ms of each +switch-master the sentinels announced (the promotion of a new master). */
  switches: number[];
  stop(): Promise<void>;
}

/**
 * Master, one replica and three sentinels (quorum 2). down-after 1 s and a short failover
 * timeout, so a killed master is replaced within a few seconds, as a production set-up tuned
 * for calls would be (see the operator guide).
 */
export async function startSentinelSet(opts: { name?: string; downAfterMs?: number } = {}): Promise<SentinelSet> {
  const name = opts.name ?? 'mymaster';
  const dir = mkdtempSync(join(tmpdir(), 'veil-sentinel-'));
  const procs: RedisProcess[] = [];
  let watcher: Redis | null = null;
  try {
    const master = await startRedisServer();
    procs.push(master);
    const replica = await startRedisServer(['--replicaof', '127.0.0.1', String(master.port), '--repl-diskless-sync-delay', '0']);
    procs.push(replica);
    await until('replica in sync', async () => String(await redisCommand(replica.port, 'INFO', 'replication')).includes('master_link_status:up'));
    const sentinels: RedisProcess[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const conf = join(dir, `sentinel-${port}.conf`);
      // Sentinel rewrites its config file as it learns the topology: it must be writable.
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${name} 127.0.0.1 ${master.port} 2`,
          `sentinel down-after-milliseconds ${name} ${opts.downAfterMs ?? 1000}`,
          `sentinel failover-timeout ${name} 5000`,
          `sentinel parallel-syncs ${name} 1`,
          '',
        ].join('\n'),
      );
      const s = await launch([conf, '--sentinel'], port, /\+monitor master/);
      sentinels.push(s);
      procs.push(s);
    }
    // A failover needs every sentinel to know the replica and the quorum of the others.
    for (const s of sentinels) {
      await until(`sentinel ${s.port} sees the set`, async () => {
        const info = (await redisCommand(s.port, 'SENTINEL', 'MASTER', name)) as string[];
        const field = (k: string) => Number(info[info.indexOf(k) + 1]);
        return field('num-slaves') >= 1 && field('num-other-sentinels') >= 2;
      });
    }
    const switches: number[] = [];
    watcher = new Redis({ port: sentinels[0]!.port, host: '127.0.0.1', retryStrategy: () => 200 });
    watcher.on('error', () => {});
    watcher.on('message', (channel: string) => {
      if (channel === '+switch-master') switches.push(Date.now());
    });
    await watcher.subscribe('+switch-master');
    const w = watcher;
    return {
      name,
      master,
      replica,
      sentinels,
      switches,
      env: { REDIS_SENTINELS: sentinels.map((s) => `127.0.0.1:${s.port}`).join(','), REDIS_SENTINEL_NAME: name },
      async masterPort() {
        for (const s of sentinels) {
          const addr = (await redisCommand(s.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name).catch(() => null)) as string[] | null;
          if (addr) return Number(addr[1]);
        }
        throw new Error('no sentinel answered');
      },
      stop: () => stopAll(procs, dir, () => w.disconnect()),
    };
  } catch (err) {
    await stopAll(procs, dir, () => watcher?.disconnect());
    throw err;
  }
}

export interface RedisClusterSet {
  /** Every node started, masters and replicas (which is which: masterOf). */
  nodes: RedisProcess[];
  /** REDIS_CLUSTER_NODES for the services. */
  env: Record<string, string>;
  /** The port of the master that serves `key`'s slot. */
  masterOf(key: string): Promise<number>;
  /**
   * Hands the (still empty) slot of `key` to the master on `port`, as an operator's reshard
   * would: BullMQ's queues can then be placed on chosen masters.
   */
  moveSlotOf(key: string, port: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * `masters` cluster-enabled servers joined by `redis-cli --cluster create`, with `replicas`
 * replicas per master (then `masters * (1 + replicas)` nodes; which node became what is asked
 * from the cluster, see masterOf).
 */
export async function startCluster(masters = 3, replicas = 0): Promise<RedisClusterSet> {
  const dir = mkdtempSync(join(tmpdir(), 'veil-cluster-'));
  const procs: RedisProcess[] = [];
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) {
      const port = await freePort();
      // The bus port defaults to port + 10000, which may be taken or beyond 65535: pick one.
      const busPort = await freePort();
      procs.push(
        await launch(
          ['--port', String(port), ...noPersistence, '--cluster-enabled', 'yes', '--cluster-port', String(busPort),
            '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', '2000', '--dir', dir,
            '--repl-diskless-sync-delay', '0'],
          port,
          /Ready to accept connections/,
        ),
      );
    }
    const create = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...procs.map((p) => `127.0.0.1:${p.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'],
      { encoding: 'utf8', timeout: 30_000 },
    );
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed:\n${create.stdout}\n${create.stderr}`);
    for (const p of procs) {
      await until(`cluster node ${p.port} ok`, async () => String(await redisCommand(p.port, 'CLUSTER', 'INFO')).includes('cluster_state:ok'));
      // A replica that never finished its first sync is not allowed to take over (its data is
      // "too old"): a failover test must not kill a master before that.
      await until(`cluster node ${p.port} in sync`, async () => {
        const info = String(await redisCommand(p.port, 'INFO', 'replication'));
        return info.includes('role:master') || info.includes('master_link_status:up');
      });
    }
    return {
      nodes: procs,
      env: { REDIS_CLUSTER_NODES: procs.map((p) => `127.0.0.1:${p.port}`).join(',') },
      async masterOf(key) {
        // Asked from any node still running: a test may have killed the first one.
        const node = procs.find((p) => p.running())!.port;
        const slot = Number(await redisCommand(node, 'CLUSTER', 'KEYSLOT', key));
        const ranges = (await redisCommand(node, 'CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
        const owner = ranges.find(([from, to]) => slot >= from && slot <= to);
        if (!owner) throw new Error(`slot ${slot} has no owner`);
        return Number(owner[2][1]);
      },
      async moveSlotOf(key, port) {
        const slot = Number(await redisCommand(procs[0]!.port, 'CLUSTER', 'KEYSLOT', key));
        const target = String(await redisCommand(port, 'CLUSTER', 'MYID'));
        // An empty slot may be reassigned with SETSLOT NODE; the new owner first, then the others.
        for (const p of [port, ...procs.map((q) => q.port).filter((q) => q !== port)]) {
          await redisCommand(p, 'CLUSTER', 'SETSLOT', slot, 'NODE', target);
        }
        await until(`slot ${slot} on ${port} everywhere`, async () => {
          for (const p of procs) {
            const ranges = (await redisCommand(p.port, 'CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
            if (Number(ranges.find(([from, to]) => slot >= from && slot <= to)?.[2][1]) !== port) return false;
          }
          return true;
        });
      },
      stop: () => stopAll(procs, dir),
    };
  } catch (err) {
    await stopAll(procs, dir);
    throw err;
  }
}
