import { createHash } from 'node:crypto';
import type { JobsOptions } from 'bullmq';
import { z } from 'zod';

export type PushPlatform = 'ios' | 'android';
export const PUSH_PLATFORMS: readonly PushPlatform[] = ['ios', 'android'];

/**
 * One queue per platform, each drained by its own BullMQ worker with its own concurrency:
 * a hanging or throttled APNs must not hold the slots Android pushes need, nor the reverse.
 */
export function pushQueueName(base: string, platform: PushPlatform): string {
  return `${base}-${platform}`;
}
/** Job name: one job is one push to one device. */
export const PUSH_JOB = 'push';
/** Custom backoff type; the worker's backoffStrategy computes it (Retry-After, jitter, deadline). */
export const PUSH_BACKOFF = 'push';

/**
 * Everything the worker needs to send one push, so the hot path never reads Postgres.
 * Version the shape: jobs outlive deploys while a queue drains.
 */
export const pushJobSchema = z.object({
  /** 2 added apns_environment; v1 jobs (queued by an older api) are still sent. */
  v: z.union([z.literal(1), z.literal(2)]),
  platform: z.enum(['ios', 'android']),
  jid: z.string().min(1),
  device_id: z.string().min(1),
  push_token: z.string().min(1),
  /** iOS topic is `${app_id ?? APNS_BUNDLE_ID}.voip`; unused on Android. */
  app_id: z.string().nullable(),
  /** v2: iOS gateway of the token; null or absent (v1 jobs) = the deployment default. */
  apns_environment: z.enum(['sandbox', 'production']).nullish(),
  caller_name: z.string(),
  call_id: z.string().min(1),
  call_type: z.enum(['audio', 'video']),
  /** Epoch ms when the API accepted the call. */
  enqueued_at: z.number().int().positive(),
  /** Epoch ms after which the push is worthless: enqueued_at + PUSH_TTL_SECONDS. */
  deadline: z.number().int().positive(),
});

export type PushJob = z.infer<typeof pushJobSchema>;

export function parsePushJob(data: unknown): PushJob {
  return pushJobSchema.parse(data);
}

/**
 * The dedup id for (call, device): SIP retransmissions and caller retries of one Call-ID must
 * not ring a device twice within the TTL. Hashed because BullMQ ids and Redis keys must not
 * carry arbitrary Call-ID bytes.
 */
export function pushDedupId(callId: string, jid: string, deviceId: string): string {
  return createHash('sha256').update(`${callId}\n${jid}\n${deviceId}`).digest('base64url');
}

/** BullMQ options for one push job; attempts and deadline come from the shared config. */
export function pushJobOptions(job: PushJob, maxAttempts: number, ttlSeconds: number): JobsOptions {
  return {
    attempts: maxAttempts,
    backoff: { type: PUSH_BACKOFF },
    // Throttle mode: the key lives for the TTL even after the job completes and is removed.
    deduplication: { id: pushDedupId(job.call_id, job.jid, job.device_id), ttl: ttlSeconds * 1000 },
    // A delivered push is of no further use, and its data holds the device's push token:
    // drop it at once (also saves BullMQ the per-job bookkeeping of a completed set).
    removeOnComplete: true,
    // Failed pushes stay for inspection, bounded: each one holds a push token too.
    removeOnFail: { age: 24 * 3600, count: 1_000 },
  };
}
