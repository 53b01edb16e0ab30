import type { CalleeDevice } from '@veil/db/registrations';
import { jobTarget, type PushJob } from '@veil/queue/contracts';

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
    ...jobTarget(d),
    caller_name: call.caller_name,
    call_id: call.call_id,
    call_type: call.call_type,
    enqueued_at: now,
    deadline: now + ttlSeconds * 1000,
  }));
}
