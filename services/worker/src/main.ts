import { loadConfigOrExit } from '@veil/config/config';
import { createDb } from '@veil/db/client';
import { createLogger } from '@veil/log/logger';
import { PUSH_QUEUE } from '@veil/queue/contracts';
import { createWorkerMetrics } from './metrics.ts';
import { startMetricsServer } from './metrics-server.ts';
import { createProvidersFromConfig } from './providers/from-config.ts';
import { startPushWorkers } from './push-workers.ts';
import { startRegistrationExpiry } from './registration-expiry.ts';

/** In-flight pushes are bounded by the request timeout; after this, close anyway. */
const SHUTDOWN_GRACE_MS = 15_000;

/** `--queue <base>` lets a test run this very process against its own queues. */
function queueBaseFromArgs(argv: string[]): string {
  const i = argv.indexOf('--queue');
  return i >= 0 && argv[i + 1] ? argv[i + 1]! : PUSH_QUEUE;
}

async function main(): Promise<void> {
  const config = loadConfigOrExit(process.env, 'worker');
  const log = createLogger({ service: 'worker', level: config.logLevel });
  const providers = createProvidersFromConfig(config, log);
  // Postgres only for purges; the hot path reads everything from the job.
  const db = createDb({ url: config.databaseUrl, max: 4 });
  const metrics = createWorkerMetrics();
  const queueBase = queueBaseFromArgs(process.argv);
  // The metrics port first: if it cannot be bound the process exits before it holds any job.
  const metricsServer = await startMetricsServer(metrics, config.metricsPort);
  const workers = startPushWorkers({ config, providers, db, log, metrics, queueBase });
  const expiry = startRegistrationExpiry({ config, db, log, metrics, queueBase });
  log.info({ metrics_port: metricsServer.port, queue: queueBase, concurrency: config.workerConcurrency }, 'Worker started');

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
      await workers.close();
      await expiry.close();
      await Promise.all([providers.ios?.close(), providers.android?.close()]);
      await db.close();
      await metricsServer.close();
    } catch (err) {
      log.error({ err: (err as Error).message }, 'Error while stopping');
    }
    log.info('Worker stopped');
    log.flush?.();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`worker: failed to start: ${(err as Error).message}\n`);
  process.exit(1);
});
