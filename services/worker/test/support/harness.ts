import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '@veil/config/config';
import { upsertRegistration } from '@veil/db/registrations';
import { createLogger, type Logger } from '@veil/log/logger';
import { pushJobOptions, pushQueueName, PUSH_JOB, type PushJob, type PushPlatform } from '@veil/queue/contracts';
import { startApnsStandIn, writeTestApnsKey, type ApnsStandIn, type TestApnsKey } from '@veil/testkit/apns-stand-in';
import { createTestDb, type TestDb } from '@veil/testkit/db';
import { startFcmStandIn, type FcmStandIn } from '@veil/testkit/fcm-stand-in';
import { obliterateQueue, testQueueName, TEST_REDIS_URL } from '@veil/testkit/queue';
import { createWorkerMetrics, type WorkerMetrics } from '../../src/metrics.ts';
import { createFcmProvider } from '../../src/providers/fcm.ts';
import { FcmAccessToken, loadFcmServiceAccount, type FcmAccessTokenOptions } from '../../src/providers/fcm-access-token.ts';
import { createProvidersFromConfig } from '../../src/providers/from-config.ts';
import { startPushWorkers, type PushWorkers } from '../../src/push-workers.ts';

export const BUNDLE_ID = 'com.example.veil';

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

export interface Harness {
  dir: string;
  apnsKey: TestApnsKey;
  apns: ApnsStandIn;
  fcm: FcmStandIn;
  db: TestDb;
  queueBase: string;
  env: Record<string, string>;
  config: Config;
  logs: Record<string, unknown>[];
  log: Logger;
  metrics: WorkerMetrics;
  /** Starts an in-process worker (both platform queues); closed by close(). */
  startWorker(): PushWorkers;
  /** Registers the device in Postgres and enqueues its push exactly as the API does. */
  enqueue(platform: PushPlatform, over?: Partial<PushJob>): Promise<{ push: PushJob; job: Job }>;
  /** Waits until the job is completed or failed (or gone: removed on completion). */
  settle(job: Job, timeoutMs?: number): Promise<{ state: string; returnvalue: unknown; attemptsMade: number; failedReason?: string }>;
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
    APNS_KEY_PATH: apnsKey.path,
    APNS_KEY_ID: apnsKey.keyId,
    APNS_TEAM_ID: apnsKey.teamId,
    APNS_BUNDLE_ID: BUNDLE_ID,
    APNS_HOST: apns.host,
    FCM_SERVICE_ACCOUNT_PATH: saPath,
    FCM_API_URL: fcm.url,
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
    ios: new Queue(pushQueueName(queueBase, 'ios'), { connection }),
    android: new Queue(pushQueueName(queueBase, 'android'), { connection }),
  };
  const started: PushWorkers[] = [];
  const closables: { close(): Promise<void> }[] = [];

  const h: Harness = {
    dir, apnsKey, apns, fcm, db, queueBase, env, config, logs, log, metrics,
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
      const queue = queues[(job.data as PushJob).platform];
      for (;;) {
        // State first, then the hash: the other order can read a job just before it finished.
        const state = await queue.getJobState(job.id!);
        const fresh = await Job.fromId(queue, job.id!);
        if (state === 'completed' || state === 'failed' || state === 'unknown') {
          return { state, returnvalue: fresh?.returnvalue, attemptsMade: fresh?.attemptsMade ?? 0, failedReason: fresh?.failedReason };
        }
        if (Date.now() > until) throw new Error(`job ${job.id} still ${state} after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    logsWith(msg) {
      return logs.filter((l) => typeof l.msg === 'string' && (l.msg as string).includes(msg));
    },
    async close() {
      await Promise.all(started.map((w) => w.close()));
      await Promise.all(closables.map((c) => c.close()));
      await Promise.all([queues.ios.close(), queues.android.close()]);
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
