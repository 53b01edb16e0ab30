import type { ChildProcess } from 'node:child_process';
import { spawnService, waitForLog } from '@veil/testkit/spawn';
import type { Harness } from './harness.ts';

export interface WorkerProcess {
  child: ChildProcess;
  /** Every JSON log line the process wrote so far. */
  lines: Record<string, unknown>[];
  /** Everything it wrote so far (stdout and stderr). */
  stderr: () => string;
  /** Resolves with the metrics port once the process logs "Worker started". */
  started: Promise<number>;
}

/**
 * The real worker process on the harness's environment (its own PUSH_QUEUE among it); killed
 * when the test ends, pass or fail (@veil/testkit/spawn).
 */
export function spawnWorker(h: Harness): WorkerProcess {
  const proc = spawnService('worker', h.env);
  const started = waitForLog(proc, 'Worker started', 30_000).then((l) => l.metrics_port as number);
  // Unobserved when a test never awaits it; the exit is then reported by the test's own checks.
  started.catch(() => {});
  return { child: proc.child, lines: proc.lines(), stderr: proc.output, started };
}
