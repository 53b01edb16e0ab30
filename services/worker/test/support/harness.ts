import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Job, Queue, QueueEvents } from 'bullmq';
import { vi } from 'vitest';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '@veil/config/config';
import { upsertRegistration } from '@veil/db/registrations';
import type { Logger } from '@veil/log/logger';
import { pushJobOptions, pushQueueName, PUSH_JOB, PUSH_PLATFORMS, type CallPushJob, type PushJob, type PushPlatform } from '@veil/queue/contracts';
import { startApnsGateways, startApnsStandIn, writeTestApnsKey, type ApnsStandIn, type TestApnsKey } from '@veil/testkit/apns-stand-in';
import { createTestDb, type TestDb } from '@veil/testkit/db';
import { captureLogs } from '@veil/testkit/logs';
import { startFcmStandIn, type FcmStandIn } from '@veil/testkit/fcm-stand-in';
import { standInEnv } from '@veil/testkit/stand-in-env';
import { queueOptions } from '@veil/queue/redis';
import { dropCallState, obliterateQueue, testQueueName, TEST_REDIS_URL } from '@veil/testkit/queue';
import { createWorkerMetrics, type WorkerMetrics } from '../../src/metrics.ts';
import type { FcmAccessTokenOptions } from '../../src/providers/fcm-access-token.ts';
import type { ProviderSet } from '../../src/providers/provider-set.ts';
import type { PushWorkers } from '../../src/push-workers.ts';
import { createWorkerService, type WorkerService } from '../../src/service.ts';
import { maintenanceQueueName } from '../../src/registration-expiry.ts';

export { TEST_BUNDLE_ID as BUNDLE_ID } from '@veil/testkit/stand-in-env';

export interface HarnessOptions {
  ttlSeconds?: number;
  maxAttempts?: number;
  concurrency?: number;
  requestTimeoutMs?: number;
  /** A Redis of the test's own (e.g. one it restarts); its queues are not obliterated at close. */
  redisUrl?: string;
  /** Extra or overriding environment (e.g. APNS_KEY_ID: '' for "not configured"). */
  env?: Record<string, string>;
  /** FCM access-token timings in seconds instead of minutes (logs go to the harness's log). */
  fcmAccessToken?: Omit<FcmAccessTokenOptions, 'log'>;
  /** A second APNs stand-in as the production gateway (`apnsProduction`); `apns` is then the sandbox one. */
  productionGateway?: boolean;
}

/** How a job ended, as its queue's event stream reported it. */
export interface Settled {
  state: 'completed' | 'failed';
  /** The processor's result (completed jobs). */
  returnvalue?: unknown;
  /** Failed jobs only: read from the job, which removeOnFail keeps (completed ones are removed). */
  attemptsMade?: number;
  failedReason?: string;
}

export interface Harness {
  dir: string;
  apnsKey: TestApnsKey;
  apns: ApnsStandIn;
  /** With `productionGateway`: the production gateway (APNS_PRODUCTION_HOST); `apns` is the sandbox. */
  apnsProduction: ApnsStandIn | null;
  fcm: FcmStandIn;
  db: TestDb;
  queueBase: string;
  env: Record<string, string>;
  config: Config;
  /** The test's platform queues (producer side), e.g. to look at job state or dedup keys. */
  queues: Record<PushPlatform, Queue>;
  logs: Record<string, unknown>[];
  log: Logger;
  metrics: WorkerMetrics;
  /** Starts an in-process worker (both platform queues); closed by close(). */
  startWorker(): PushWorkers;
  /** The provider set of the last startWorker() (reload, connections). */
  providers(): ProviderSet;
  /** Registers the device in Postgres and enqueues its push exactly as the API does. */
  enqueue(platform: PushPlatform, over?: Partial<CallPushJob>): Promise<{ push: CallPushJob; job: Job }>;
  /**
   * Waits until the job completed or failed for good, by any worker (in-process or spawned).
   * Pass the job that was added, not the answer to a deduplicated add (its timestamp is later).
   */
  settle(job: Job, timeoutMs?: number): Promise<Settled>;
  logsWith(msg: string): Record<string, unknown>[];
  close(): Promise<void>;
}

