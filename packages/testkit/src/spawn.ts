import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

const live = new Set<ChildProcess>();
// Backstop for whatever a failed hook never stopped: the test file's process SIGKILLs it on exit.
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Kills `child` when the current test ends (pass or fail), or at the latest when the test file's process exits. */
export function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  try {
    onTestFinished(async () => void (await killAndWait(child, 'SIGKILL')));
  } catch {
    // Started in a beforeAll hook: its afterAll stops it; the exit handler above is the backstop.
  }
}

function killAndWait(child: ChildProcess, signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => {
    child.once('exit', (code, sig) => resolve({ code, signal: sig }));
    child.kill(signal);
  });
}

export interface ServiceProcess {
  child: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  /** Parsed JSON (pino) lines of stdout so far. */
  lines(): Record<string, unknown>[];
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** Sends `signal` (SIGTERM by default, SIGKILL after `graceMs`) and waits for the exit. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | null>;
}

/**
 * `node --import tsx services/<name>/src/main.ts` as one process: the tsx CLI would add a relay
 * process that a SIGKILL orphans (still taking jobs). Only PATH is inherited: the test says
 * everything else the service reads, as an operator would.
 */
export function spawnService(name: 'api' | 'worker', env: Record<string, string>): ServiceProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', `services/${name}/src/main.ts`], {
    cwd: REPO_ROOT,
    // The test CA (vitest.config.ts sets it) so the services trust the APNs/FCM stand-ins.
    env: { PATH: process.env.PATH ?? '', ...(process.env.NODE_EXTRA_CA_CERTS ? { NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS } : {}), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(child);
  let out = '';
  const parsed: Record<string, unknown>[] = [];
  let partial = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    partial += chunk.toString();
    let i;
    while ((i = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, i);
      partial = partial.slice(i + 1);
      if (line.startsWith('{')) {
        try {
          parsed.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          // not a log line
        }
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => out,
    lines: () => parsed,
    exited,
    async stop(signal = 'SIGTERM', graceMs = 10_000) {
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try {
        return (await killAndWait(child, signal)).code;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Waits (polling, no fixed sleep) for a log line with `msg`; fails early with the output if the process exits. */
export async function waitForLog(proc: ServiceProcess, msg: string, timeoutMs = 20_000): Promise<Record<string, unknown>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const line = proc.lines().find((l) => l.msg === msg);
    if (line) return line;
    if (proc.child.exitCode !== null) throw new Error(`process exited (${proc.child.exitCode}) before "${msg}":\n${proc.output()}`);
    if (Date.now() > until) throw new Error(`no "${msg}" within ${timeoutMs} ms:\n${proc.output()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
