import type { Queue } from 'bullmq';
import type { CalleeDevice } from '@veil/db/registrations';
import type { EndedDevice } from '@veil/queue/call-state';

import { PUSH_JOB, PUSH_PLATFORMS, pushJobOptions, type PushJob, type PushPlatform } from '@veil/queue/contracts';
import { QueueUnavailableError } from './http/errors.ts';

export type PushQueues = Record<PushPlatform, Queue>;

export interface CallInfo {
  caller_name: string;
  call_id: string;
  call_type: 'audio' | 'video';
}

/** One job per device, carrying everything the worker needs so its hot path never reads Postgres. */
export function buildPushJobs(devices: CalleeDevice[], call: CallInfo, ttlSeconds: number, now = Date.now()): PushJob[] {
  return devices.map((d) => ({
    v: 2,
    kind: 'call',
    platform: d.platform,
    jid: d.jid,
    device_id: d.device_id,
    push_token: d.push_token,
    app_id: d.app_id,
    apns_environment: null,
    caller_name: call.caller_name,
    call_id: call.call_id,
    call_type: call.call_type,
    enqueued_at: now,
    deadline: now + ttlSeconds * 1000,
  }));
}

/**
 * What call-ended will need per device, recorded with the call: the FCM token on Android, the
 * missed-call alert token on iOS (the VoIP token never gets anything but a call).
 */
export function endedDeviceMeta(devices: CalleeDevice[], call: CallInfo): EndedDevice[] {
  return devices.map((d) => ({
    jid: d.jid,
    device_id: d.device_id,
    platform: d.platform,
    push_token: d.platform === 'android' ? d.push_token : (d.alert_token ?? ''),
    alert_token: d.platform === 'ios' ? d.alert_token : null,
    app_id: d.app_id,
    apns_environment: null,
    caller_name: call.caller_name,
    call_type: call.call_type,
  }));
}

/**
 * One add (one job) or addBulk (several) per platform queue, in parallel; resolves only when every
 * job is in Redis. addBulk sends a queue's jobs in one pipelined round trip. If one queue
 * fails the caller answers 503 and Kamailio's retry re-adds the rest; the dedup id keeps the
 * jobs that did land from ringing twice. Any failure here is Redis's: the jobs were validated.
 */
export async function enqueuePushJobs(
  queues: PushQueues,
  jobs: PushJob[],
  opts: { maxAttempts: number; ttlSeconds: number; timeoutMs: number; connected: () => boolean },
): Promise<void> {
  // Not connected: answer now. Handing jobs to BullMQ on a connection that is not ready makes it
  // wait for "ready" and, when Redis never answers, leak an unhandled rejection (seen with BullMQ 5.81).
  if (!opts.connected()) throw new QueueUnavailableError('Redis connection is not ready');
  const adds = PUSH_PLATFORMS.map((platform) => {
    const mine = jobs.filter((j) => j.platform === platform);
    if (mine.length === 0) return Promise.resolve();
    // One job (the usual callee: one device per platform): a plain add is one script call.
    // addBulk builds an ioredis Pipeline, whose constructor copies every BullMQ script onto it,
    // a top self-time entry of the API's profile; for several jobs it is worth it (all or none).
    if (mine.length === 1) {
      const data = mine[0]!;
      return queues[platform].add(PUSH_JOB, data, pushJobOptions(data, opts.maxAttempts, opts.ttlSeconds));
    }
    return queues[platform].addBulk(
      mine.map((data) => ({ name: PUSH_JOB, data, opts: pushJobOptions(data, opts.maxAttempts, opts.ttlSeconds) })),
    );
  });
  let timer: NodeJS.Timeout | undefined;
  // Backstop to the connection's commandTimeout: BullMQ can wait for "ready" before it sends anything.
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new QueueUnavailableError(`Redis did not take the jobs within ${opts.timeoutMs} ms`)), opts.timeoutMs);
  });
  try {
    await Promise.race([Promise.all(adds), deadline]);
  } catch (err) {
    if (err instanceof QueueUnavailableError) throw err;
    throw new QueueUnavailableError(`Redis refused the jobs: ${(err as Error).message}`, { cause: err });
  } finally {
    clearTimeout(timer);
    // A loser of the race must not surface later as an unhandled rejection.
    for (const p of adds) p.catch(() => {});
  }
}
