import { loadConfigOrExit } from '@veil/config/config';
import { createLogger } from '@veil/log/logger';
import { createWorkerService } from './service.ts';

/** In-flight pushes are bounded by the request timeout; after this, close anyway. */
const SHUTDOWN_GRACE_MS = 15_000;

// Process edges only: environment, exit codes, signals. Everything else is built by createWorkerService.
async function main(): Promise<void> {
  const config = loadConfigOrExit(process.env, 'worker');
  const log = createLogger({ service: 'worker', level: config.logLevel });
  const service = createWorkerService(config, { log });
  const metricsPort = await service.start();
  log.info({ metrics_port: metricsPort, queue: config.pushQueue, concurrency: config.workerConcurrency }, 'Worker started');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'Worker stopping: no new jobs, finishing in-flight pushes');
    const forced = setTimeout(() => {
      log.error('In-flight pushes did not finish in time; exiting (BullMQ hands them to another worker)');
      process.exit(1);
    }, SHUTDOWN_GRACE_MS);
    forced.unref();
    try {
      await service.destroy();
    } catch (err) {
      log.error({ err: (err as Error).message }, 'Error while stopping');
    }
    log.info('Worker stopped');
    log.flush?.();
    process.exit(0);
  };
  // Key rotation without a restart: re-read keys, service accounts and the apps file. Pushes in
  // flight finish on the old connections; a reload that fails keeps the old credentials.
  process.on('SIGHUP', () => {
    log.info('SIGHUP: reloading credentials');
    void service.providers.reload();
  });
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`worker: failed to start: ${(err as Error).message}\n`);
  process.exit(1);
});
