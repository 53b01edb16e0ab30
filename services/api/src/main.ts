import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { loadConfigOrExit } from '@veil/config/config';
import { createDb } from '@veil/db/client';
import { createLogger } from '@veil/log/logger';
import { PUSH_QUEUE, pushQueueName } from '@veil/queue/contracts';
import { createRedis, queueOptions } from '@veil/queue/redis';
import { createApp } from './app.ts';
import { createJwtVerifier, JwtKeyError, loadJwtPublicKey } from './http/auth.ts';
import { createApiMetrics } from './metrics.ts';
import { startMigrationLoop } from './migration-loop.ts';
import { waitForRedisReady } from './redis-ready.ts';

// Composition root: config -> logger -> db (+ background migrations) -> redis -> queues -> app -> listen.
const config = loadConfigOrExit(process.env, 'api');
const log = createLogger({ service: 'api', level: config.logLevel });

let publicKey = null;
try {
  publicKey = config.jwt.publicKeyPath ? loadJwtPublicKey(config.jwt.publicKeyPath) : null;
} catch (err) {
  if (!(err instanceof JwtKeyError)) throw err;
  process.stderr.write(`api: invalid configuration: ${err.message}\n`);
  process.exit(78);
}
const verifier = createJwtVerifier(config.jwt, publicKey);
if (!verifier.configured) {
  // call-notify must work from a fresh clone, so this is not fatal; register/deregister answer 401.
  log.error('Neither JWT_SECRET nor JWT_PUBLIC_KEY_PATH is set: push registration is disabled (401 jwt_not_configured)');
}

const db = createDb({ url: config.databaseUrl, connectTimeoutSeconds: 1, queryTimeoutMs: 1500 });

// Migrations run in the background until they succeed (Compose starts Postgres with everything
// else; an outage at start must not keep the API down): the database routes answer 503 meanwhile.
const migrations = startMigrationLoop({ databaseUrl: config.databaseUrl, log });

const redis = createRedis(config.redis, 'producer');
let lastRedisError = '';
redis.on('error', (err: Error) => {
  // ioredis repeats the same error on every reconnect attempt; one line per distinct failure is enough.
  if (err.message !== lastRedisError) log.warn({ error: err.message }, 'Redis connection error');
  lastRedisError = err.message;
});
redis.on('ready', () => {
  if (lastRedisError) log.info('Redis connection restored');
  lastRedisError = '';
});

const queues = {
  ios: new Queue(pushQueueName(PUSH_QUEUE, 'ios'), { connection: redis, ...queueOptions(config.redis, pushQueueName(PUSH_QUEUE, 'ios')) }),
  android: new Queue(pushQueueName(PUSH_QUEUE, 'android'), { connection: redis, ...queueOptions(config.redis, pushQueueName(PUSH_QUEUE, 'android')) }),
};
for (const q of Object.values(queues)) q.on('error', () => {}); // already logged by the connection listener

// Give Redis and the first migration attempt a moment (both bounded) before taking traffic, so the
// first calls after a deploy are not 503s while they handshake; if either is down the API listens
// anyway (readyz says 503 until it is back).
await Promise.all([waitForRedisReady(redis, 3000), Promise.race([migrations.firstAttempt, sleep(3000)])]);

const app = createApp({
  config,
  db,
  redis,
  queues,
  log,
  verifier,
  metrics: createApiMetrics({ defaultMetrics: true }),
  isMigrated: migrations.isMigrated,
});
const server = app.listen(config.port, () => {
  log.info({ port: (server.address() as AddressInfo).port }, 'API listening');
});
server.on('error', (err) => {
  log.fatal({ error: err.message }, 'API cannot listen');
  process.exit(1);
});

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  migrations.stop();
  log.info({ signal }, 'Shutting down: finishing in-flight requests');
  // Stop accepting; close() resolves once in-flight requests have answered. Idle keep-alive
  // sockets would hold it open, so they go now; a hard stop after 10 s bounds the whole thing.
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const force = setTimeout(() => {
    log.warn('In-flight requests did not finish within 10 s; closing them');
    server.closeAllConnections();
  }, 10_000);
  force.unref();
  await closed;
  clearTimeout(force);
  await Promise.allSettled(Object.values(queues).map((q) => q.close()));
  redis.disconnect();
  await db.close();
  log.info('Stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
