import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Harness } from './harness.ts';

const root = fileURLToPath(new URL('../../../../', import.meta.url));

export interface WorkerProcess {
  child: ChildProcess;
  /** Every JSON log line the process wrote so far. */
  lines: Record<string, unknown>[];
  /** Whatever it wrote to stderr (read so a full pipe never blocks the process). */
  stderr: () => string;
  /** Resolves with the metrics port once the process logs "Worker started". */
  started: Promise<number>;
}

/**
 * The real worker process (`services/worker/src/main.ts` through tsx) on the test's queues.
 * `node --import tsx`, not the tsx CLI: the CLI runs the script in a second node process, so
 * SIGKILL of the CLI would leave the real worker running as an orphan (still taking jobs).
 */
export function spawnWorker(h: Harness): WorkerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'services/worker/src/main.ts', '--queue', h.queueBase], {
    cwd: root,
    env: { ...process.env, ...h.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  let err = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    err = (err + chunk.toString()).slice(-20_000);
  });
  let buf = '';
  const started = new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          const parsed = JSON.parse(line) as Record<string, unknown>;
          lines.push(parsed);
          if (parsed.msg === 'Worker started') resolve(parsed.metrics_port as number);
        } catch {
          // not a log line
        }
      }
    });
    child.once('exit', (code) => reject(new Error(`worker exited early (${code})`)));
  });
  // Unobserved when a test never awaits it; the exit is then reported by the test's own checks.
  started.catch(() => {});
  return { child, lines, stderr: () => err, started };
}

export async function until(check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}
