import type { CalleeDevice } from '@veil/db/registrations';
import type { EndedDevice } from '@veil/queue/call-state';
import type { PushJob } from '@veil/queue/contracts';

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
    apns_environment: d.apns_environment,
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
    apns_environment: d.apns_environment,
    caller_name: call.caller_name,
    call_type: call.call_type,
  }));
}
