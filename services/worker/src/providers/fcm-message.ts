import type { PushJob } from '@veil/queue/contracts';

/** Whole seconds left before the call's deadline, at least 1 (FCM drops the message after it). */
export function fcmTtlSeconds(deadline: number, now: number): number {
  return Math.max(1, Math.floor((deadline - now) / 1000));
}

/**
 * The FCM v1 message for one job: data only (no `notification` block: the app decides what to
 * show), high priority so a dozing phone wakes. A call lives until its deadline; "call ended"
 * (which dismisses the ringing screen) keeps PUSH_TTL_SECONDS.
 * https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages
 */
export function fcmMessage(push: PushJob, opts: { ttlSeconds: number; now: number }): object {
  const data =
    push.kind === 'call'
      ? { type: 'call', caller_name: push.caller_name, call_id: push.call_id, call_type: push.call_type }
      : { type: 'call_ended', call_id: push.call_id, reason: push.reason };
  const ttl = push.kind === 'call' ? fcmTtlSeconds(push.deadline, opts.now) : opts.ttlSeconds;
  return { message: { token: push.push_token, data, android: { priority: 'high', ttl: `${ttl}s` } } };
}
