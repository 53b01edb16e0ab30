// Docker does not run on these machines, so this checks docker-compose.yml and the Dockerfiles
// statically: services, ports, mounts, health checks, and that every variable Compose hands the
// services is one packages/config accepts (and that .env.example's values pass it).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
// infra/ is not a workspace package, so the config module is imported by path.
import { loadConfig } from '../../../packages/config/src/config.ts';
import { freePort } from '../../../packages/testkit/src/ports.ts';
import { startRedisServer } from '../../../packages/testkit/src/redis-topology.ts';

const root = (p: string) => fileURLToPath(new URL(`../../../${p}`, import.meta.url));
const read = (p: string) => readFileSync(root(p), 'utf8');

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string; target?: string };
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  container_name?: string;
  profiles?: string[];
}

const composeText = read('docker-compose.yml');
const compose = parse(composeText) as { services: Record<string, Service>; volumes: Record<string, unknown> };
const services = compose.services;

/** KEY=value lines of .env.example, as `docker compose` reads .env. */
const envExample = Object.fromEntries(
  read('.env.example')
    .split('\n')
    .filter((l) => /^[A-Z_][A-Z0-9_]*=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
);

/** Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} and ${VAR:+replacement} with the given .env. */
function interpolate(value: string, env: Record<string, string>): string {
  return value.replace(/\$\{([A-Z_][A-Z0-9_]*)(?::([-?+])([^}]*))?\}/g, (_m, name: string, op?: string, arg?: string) => {
    const v = env[name];
    const set = v !== undefined && v !== '';
    if (op === '+') return set ? (arg ?? '') : '';
    if (set) return v;
    if (op === '?') throw new Error(`${name} is required: ${arg}`);
    return op === '-' ? (arg ?? '') : '';
  });
}

/** The variable names packages/config's schema reads (the only reader of process.env). */
const acceptedNames = new Set([...read('packages/config/src/config.ts').matchAll(/^ {2}([A-Z][A-Z0-9_]+): /gm)].map((m) => m[1]!));
// Read by node itself, not by packages/config (the operator guide's "Sizing: CPU and memory").
acceptedNames.add('NODE_OPTIONS');

