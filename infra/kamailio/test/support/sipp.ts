import { spawn } from 'node:child_process';
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
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve({ code, ms: Date.now() - started, output: tail(output) }));
  });
}

/** Starts a UAS sipp in the background; await `done` for its result. */
export function startSipp(opts: SippOptions): { done: Promise<SippRun> } {
  return { done: runSipp(opts) };
}

function tail(text: string): string {
  return text.length > 6000 ? text.slice(-6000) : text;
}
