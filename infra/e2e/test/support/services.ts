// The real api and worker as child processes, on a database and queues of the suite's own.
// infra/ is not a workspace package: the test kit is imported by path.
import { spawnService, waitForLog, type ServiceProcess } from '../../../../packages/testkit/src/spawn.ts';

export type { ServiceProcess };

/** Starts `services/<name>/src/main.ts` and waits for its ready line; killed at the latest when the file's process exits. */
export async function startService(name: 'api' | 'worker', env: Record<string, string>, readyMsg: string): Promise<ServiceProcess> {
  const proc = spawnService(name, env);
  try {
    await waitForLog(proc, readyMsg, 45_000);
  } catch (err) {
    await proc.stop('SIGKILL');
    throw err;
  }
  return proc;
}
