/**
 * `pnpm bench`: the real api and worker (and the naive baseline) against the same local
 * Postgres, Redis and APNs/FCM stand-ins the tests use, all on loopback. Prints one table and
 * writes bench/RESULTS.md. Figures, not assertions: a slow machine never fails anything.
 */
import { execSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { benchBullmqFloor } from './phases/bullmq-floor.ts';
import { benchDrain } from './phases/drain.ts';
import { benchEndToEnd, type EndToEndFigures } from './phases/end-to-end.ts';
import { benchCallNotify, benchRegister, type IngestFigures } from './phases/ingest.ts';
import { benchCallEnded, benchRegistered } from './phases/lifecycle.ts';
import { startNaiveWorker } from './phases/naive.ts';
import { scalePhase } from './phases/scale.ts';
import { REPO_ROOT, findPids, readCpuSeconds, type ServiceProcess } from './lib/proc.ts';
import { seedCallees, type Callee } from './lib/seed.ts';
import { BENCH_APPS, createStack, type Stack } from './lib/stack.ts';
import { fmt } from './lib/stats.ts';
import { PIN, pinShared } from './lib/pin.ts';

const say = (line: string) => process.stdout.write(`${line}\n`);

/** BENCH_PHASES=ingest,idle,e2e,floor,lifecycle,drain,naive,scale runs a subset (for profiling one path); default: all. */
const phases = new Set((process.env.BENCH_PHASES ?? 'ingest,idle,e2e,floor,lifecycle,drain,naive,scale').split(','));

async function waitForQuiet(stack: Stack): Promise<void> {
  // The backlog of one phase must not leak into the next one's figures.
  let last = -1;
  while (stack.arrivals.length !== last) {
    last = stack.arrivals.length;
    await new Promise((r) => setTimeout(r, 1500));
  }
}

type Row = string[];

async function ingestPhase(stack: Stack, callees: Callee[], rows: Row[]): Promise<void> {
  say('1. ingest (autocannon, 10 s each) ...');
  const ingest: IngestFigures[] = [...(await benchCallNotify(stack.apiUrl, callees)), await benchRegister(stack.apiUrl, stack.env.JWT_SECRET!)];
  for (const f of ingest) {
    rows.push([`ingest: ${f.label}`, `${fmt(f.rps, 0)} req/s`, `p50 ${fmt(f.p50)} ms, p99 ${fmt(f.p99)} ms`, `errors ${f.errors}, non-2xx ${f.non2xx}`]);
  }
  await waitForQuiet(stack);
}

/** Who used the two cores during a phase: the services, Redis, Postgres, and this process (load + stand-ins). */
function cpuMeter(services: ServiceProcess[]) {
  // Per pid, so a Postgres backend forked during the phase counts from zero rather than not at all.
  const shared = (needle: string) => new Map(findPids(needle).map((p) => [p, readCpuSeconds(p)]));
  const sample = () => ({
    services: services.map((s) => s.cpuSeconds()),
    redis: shared('redis-server'),
    postgres: shared('postgres'),
    bench: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
    at: performance.now(),
  });
  const used = (a: Map<number, number>, b: Map<number, number>) => {
    let total = 0;
    for (const [pid, end] of b) if (Number.isFinite(end)) total += end - (a.get(pid) ?? 0);
    return total;
  };
  const start = sample();
  return () => {
    const end = sample();
    const wall = (end.at - start.at) / 1000;
    const seconds = {
      services: services.map((s, i) => end.services[i]! - start.services[i]!),
      redis: used(start.redis, end.redis),
      postgres: used(start.postgres, end.postgres),
      bench: end.bench - start.bench,
    };
    const share = (s: number) => `${fmt((100 * s) / wall, 0)}%`;
    const parts = services.map((s, i) => `${s.name} ${share(seconds.services[i]!)}`);
    parts.push(`redis ${share(seconds.redis)}`, `postgres ${share(seconds.postgres)}`, `bench ${share(seconds.bench)}`);
    // What the deployment pays: everything but the load generator and stand-ins.
    const serviceSeconds = seconds.services.reduce((a, b) => a + b, 0) + seconds.redis + seconds.postgres;
    // Per call (ms) for each part, since the shared Redis and Postgres also serve other users of the machine.
    const perCall = (calls: number) => {
      const ms = (x: number) => fmt((1000 * x) / calls, 2);
      return [...services.map((s, i) => `${s.name} ${ms(seconds.services[i]!)}`), `redis ${ms(seconds.redis)}`, `postgres ${ms(seconds.postgres)}`].join(', ');
    };
    return { text: `CPU (100% = one core): ${parts.join(', ')}`, serviceSeconds, perCall };
  };
}

/** What the deployment burns with no calls at all: timers, pollers, blocking reads. */
async function idlePhase(rows: Row[], services: ServiceProcess[]): Promise<void> {
  say('1b. idle for 10 s ...');
  const cpu = cpuMeter(services);
  await new Promise((r) => setTimeout(r, 10_000));
  rows.push(['idle, 10 s without calls', '', '', cpu().text]);
}

/** BENCH_RATES=100,500 limits the end-to-end rates (for profiling one rate). */
const rates = (process.env.BENCH_RATES ?? '100,500,1000').split(',').map(Number);

async function endToEndPhase(stack: Stack, callees: Callee[], rows: Row[], services: ServiceProcess[]): Promise<void> {
  say('2. end to end (open loop, 10 s per rate) ...');
  for (const rate of rates) {
    const cpu = cpuMeter(services);
    const f: EndToEndFigures = await benchEndToEnd(stack.apiUrl, callees, stack.arrivals, rate);
    const usage = cpu();
    rows.push([`end to end @ ${rate} calls/s`, `${f.sent} calls, ${f.count} pushes`, `p50 ${fmt(f.p50)} / p95 ${fmt(f.p95)} / p99 ${fmt(f.p99)} / max ${fmt(f.max)} ms`, `missing ${f.missing}, http errors ${f.httpErrors}; ${usage.text}`]);
    // api + worker + Redis + Postgres CPU over the phase (its 10 s of load and the last pushes landing) per call.
    rows.push([`CPU per call @ ${rate} calls/s`, `${fmt((1000 * usage.serviceSeconds) / f.sent, 2)} ms`, 'api + worker + Redis + Postgres CPU ÷ calls', `ms per call: ${usage.perCall(f.sent)}`]);
    await waitForQuiet(stack);
  }
}

/** BullMQ alone at the same rates: the part of CPU per call no code of ours can remove (bench/phases/bullmq-floor.ts). */
async function floorPhase(stack: Stack, rows: Row[]): Promise<void> {
  say('2c. BullMQ floor: a call\'s jobs per platform queue, in one queue, as one job; a processor that does nothing ...');
  const layouts = [
    ['per-platform', '', '2 jobs, one per platform queue'],
    ['one-queue', ', one queue', '2 jobs in one queue'],
    ['one-job', ', one job per call', '1 job'],
  ] as const;
  for (const [layout, label, shape] of layouts) {
    for (const rate of rates) {
      const f = await benchBullmqFloor(stack.redisUrl, rate, layout);
      rows.push([
        `BullMQ floor${label} @ ${rate} calls/s`,
        `${fmt(f.producer + f.consumer + f.redis, 2)} ms`,
        `CPU per call of BullMQ alone (${shape}, no-op processor)`,
        `ms per call: producer ${fmt(f.producer, 2)}, consumer ${fmt(f.consumer, 2)}, redis ${fmt(f.redis, 2)}; Redis commands per call: ${fmt(f.sent, 1)} sent, ${fmt(f.run, 0)} run`,
      ]);
    }
  }
}

async function lifecyclePhase(stack: Stack, callees: Callee[], rows: Row[]): Promise<void> {
  say('2b. call lifecycle: call-ended at 100 calls/s, registered flat out ...');
  const ended = await benchCallEnded(stack.apiUrl, callees, 100);
  rows.push([
    'call-ended @ 100 calls/s (request -> withdrawals recorded, messages queued)',
    `p50 ${fmt(ended.p50)} / p99 ${fmt(ended.p99)} ms`,
    `${ended.calls} calls: ${ended.withdrawn} pushes withdrawn, ${ended.notified} "call ended" messages`,
    `http errors ${ended.httpErrors}`,
  ]);
  await waitForQuiet(stack);
  const reg = await benchRegistered(stack.apiUrl, callees);
  rows.push(['registered, max (50 conns), users pushed moments before', `${fmt(reg.rps, 0)} req/s`, `p50 ${fmt(reg.p50)} ms, p99 ${fmt(reg.p99)} ms`, `non-2xx ${reg.non2xx}`]);
  await waitForQuiet(stack);
}

/** Drains with the running worker, then with a second one; returns the one-process rate. */
async function drainPhase(stack: Stack, rows: Row[], extraWorkers: ServiceProcess[]): Promise<number> {
  say('3. drain 20,000 pushes ...');
  const cpu = cpuMeter([...extraWorkers]);
  const one = await benchDrain(stack.redisUrl, stack.queueBase, stack.arrivals, async () => {});
  rows.push(['drain: 1 worker process', `${fmt(one.pushesPerSecond, 0)} pushes/s`, `${fmt(one.seconds, 2)} s`, `missing ${one.missing}; ${cpu().text} (includes queueing the jobs)`]);
  // The same backlog spread over three apps (own keys, provider tokens, OAuth tokens, connections).
  const apps = await benchDrain(stack.redisUrl, stack.queueBase, stack.arrivals, async () => {}, BENCH_APPS);
  rows.push(['drain: 1 worker, pushes over 3 apps', `${fmt(apps.pushesPerSecond, 0)} pushes/s`, `${fmt(apps.seconds, 2)} s`, `missing ${apps.missing}; ${fmt((100 * apps.pushesPerSecond) / one.pushesPerSecond, 0)}% of one app`]);
  extraWorkers.push(await stack.startWorker('worker-2'));
  const two = await benchDrain(stack.redisUrl, stack.queueBase, stack.arrivals, async () => {});
  rows.push(['drain: 2 worker processes', `${fmt(two.pushesPerSecond, 0)} pushes/s`, `${fmt(two.seconds, 2)} s`, `missing ${two.missing}`]);
  return one.pushesPerSecond;
}

async function naivePhase(stack: Stack, rows: Row[], realRate: number): Promise<void> {
  say('5. naive baseline drain ...');
  let close = async () => {};
  const naive = await benchDrain(stack.redisUrl, stack.queueBase, stack.arrivals, async () => {
    close = (await startNaiveWorker(stack)).close;
  });
  await close();
  const ratio = Number.isNaN(realRate) ? '' : `; real worker ${fmt(realRate / naive.pushesPerSecond, 1)}x`;
  rows.push(['drain: naive baseline (1 process)', `${fmt(naive.pushesPerSecond, 0)} pushes/s`, `${fmt(naive.seconds, 2)} s`, `missing ${naive.missing}${ratio}`]);
}

async function main(): Promise<void> {
  const unpin = pinShared();
  const stack = await createStack();
  const rows: Row[] = [];
  try {
    say('starting api and worker ...');
    const api = await stack.startApi();
    const worker = await stack.startWorker('worker-1');
    const callees = await seedCallees(stack.databaseUrl, 1000);

    say('warm-up ...');
    await benchEndToEnd(stack.apiUrl, callees, stack.arrivals, 200);
    await waitForQuiet(stack);

    if (phases.has('ingest')) await ingestPhase(stack, callees, rows);
    if (phases.has('idle')) await idlePhase(rows, [api, worker]);
    if (phases.has('e2e')) await endToEndPhase(stack, callees, rows, [api, worker]);
    if (phases.has('floor')) await floorPhase(stack, rows);
    if (phases.has('lifecycle')) await lifecyclePhase(stack, callees, rows);
    const apiPeak = api.peakRssMb();
    const workers = [worker];
    const realRate = phases.has('drain') ? await drainPhase(stack, rows, workers) : Number.NaN;
    const workerPeak = Math.max(...workers.map((w) => w.peakRssMb()));
    await Promise.all(workers.map((w) => w.stop()));
    if (phases.has('naive')) await naivePhase(stack, rows, realRate);
    if (phases.has('scale')) await scalePhase(stack, rows, say);

    if (stack.rejected.count > 0) rows.push(['stand-ins rejected (malformed pushes, not counted as delivered)', `${stack.rejected.count} requests`, '', 'a sender is broken: see bench/.out/']);
    rows.push(['4. peak RSS: api (phases 1-2)', `${fmt(apiPeak, 0)} MB`, '', '']);
    rows.push(['4. peak RSS: worker (phases 2-3)', `${fmt(workerPeak, 0)} MB`, '', '']);
  } finally {
    await stack.tearDown();
    unpin();
  }
  report(rows);
}

/** Notes below this line in RESULTS.md are the team's, not the bench's: every run keeps them. */
const HAND_WRITTEN = '<!-- Written by hand from here on; pnpm bench keeps it. -->';

function handWritten(path: string): string {
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const at = text.indexOf(HAND_WRITTEN);
  return at < 0 ? '' : `\n${text.slice(at)}`;
}

function report(rows: string[][]): void {
  const header = ['what', 'figure', 'detail', 'notes'];
  const table = [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
  say(`\n${table}\n`);
  let commit = 'unknown';
  try {
    commit = execSync('git rev-parse --short HEAD', { cwd: REPO_ROOT }).toString().trim();
  } catch {
    // not a checkout
  }
  const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  // A subset of phases does not replace the committed table of a full run.
  const target = process.env.BENCH_PHASES ? `${REPO_ROOT}bench/.out/RESULTS.md` : `${REPO_ROOT}bench/RESULTS.md`;
  mkdirSync(`${REPO_ROOT}bench/.out`, { recursive: true });
  writeFileSync(
    target,
    `# Benchmark results\n\n- date: ${new Date().toISOString()}\n- commit: ${commit}\n- machine: ${machine}\n` +
      (PIN
        ? `- pinned (BENCH_PIN=1): load generator and stand-ins on core 0; api, worker(s), Postgres, Redis on core 1\n\n`
        : `- everything co-located on loopback: api, worker(s), Postgres, Redis, the APNs/FCM stand-ins and the load generator\n\n`) +
      `${table}\n\n## Reproduce\n\n\`\`\`sh\npnpm install\npnpm bench\n\`\`\`\n\n` +
      `Needs the local Postgres and Redis the tests use, and port 443 on 127.0.0.1 free (the apns2 baseline cannot use another port).\n` +
      `Service logs of the run are in bench/.out/.\n` +
      handWritten(target),
  );
  say(`written: ${target.slice(REPO_ROOT.length)}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
