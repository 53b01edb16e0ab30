import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SCENARIOS = fileURLToPath(new URL('../scenarios/', import.meta.url));

export interface SippRun {
  /** sipp's exit code: 0 when every call followed the scenario, 1 when one failed. */
  code: number | null;
  ms: number;
  output: string;
}

export interface SippOptions {
  scenario: string;
  /** kamailio's port; a UAS scenario ignores it. */
  proxyPort: number;
  localPort: number;
  keys?: Record<string, string>;
  callId?: string;
  calls?: number;
  timeoutSeconds?: number;
}

/**
 * Every sipp started in this test file and not yet exited. A failed assertion leaves background
 * sipps (and awaited ones, when a test times out) running on their ports: killAllSipp() in an
 * afterEach ends them, so the next test starts clean.
 */
const running = new Map<ChildProcess, Promise<void>>();

/** Runs one sipp to completion (a UAS too: it ends after `calls` calls or its timeout). */
export function runSipp(opts: SippOptions): Promise<SippRun> {
  const calls = opts.calls ?? 1;
  const args = [`127.0.0.1:${opts.proxyPort}`, '-sf', SCENARIOS + opts.scenario, '-i', '127.0.0.1', '-p', String(opts.localPort)];
  args.push('-m', String(calls), '-nostdin', '-timeout', `${opts.timeoutSeconds ?? 15}s`, '-timeout_error', '-trace_err');
  args.push('-error_file', '/dev/stderr', '-max_recv_loops', '1000');
  if (opts.callId) args.push('-cid_str', opts.callId);
  for (const [k, v] of Object.entries(opts.keys ?? {})) args.push('-key', k, v);

  const started = Date.now();
  const child = spawn('sipp', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const result = new Promise<SippRun>((resolve) => {
    child.once('exit', (code) => resolve({ code, ms: Date.now() - started, output: tail(output) }));
  });
  running.set(
    child,
    result.then(() => void running.delete(child)),
  );
  return result;
}

/** Starts a sipp in the background (typically a UAS); await `done` for its result. */
export function startSipp(opts: SippOptions): { done: Promise<SippRun> } {
  return { done: runSipp(opts) };
}

/** Kills every sipp still running and waits until each has exited (its ports are free again). */
export async function killAllSipp(): Promise<void> {
  const exits = [...running.entries()].map(([child, exited]) => {
    child.kill('SIGKILL');
    return exited;
  });
  await Promise.all(exits);
}

function tail(text: string): string {
  return text.length > 6000 ? text.slice(-6000) : text;
}
