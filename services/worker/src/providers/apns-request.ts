import { createHash } from 'node:crypto';
import type { PushJob } from '@veil/queue/contracts';

export interface ApnsRequestOptions {
  /** APNS_BUNDLE_ID (or the app's own), the topic of a registration without an app_id. */
  bundleId: string;
  missedCall: { title: string; ttlSeconds: number };
  now: number;
}

export interface ApnsRequest {
  headers: Record<string, string>;
  body: string;
}

/** One collapse id per call (at most 64 bytes): a repeated missed-call alert replaces the first. */
export function missedCallCollapseId(callId: string): string {
  return `missed-${createHash('sha256').update(callId).digest('base64url').slice(0, 32)}`;
}

/**
 * The headers (all but authorization) and body of one APNs request.
 * https://developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns
 * A call is a VoIP push to `<topic>.voip` that expires with the call. A "call ended" job on iOS
 * is a visible missed-call alert to the alert token under the plain bundle topic: never a VoIP
 * push (iOS terminates an app that does not report a VoIP push as a call), and never to the
 * VoIP token (Apple answers DeviceTokenNotForTopic).
 */
export function apnsRequest(push: PushJob, opts: ApnsRequestOptions): ApnsRequest {
  const topic = push.app_id ?? opts.bundleId;
  if (push.kind === 'call') {
    return {
      headers: {
        'apns-push-type': 'voip',
        'apns-topic': `${topic}.voip`,
        'apns-priority': '10',
        // Without an expiration Apple stores the push and may ring after the call is over.
        'apns-expiration': String(Math.floor(push.deadline / 1000)),
      },
      body: JSON.stringify({ aps: {}, caller_name: push.caller_name, call_id: push.call_id, call_type: push.call_type }),
    };
  }
  return {
    headers: {
      'apns-push-type': 'alert',
      'apns-topic': topic,
      'apns-priority': '10',
      'apns-expiration': String(Math.floor(opts.now / 1000) + opts.missedCall.ttlSeconds),
      'apns-collapse-id': missedCallCollapseId(push.call_id),
    },
    body: JSON.stringify({
      aps: { alert: { title: opts.missedCall.title, body: push.caller_name } },
      type: 'missed_call',
      call_id: push.call_id,
      call_type: push.call_type,
    }),
  };
}
