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

/** Why a call ended (call-ended webhook); the apps show or dismiss the call by it. */
export const CALL_END_REASONS = ['cancelled', 'timeout', 'answered', 'declined'] as const;
export type CallEndReason = (typeof CALL_END_REASONS)[number];

/** Fields every job carries: who gets it, through which credentials, and until when. */
const jobBase = {
  platform: z.enum(['ios', 'android']),
  jid: z.string().min(1),
  device_id: z.string().min(1),
  /** The token this job goes to: the VoIP/FCM token, or for an iOS missed-call alert the alert token. */
  push_token: z.string().min(1),
  /** iOS topic is `${app_id ?? APNS_BUNDLE_ID}` (+ `.voip` for calls); unused on Android. */
  app_id: z.string().nullable(),
  /** iOS: the registration's APNs environment; null (and absent in v1 jobs) = the deployment default. */
  apns_environment: z.enum(['sandbox', 'production']).nullable().default(null),
  caller_name: z.string(),
  call_id: z.string().min(1),
  call_type: z.enum(['audio', 'video']),
  /** Epoch ms when the API accepted the request behind this job. */
  enqueued_at: z.number().int().positive(),
  /** Epoch ms after which sending (or retrying) is worthless: enqueued_at + PUSH_TTL_SECONDS. */
  deadline: z.number().int().positive(),
};

/**
 * Everything the worker needs to send one push, so the hot path never reads Postgres.
 * Versioned: jobs outlive deploys while a queue drains. v1 (round 1) had no `kind` (always a
 * call) and no `apns_environment`; the worker still reads both versions.
 */
const callPushSchema = z.object({ v: z.union([z.literal(1), z.literal(2)]), kind: z.literal('call'), ...jobBase });

/**
 * "The call is over" for a device whose ringing push was accepted: an FCM data message on
 * Android, a visible missed-call alert to the alert token on iOS.
 */
const callEndedPushSchema = z.object({ v: z.literal(2), kind: z.literal('call_ended'), reason: z.enum(CALL_END_REASONS), ...jobBase });

export const pushJobSchema = z.preprocess(
  (data) => (data && typeof data === 'object' && !('kind' in data) ? { ...data, kind: 'call' } : data),
  z.discriminatedUnion('kind', [callPushSchema, callEndedPushSchema]),
);

export type PushJob = z.infer<typeof pushJobSchema>;

/** Who a job goes to and through which credentials: the fields every job copies from its device. */
export function jobTarget(d: Pick<PushJob, 'platform' | 'jid' | 'device_id' | 'push_token' | 'app_id' | 'apns_environment'>) {
  return { platform: d.platform, jid: d.jid, device_id: d.device_id, push_token: d.push_token, app_id: d.app_id, apns_environment: d.apns_environment };
}
export type CallPushJob = Extract<PushJob, { kind: 'call' }>;
export type CallEndedPushJob = Extract<PushJob, { kind: 'call_ended' }>;

export function parsePushJob(data: unknown): PushJob {
  return pushJobSchema.parse(data);
}

/**
 * The dedup id for (call, device): SIP retransmissions and caller retries of one Call-ID must
 * not ring a device twice within the TTL. Hashed because BullMQ ids and Redis keys must not
 * carry arbitrary Call-ID bytes.
 */
export function pushDedupId(callId: string, jid: string, deviceId: string, kind: PushJob['kind'] = 'call'): string {
  const key = kind === 'call' ? `${callId}\n${jid}\n${deviceId}` : `${kind}\n${callId}\n${jid}\n${deviceId}`;
  return createHash('sha256').update(key).digest('base64url');
}

/** BullMQ options for one push job; attempts and deadline come from the shared config. */
export function pushJobOptions(job: PushJob, maxAttempts: number, ttlSeconds: number): JobsOptions {
  return {
    attempts: maxAttempts,
    backoff: { type: PUSH_BACKOFF },
    // Throttle mode: the key lives for the TTL even after the job completes and is removed.
    deduplication: { id: pushDedupId(job.call_id, job.jid, job.device_id, job.kind), ttl: ttlSeconds * 1000 },
    // A delivered push is of no further use, and its data holds the device's push token:
    // drop it at once (also saves BullMQ the per-job bookkeeping of a completed set).
    removeOnComplete: true,
    // Failed pushes stay for inspection, bounded: each one holds a push token too.
    removeOnFail: { age: 24 * 3600, count: 1_000 },
  };
}
