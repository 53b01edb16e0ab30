import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { pinnedCommand } from './pin.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OUT_DIR = `${REPO_ROOT}bench/.out/`;

export interface ServiceProcess {
  name: string;
  child: ChildProcess;
  /** Peak resident set size so far (VmHWM), in MB. */
  peakRssMb(): number;
  /** CPU time used so far (user + system), in seconds. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

/**
 * Runs an entry point as one node process: a built bundle (.js) as production runs it, or a
 * TypeScript file through `node --import tsx` (not the tsx CLI, whose relay process would hide
 * the real RSS). Output goes to bench/.out/<name>.log.
 */
export async function startService(
  name: string,
  entry: string,
  env: Record<string, string>,
  readyUrl: string | null,
): Promise<ServiceProcess> {
  mkdirSync(OUT_DIR, { recursive: true });
  const out = createWriteStream(`${OUT_DIR}${name}.log`);
  // BENCH_CPU_PROF=1: each service writes V8 CPU profiles (one per thread) to bench/.out/prof/<name>/ when it stops.
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${OUT_DIR}prof/${name}`] : [];
  // BENCH_NODE_ARGS="--trace-gc ...": extra node flags for the services only (not for pnpm or the bench).
  const extra = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const loader = entry.endsWith('.ts') ? ['--import', 'tsx'] : [];
  // BENCH_PIN=1: through taskset, whose exec leaves the pid (and so the CPU and RSS readings) node's.
  const [command, ...pinArgs] = [...pinnedCommand(), process.execPath];
  const child = spawn(command!, [...pinArgs, ...prof, ...extra, ...loader, entry], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (readyUrl) await waitForUrl(readyUrl, child, name);
  return {
    name,
    child,
    peakRssMb: () => readPeakRssMb(child.pid!),
    cpuSeconds: () => readCpuSeconds(child.pid!),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function waitForUrl(url: string, child: ChildProcess, name: string): Promise<void> {
  const until = Date.now() + 30_000;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}; see bench/.out/${name}.log`);
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} did not answer ${url} within 30 s; see bench/.out/${name}.log`);
}

export function readPeakRssMb(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1]);
    return kb / 1024;
  } catch {
    return Number.NaN;
  }
}

/** utime + stime from /proc/<pid>/stat (clock ticks of 1/100 s on Linux), in seconds. */
export function readCpuSeconds(pid: number): number {
  try {
    // The command name (field 2) may contain spaces; the fields after its closing ")" do not.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** Processes whose command line contains `needle` (the shared redis-server, postgres). */
export function findPids(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}
