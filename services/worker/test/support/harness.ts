import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Job, Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '@veil/config/config';
import { upsertRegistration } from '@veil/db/registrations';
import { createLogger, type Logger } from '@veil/log/logger';
import { pushJobOptions, pushQueueName, PUSH_JOB, PUSH_PLATFORMS, type PushJob, type PushPlatform } from '@veil/queue/contracts';
import { startApnsStandIn, writeTestApnsKey, type ApnsStandIn, type TestApnsKey } from '@veil/testkit/apns-stand-in';
import { createTestDb, type TestDb } from '@veil/testkit/db';
import { startFcmStandIn, type FcmStandIn } from '@veil/testkit/fcm-stand-in';
import { standInEnv } from '@veil/testkit/stand-in-env';
import { queueOptions } from '@veil/queue/redis';
import { obliterateQueue, testQueueName, TEST_REDIS_URL } from '@veil/testkit/queue';
import { createWorkerMetrics, type WorkerMetrics } from '../../src/metrics.ts';
import { createFcmProvider } from '../../src/providers/fcm.ts';
import { FcmAccessToken, loadFcmServiceAccount, type FcmAccessTokenOptions } from '../../src/providers/fcm-access-token.ts';
import { createProvidersFromConfig } from '../../src/providers/from-config.ts';
import { startPushWorkers, type PushWorkers } from '../../src/push-workers.ts';

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
  /** Registers the device in Postgres and enqueues its push exactly as the API does. */
  enqueue(platform: PushPlatform, over?: Partial<PushJob>): Promise<{ push: PushJob; job: Job }>;
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
  const apns = await startApnsStandIn({ key: apnsKey });
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
    PUSH_TTL_SECONDS: String(ttl),
    PUSH_MAX_ATTEMPTS: String(maxAttempts),
    WORKER_CONCURRENCY: String(opts.concurrency ?? 20),
    METRICS_PORT: '0',
    LOG_LEVEL: 'info',
    ...opts.env,
  };
  const config = loadConfig(env);
  const logs: Record<string, unknown>[] = [];
  const log = createLogger({
    service: 'worker',
    level: 'info',
    destination: { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) },
  });
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
  const started: PushWorkers[] = [];
  const closables: { close(): Promise<void> }[] = [];

  const h: Harness = {
    dir, apnsKey, apns, fcm, db, queueBase, env, config, queues, logs, log, metrics,
    startWorker() {
      // The test's own db (schema) is the purge target, so the worker uses it, not DATABASE_URL.
      const providers = createProvidersFromConfig(config, log, { requestTimeoutMs: opts.requestTimeoutMs ?? 2000 });
      for (const p of [providers.ios, providers.android]) if (p) closables.push(p);
      if (opts.fcmAccessToken) {
        // The same FCM provider as from-config builds, with a token cache on test timings.
        const account = loadFcmServiceAccount(config.fcm.serviceAccountPath);
        if (typeof account === 'string') throw new Error(account);
        const accessToken = new FcmAccessToken(account, { ...opts.fcmAccessToken, log: log.child({ platform: 'android' }) });
        providers.android = createFcmProvider({ apiUrl: config.fcm.apiUrl, account, accessToken, requestTimeoutMs: opts.requestTimeoutMs ?? 2000 });
        closables.push(providers.android);
      }
      const w = startPushWorkers({ config, providers, db, log, metrics, queueBase });
      started.push(w);
      return w;
    },
    async enqueue(platform, over = {}) {
      const now = Date.now();
      const push: PushJob = {
        v: 1,
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
      };
      await upsertRegistration(db, { jid: push.jid, device_id: push.device_id, platform, push_token: push.push_token, app_id: push.app_id });
      const job = await queues[platform].add(PUSH_JOB, push, pushJobOptions(push, maxAttempts, ttl));
      return { push, job };
    },
    async settle(job, timeoutMs = 20_000) {
      const until = Date.now() + timeoutMs;
      const platform = (job.data as PushJob).platform;
      for (;;) {
        const found = outcomes.get(`${platform}:${job.id}`);
        // Same host, same clock: this job's outcome is never stamped before the job was added.
        const outcome = found && found.at >= job.timestamp ? found : undefined;
        if (outcome?.state === 'completed') return { state: 'completed', returnvalue: outcome.returnvalue };
        if (outcome?.state === 'failed') {
          const failed = await Job.fromId(queues[platform], job.id!);
          if (!failed) throw new Error(`failed job ${job.id} was not kept (removeOnFail)`);
          return { state: 'failed', failedReason: outcome.failedReason, attemptsMade: failed.attemptsMade };
        }
        if (Date.now() > until) {
          throw new Error(`job ${job.id} not settled after ${timeoutMs} ms (state: ${await queues[platform].getJobState(job.id!)})`);
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    logsWith(msg) {
      return logs.filter((l) => typeof l.msg === 'string' && (l.msg as string).includes(msg));
    },
    async close() {
      await Promise.all(started.map((w) => w.close()));
      await Promise.all(closables.map((c) => c.close()));
      await Promise.all([queues.ios.close(), queues.android.close(), ...queueEvents.map((e) => e.close())]);
      connection.disconnect();
      if (redisUrl === TEST_REDIS_URL) {
        await Promise.all([obliterateQueue(pushQueueName(queueBase, 'ios')), obliterateQueue(pushQueueName(queueBase, 'android'))]);
      }
      await Promise.all([apns.close(), fcm.close()]);
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