describe('docker-compose.yml', () => {
  it('runs api, worker, postgres, redis and kamailio, each with a health check', () => {
    const always = Object.entries(services).filter(([, svc]) => !svc.profiles).map(([name]) => name);
    expect(always.sort()).toEqual(['api', 'kamailio', 'postgres', 'redis', 'worker']);
    for (const [name, svc] of Object.entries(services)) expect(svc.healthcheck?.test.length, name).toBeGreaterThan(0);
  });

  it('publishes the api on 8443 and SIP on 5060 over UDP and TCP, and nothing for the worker', () => {
    expect(services.api!.ports).toContain('8443:8443');
    expect(services.kamailio!.ports).toEqual(expect.arrayContaining(['5060:5060/udp', '5060:5060/tcp']));
    // A fixed name or host port would make `--scale worker=3` fail.
    expect(services.worker!.ports).toBeUndefined();
    expect(services.worker!.container_name).toBeUndefined();
    expect(services.postgres!.ports).toBeUndefined();
    expect(services.redis!.ports).toBeUndefined();
  });

  it('keeps Postgres and Redis data in named volumes, Redis with AOF and noeviction', () => {
    expect(services.postgres!.volumes).toContain('pgdata:/var/lib/postgresql/data');
    expect(services.redis!.volumes).toContain('redisdata:/data');
    expect(Object.keys(compose.volumes)).toEqual(expect.arrayContaining(['pgdata', 'redisdata']));
    const cmd = services.redis!.command!.join(' ');
    expect(cmd).toContain('--appendonly yes');
    expect(cmd).toContain('--maxmemory-policy noeviction');
  });

  it("mounts the APNs key and FCM service account read-only at the config's default paths", () => {
    const defaults = loadConfig({});
    const mounts = services.worker!.volumes!.map((v) => interpolate(v, envExample));
    expect(mounts).toContain(`./secrets/apns_key.p8:${defaults.apns.keyPath}:ro`);
    expect(mounts).toContain(`./secrets/fcm_service_account.json:${defaults.fcm.serviceAccountPath}:ro`);
  });

  it('starts the api after healthy Postgres and Redis, and the worker after a healthy (migrated) api', () => {
    expect(services.api!.depends_on).toMatchObject({ postgres: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } });
    expect(services.worker!.depends_on).toMatchObject({ api: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } });
  });

  it('sets only variables the config accepts, and .env.example values load cleanly', () => {
    for (const name of ['api', 'worker']) {
      const env = services[name]!.environment!;
      const unknown = Object.keys(env).filter((k) => !acceptedNames.has(k));
      expect(unknown, `${name} sets variables no config reads`).toEqual([]);
      const resolved = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, interpolate(String(v), envExample)]));
      const config = loadConfig(resolved);
      expect(config.port).toBe(8443);
      expect(config.callNotifySecret).toBe(envExample.CALL_NOTIFY_SECRET);
      expect(config.databaseUrl).toMatch(/^postgres:\/\/postgres:.+@postgres:5432\/veil$/);
      expect(config.redisUrl).toBe('redis://redis:6379');
    }
  });

  it('every ${VAR} it uses is in .env.example, and the required ones fail without .env', () => {
    const used = new Set([...composeText.matchAll(/\$\{([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1]!));
    expect([...used].filter((v) => !(v in envExample))).toEqual([]);
    expect(() => interpolate(services.api!.environment!.CALL_NOTIFY_SECRET!, {})).toThrow(/CALL_NOTIFY_SECRET is required/);
  });

  it("points Kamailio's webhook at the api's call-notify with the same secret", () => {
    const cmd = services.kamailio!.command!.map((a) => interpolate(a, envExample));
    expect(cmd.slice(0, 5)).toEqual(['kamailio', '-DD', '-E', '-f', '/etc/kamailio/kamailio.cfg']);
    expect(cmd).toContain('PUSH_URL="http://api:8443/api/v1/push/call-notify"');
    expect(cmd).toContain(`PUSH_SECRET="${envExample.CALL_NOTIFY_SECRET}"`);
  });

  // SIP_ADVERTISE is Kamailio's (a -A define), not a variable packages/config reads.
  const kamailioArgs = (env: Record<string, string>) => services.kamailio!.command!.map((a) => interpolate(a, env));
  const advertised = { ...envExample, SIP_ADVERTISE: '203.0.113.10' };

  it('passes SIP_ADVERTISE to Kamailio only when .env sets it, and never to the api or worker', () => {
    expect(envExample.SIP_ADVERTISE).toBe('');
    expect(kamailioArgs(envExample).filter((a) => a.includes('ADVERTISE'))).toEqual(['NO_SIP_ADVERTISE']);
    expect(kamailioArgs(advertised).filter((a) => a.includes('ADVERTISE'))).toEqual(['SIP_ADVERTISE=203.0.113.10']);
    expect(kamailioArgs({ ...envExample, SIP_ADVERTISE: 'sip.example.com:5080' })).toContain('SIP_ADVERTISE=sip.example.com:5080');
    for (const name of ['api', 'worker']) expect(Object.keys(services[name]!.environment!)).not.toContain('SIP_ADVERTISE');
  });

  it('runs Kamailio in hold mode by default (PUSH_HOLD=true) and hands it PUSH_TTL_SECONDS as PUSH_TTL_S', () => {
    expect(envExample.PUSH_HOLD).toBe('true');
    expect(kamailioArgs(envExample)).toContain('PUSH_HOLD_true');
    expect(kamailioArgs({ ...envExample, PUSH_HOLD: 'false' })).toContain('PUSH_HOLD_false');
    expect(kamailioArgs(envExample)).toContain(`PUSH_TTL_S=${envExample.PUSH_TTL_SECONDS}`);
    expect(kamailioArgs({ ...envExample, PUSH_TTL_SECONDS: '45' })).toContain('PUSH_TTL_S=45');
    // Every define follows its -A.
    const args = kamailioArgs(envExample);
    for (const define of ['PUSH_HOLD_true', `PUSH_TTL_S=${envExample.PUSH_TTL_SECONDS}`]) expect(args[args.indexOf(define) - 1]).toBe('-A');
  });

  // The Compose command, run against the repo's cfg with `kamailio -c` (parse, no sockets).
  const hasKamailio = spawnSync('sh', ['-c', 'command -v kamailio']).status === 0;
  const cfgArgs = (env: Record<string, string>) =>
    kamailioArgs(env)
      .slice(1)
      .map((a) => (a === '/etc/kamailio/kamailio.cfg' ? root('infra/kamailio/kamailio.cfg') : a));

  it.skipIf(!hasKamailio)('Kamailio accepts the Compose command with PUSH_HOLD true and false, holding only with true', () => {
    /** The cfg as Kamailio reads it after the -A defines (--cfg-print), or the parse errors. */
    const evaluated = (env: Record<string, string>) => {
      const check = spawnSync('kamailio', ['-c', ...cfgArgs(env)], { encoding: 'utf8' });
      expect(check.status, `${check.stdout}${check.stderr}`).toBe(0);
      const print = spawnSync('kamailio', ['--cfg-print', ...cfgArgs(env)], { encoding: 'utf8' });
      expect(print.status, print.stderr).toBe(0);
      return print.stdout;
    };
    const holding = evaluated(envExample);
    expect(holding).toContain('route[HOLD]');
    expect(holding).toContain('loadmodule "tsilo.so"');
    const plain = evaluated({ ...envExample, PUSH_HOLD: 'false' });
    expect(plain).not.toContain('route[HOLD]');
    expect(plain).not.toContain('tsilo');
    // Wake tracking runs in both modes.
    for (const cfg of [holding, plain]) expect(cfg).toContain('route[WAKE_REPORT]');
  });
  it.skipIf(!hasKamailio)('Kamailio accepts the Compose command and advertises SIP_ADVERTISE on UDP and TCP only when set', () => {
    const check = (env: Record<string, string>) => {
      const run = spawnSync('kamailio', ['-c', ...cfgArgs(env)], { encoding: 'utf8' });
      const out = `${run.stdout}${run.stderr}`;
      expect(run.status, out).toBe(0);
      return out.split('\n').filter((l) => /^\s+(udp|tcp): /.test(l) && l.includes('5060'));
    };
    const plain = check(envExample);
    expect(plain.filter((l) => l.includes('0.0.0.0'))).toHaveLength(2);
    expect(plain.join('\n')).not.toContain('advertise');
    const listens = check(advertised).filter((l) => l.includes('0.0.0.0'));
    expect(listens).toHaveLength(2);
    expect(listens.find((l) => /udp: /.test(l))).toContain('advertise 203.0.113.10');
    expect(listens.find((l) => /tcp: /.test(l))).toContain('advertise 203.0.113.10');
  });
});

describe('docker compose --profile observability', () => {
  const prometheus = services.prometheus!;
  const grafana = services.grafana!;
  /** host path -> container path of a service's bind mounts, checked to exist in the repo. */
  const binds = (svc: Service) =>
    Object.fromEntries(
      svc.volumes!.filter((v) => v.startsWith('./')).map((v) => {
        const [host, container] = v.split(':');
        expect(existsSync(root(host!)), host).toBe(true);
        return [container!, host!.slice(2)];
      }),
    );
  const veilEnv = services.api!.environment!;

  it('adds Prometheus and Grafana only under the profile, on loopback, with health checks', () => {
    expect(Object.entries(services).filter(([, s]) => s.profiles?.includes('observability')).map(([n, s]) => [n, s.profiles])).toEqual([
      ['prometheus', ['observability']],
      ['grafana', ['observability']],
    ]);
    expect(prometheus.ports).toEqual(['127.0.0.1:9090:9090']);
    expect(grafana.ports).toEqual(['127.0.0.1:3000:3000']);
    for (const svc of [prometheus, grafana]) expect(svc.healthcheck?.test.length).toBeGreaterThan(0);
    expect(Object.keys(compose.volumes)).toEqual(expect.arrayContaining(['promdata', 'grafanadata']));
  });

  it("scrapes the api's PORT and the worker's METRICS_PORT by service name, with the mounted rule file", () => {
    const mounts = binds(prometheus);
    const configPath = prometheus.command!.find((a) => a.startsWith('--config.file='))!.split('=')[1]!;
    const config = parse(read(mounts[configPath]!)) as {
      rule_files: string[];
      scrape_configs: { job_name: string; dns_sd_configs: { names: string[]; port: number }[] }[];
    };
    const jobs = Object.fromEntries(config.scrape_configs.map((j) => [j.job_name, j.dns_sd_configs[0]!]));
    expect(jobs['veil-api']).toMatchObject({ names: ['api'], port: Number(veilEnv.PORT) });
    expect(jobs['veil-worker']).toMatchObject({ names: ['worker'], port: Number(veilEnv.METRICS_PORT) });
    for (const rules of config.rule_files) {
      const inContainer = rules.startsWith('/') ? rules : `${dirname(configPath)}/${rules}`;
      expect(mounts[inContainer], inContainer).toBe('infra/observability/prometheus/alerts.yml');
    }
  });

  it('provisions Grafana with the Prometheus service as datasource and the mounted dashboards', () => {
    const mounts = binds(grafana);
    const provisioning = mounts['/etc/grafana/provisioning']!;
    const datasources = parse(read(`${provisioning}/datasources/prometheus.yml`)) as { datasources: { uid: string; url: string }[] };
    expect(datasources.datasources[0]!.url).toBe('http://prometheus:9090');
    const providers = parse(read(`${provisioning}/dashboards/veil-push.yml`)) as { providers: { options: { path: string } }[] };
    const dashboards = mounts[providers.providers[0]!.options.path]!;
    const dashboard = JSON.parse(read(`${dashboards}/veil-push.json`)) as { panels: { datasource?: { uid: string } }[] };
    const uids = new Set(dashboard.panels.filter((p) => p.datasource).map((p) => p.datasource!.uid));
    expect([...uids]).toEqual([datasources.datasources[0]!.uid]);
    expect(grafana.environment!.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH).toBe(`${providers.providers[0]!.options.path}/veil-push.json`);
    // Without .env the admin password is not required (plain `docker compose up` must not need it).
    expect(interpolate(grafana.environment!.GF_SECURITY_ADMIN_PASSWORD!, {})).toBe('admin');
  });
});

describe('docker-compose.yml, `ha` profile', () => {
  const ha = Object.keys(services).filter((name) => services[name]!.profiles?.includes('ha'));
  const sentinels = ha.filter((name) => name.startsWith('redis-sentinel-'));

  it('adds a replica of redis and three sentinels, only with the profile, each with a health check', () => {
    expect(ha.sort()).toEqual(['redis-replica', 'redis-sentinel-1', 'redis-sentinel-2', 'redis-sentinel-3']);
    expect(services['redis-replica']!.command!.join(' ')).toContain('--replicaof redis 6379');
    for (const name of ha) {
      expect(services[name]!.healthcheck?.test.length, name).toBeGreaterThan(0);
      expect(services[name]!.ports, name).toBeUndefined();
    }
  });

  it('points api and worker at the three sentinels when .env sets REDIS_SENTINELS', () => {
    const env = { ...envExample, COMPOSE_PROFILES: 'ha', REDIS_SENTINELS: sentinels.map((s) => `${s}:26379`).join(',') };
    for (const name of ['api', 'worker']) {
      const resolved = Object.fromEntries(Object.entries(services[name]!.environment!).map(([k, v]) => [k, interpolate(String(v), env)]));
      expect(loadConfig(resolved).redis).toMatchObject({
        mode: 'sentinel',
        name: 'mymaster',
        sentinels: sentinels.map((host) => ({ host, port: 26379 })),
      });
      // Without the profile's variables nothing changes: the one redis.
      const plain = Object.fromEntries(Object.entries(services[name]!.environment!).map(([k, v]) => [k, interpolate(String(v), envExample)]));
      expect(loadConfig(plain).redis).toEqual({ mode: 'single', url: 'redis://redis:6379' });
    }
  });

  // The sentinel's start script, run for real: the config it writes must be one redis-server accepts.
  const hasRedis = spawnSync('sh', ['-c', 'command -v redis-server']).status === 0;
  it.skipIf(!hasRedis)("writes a sentinel config that this machine's redis-server --sentinel accepts", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'veil-compose-sentinel-'));
    const master = await startRedisServer();
    let sentinel: ChildProcess | null = null;
    try {
      // Compose turns $$ into $; the script's own `exec redis-server` is replaced by reading the file.
      const script = services['redis-sentinel-1']!.command![2]!.replaceAll('$$', '$').replaceAll('/tmp/sentinel.conf', join(dir, 'sentinel.conf'));
      const written = spawnSync('sh', ['-c', script.replace(/exec redis-server .*/, 'true')], { encoding: 'utf8', env: { PATH: process.env.PATH } });
      expect(written.status, written.stderr).toBe(0);
      const conf = readFileSync(join(dir, 'sentinel.conf'), 'utf8');
      expect(conf).toContain('sentinel monitor mymaster redis 6379 2');
      // Here "redis" is this machine's private server, and the port a free one.
      const port = await freePort();
      writeFileSync(join(dir, 'local.conf'), conf.replace('port 26379', `port ${port}`).replace('redis 6379', `127.0.0.1 ${master.port}`));
      sentinel = spawn('redis-server', [join(dir, 'local.conf'), '--sentinel'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      sentinel.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      sentinel.stderr!.on('data', (c: Buffer) => (out += c.toString()));
      await expect.poll(() => out, { timeout: 10_000 }).toMatch(/\+monitor master mymaster/);
    } finally {
      sentinel?.kill('SIGKILL');
      await master.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Dockerfiles', () => {
  const node = read('infra/docker/Dockerfile');
  const kamailio = read('infra/kamailio/Dockerfile');

  it('builds api and worker in stages from a Node LTS image with production dependencies only, as non-root', () => {
    expect(node).toMatch(/^ARG NODE_IMAGE=node:(20|22)-/m);
    expect(node.match(/^FROM /gm)!.length).toBeGreaterThanOrEqual(3);
    expect(node).toMatch(/^FROM runtime-base AS api$/m);
    expect(node).toMatch(/^FROM runtime-base AS worker$/m);
    expect(node).toContain('pnpm --filter @veil/api deploy --prod');
    expect(node).toContain('pnpm --filter @veil/worker deploy --prod');
    expect(node).toMatch(/^USER node$/m);
    expect(node).toContain('--frozen-lockfile');
    expect(services.api!.build).toMatchObject({ dockerfile: 'infra/docker/Dockerfile', target: 'api' });
    expect(services.worker!.build).toMatchObject({ dockerfile: 'infra/docker/Dockerfile', target: 'worker' });
  });

  it('copies every workspace manifest the lockfile needs before pnpm install', () => {
    const workspaceManifests = ['packages/config', 'packages/db', 'packages/log', 'packages/queue', 'packages/testkit', 'services/api', 'services/worker', 'tools/cli', 'bench'];
    for (const dir of workspaceManifests) expect(node, dir).toContain(`COPY ${dir}/package.json ${dir}/`);
  });

  it('runs Kamailio from Debian bookworm with the packages CI installs, non-root, with the repo config', () => {
    expect(kamailio).toMatch(/^FROM debian:bookworm/m);
    for (const pkg of ['kamailio', 'kamailio-utils-modules', 'kamailio-extra-modules', 'kamailio-json-modules']) {
      expect(kamailio).toMatch(new RegExp(`\\s${pkg}(\\s|$)`));
    }
    expect(kamailio).toContain('COPY infra/kamailio/kamailio.cfg /etc/kamailio/kamailio.cfg');
    expect(kamailio).toMatch(/^USER kamailio$/m);
  });
});