export function iosToken(): string {
  return randomBytes(32).toString('hex');
}
export function androidToken(): string {
  return `fcm-${randomBytes(24).toString('base64url')}:APA91b${randomBytes(40).toString('base64url')}`;
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'veil-worker-'));
  const apnsKey = writeTestApnsKey(dir);
  const gateways = opts.productionGateway ? await startApnsGateways({ key: apnsKey }) : null;
  const apns = gateways?.sandbox ?? (await startApnsStandIn({ key: apnsKey }));
  const apnsProduction = gateways?.production ?? null;
  const fcm = await startFcmStandIn();
  const saPath = fcm.writeServiceAccount(dir);
  const db = await createTestDb('worker');
  const queueBase = testQueueName('worker');
  const redisUrl = opts.redisUrl ?? TEST_REDIS_URL;
  const ttl = opts.ttlSeconds ?? 30;
  const maxAttempts = opts.maxAttempts ?? 5;
  const env: Record<string, string> = {
    REDIS_URL: redisUrl,
    DATABASE_URL: `postgres://postgres@127.0.0.1:5432/postgres`,
    ...standInEnv({ key: apnsKey, apns, fcm, serviceAccountPath: saPath }),
    ...(apnsProduction ? { APNS_SANDBOX_HOST: apns.host, APNS_PRODUCTION_HOST: apnsProduction.host } : {}),
    // Never the machine's /etc/veil/apps.json: a test writes its own apps file here.
    PUSH_APPS_PATH: join(dir, 'apps.json'),
    PUSH_TTL_SECONDS: String(ttl),
    PUSH_MAX_ATTEMPTS: String(maxAttempts),
    WORKER_CONCURRENCY: String(opts.concurrency ?? 20),
    METRICS_PORT: '0',
    LOG_LEVEL: 'info',
    // The test's own queues, named as an operator names them; a spawned worker reads the same.
    PUSH_QUEUE: queueBase,
    ...opts.env,
  };
  const config = loadConfig(env);
  const captured = captureLogs('worker');
  const { log } = captured;
  const logs = captured.lines();
  const metrics = createWorkerMetrics();
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queues = {
    ios: new Queue(pushQueueName(queueBase, 'ios'), { connection, ...queueOptions(config.redis, pushQueueName(queueBase, 'ios')) }),
    android: new Queue(pushQueueName(queueBase, 'android'), { connection, ...queueOptions(config.redis, pushQueueName(queueBase, 'android')) }),
  };
  // Outcomes come from each queue's event stream, not from finished jobs: completed jobs are
  // removed at once (removeOnComplete) and the worker may be another process. Reading from the
  // stream's start means an outcome written before the first XREAD is not missed; the queues are
  // the test's own, so nothing older is in them. Keyed by platform too: job ids repeat across queues.
  // `at` (the stream entry's ms) tells an outcome of this job from one of an earlier job with the
  // same id: a Redis restarted empty numbers its jobs from 1 again.
  type Outcome = { at: number } & ({ state: 'completed'; returnvalue: unknown } | { state: 'failed'; failedReason: string });
  const outcomes = new Map<string, Outcome>();
  const queueEvents = PUSH_PLATFORMS.map((platform) => {
    const events = new QueueEvents(pushQueueName(queueBase, platform), { connection, lastEventId: '0', ...queueOptions(config.redis, pushQueueName(queueBase, platform)) });
    const at = (eventId: string) => Number(eventId.split('-')[0]);
    // A 'failed' event means failed for good: a retried attempt is reported as 'delayed'/'waiting'.
    events.on('completed', ({ jobId, returnvalue }, id) => {
      outcomes.set(`${platform}:${jobId}`, { at: at(id), state: 'completed', returnvalue });
    });
    events.on('failed', ({ jobId, failedReason }, id) => {
      outcomes.set(`${platform}:${jobId}`, { at: at(id), state: 'failed', failedReason });
    });
    // Redis may go away (redis-restart.test.ts); QueueEvents reconnects and resumes after its last id.
    events.on('error', () => {});
    return events;
  });
  const started: WorkerService[] = [];

  const h: Harness = {
    dir, apnsKey, apns, apnsProduction, fcm, db, queueBase, env, config, queues, logs, log, metrics,
    startWorker() {
      // The worker's own composition root, on the test's db (schema): it is the purge target.
      const service = createWorkerService(config, {
        log, db, metrics, fcmAccessToken: opts.fcmAccessToken, requestTimeoutMs: opts.requestTimeoutMs ?? 2000,
      });
      service.startWorkers();
      started.push(service);
      return { close: () => service.destroy() };
    },
    providers() {
      const last = started.at(-1);
      if (!last) throw new Error('startWorker() first');
      return last.providers;
    },
    async enqueue(platform, over = {}) {
      const now = Date.now();
      // A v1 job is queued as a round-1 api wrote it: no kind, no apns_environment.
      const v1 = over.v === 1;
      const push = {
        v: 2,
        ...(v1 ? {} : { kind: 'call', apns_environment: null }),
        platform,
        jid: 'bob@example.com',
        device_id: randomUUID(),
        push_token: platform === 'ios' ? iosToken() : androidToken(),
        app_id: null,
        caller_name: 'Alice',
        call_id: `call-${randomUUID()}`,
        call_type: 'audio',
        enqueued_at: now,
        deadline: now + ttl * 1000,
        ...over,
      } as CallPushJob;
      await upsertRegistration(db, {
        jid: push.jid, device_id: push.device_id, platform, push_token: push.push_token, app_id: push.app_id, apns_environment: push.apns_environment ?? null,
      });
      const job = await queues[platform].add(PUSH_JOB, push, pushJobOptions(push, maxAttempts, ttl));
      return { push, job };
    },
    async settle(job, timeoutMs = 20_000) {
      const platform = (job.data as PushJob).platform;
      // Same host, same clock: this job's outcome is never stamped before the job was added.
      const outcomeOf = () => {
        const found = outcomes.get(`${platform}:${job.id}`);
        return found && found.at >= job.timestamp ? found : undefined;
      };
      const outcome = await vi
        .waitFor(() => outcomeOf() ?? Promise.reject(new Error('not settled yet')), { timeout: timeoutMs, interval: 25 })
        .catch(async () => {
          throw new Error(`job ${job.id} not settled after ${timeoutMs} ms (state: ${await queues[platform].getJobState(job.id!)})`);
        });
      if (outcome.state === 'completed') return { state: 'completed', returnvalue: outcome.returnvalue };
      const failed = await Job.fromId(queues[platform], job.id!);
      if (!failed) throw new Error(`failed job ${job.id} was not kept (removeOnFail)`);
      return { state: 'failed', failedReason: outcome.failedReason, attemptsMade: failed.attemptsMade };
    },
    logsWith: captured.withMsg,
    async close() {
      await Promise.all(started.map((w) => w.destroy()));
      await Promise.all([queues.ios.close(), queues.android.close(), ...queueEvents.map((e) => e.close())]);
      connection.disconnect();
      if (redisUrl === TEST_REDIS_URL) {
        await Promise.all([obliterateQueue(pushQueueName(queueBase, 'ios')), obliterateQueue(pushQueueName(queueBase, 'android')), dropCallState(queueBase)]);
        // A spawned worker process also scheduled its registration clean-up on the test's base.
        await obliterateQueue(maintenanceQueueName(queueBase));
      }
      await Promise.all([apns.close(), apnsProduction?.close(), fcm.close()]);
      await db.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return h;
}

export async function registrationToken(db: TestDb, jid: string, deviceId: string): Promise<string | null> {
  const rows = await db.sql<{ push_token: string }[]>`SELECT push_token FROM push_registrations WHERE jid = ${jid} AND device_id = ${deviceId}`;
  return rows[0]?.push_token ?? null;
}
