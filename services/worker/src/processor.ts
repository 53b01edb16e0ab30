import { UnrecoverableError, type Job } from 'bullmq';
import type { Db } from '@veil/db/client';
import { clearAlertTokenIfToken, deleteRegistrationIfToken } from '@veil/db/registrations';
import type { CallState, EndedDevice, NotifyVerdict } from '@veil/queue/call-state';
import type { Logger } from '@veil/log/logger';
import { tokenHash } from '@veil/log/token-hash';
import { pushJobSchema, type CallEndReason, type PushJob, type PushPlatform } from '@veil/queue/contracts';
import type { WorkerMetrics, PushOutcome } from './metrics.ts';
import type { PushAcceptedRecorder } from './push-accepted-recorder.ts';
import type { ProviderSet } from './providers/provider-set.ts';
import { PermanentError, RetryableError } from './providers/types.ts';

export interface ProcessorDeps {
  /** Picks each job's credentials (its app's, else the default); "not configured" when none load. */
  providers: ProviderSet;
  db: Db;
  log: Logger;
  metrics: WorkerMetrics;
  /** Per-call push state (withdrawal, "call ended" after acceptance, pending wakes). */
  callState: CallState;
  /** Queues the "call ended" message of a device whose push was accepted after the call ended. */
  queueCallEnded(device: EndedDevice, callId: string, reason: CallEndReason): Promise<void>;
  /** last_push_at of accepted call pushes, written in batches off the hot path. */
  pushesAccepted: PushAcceptedRecorder;
  now?: () => number;
}

const PROVIDER_NAME: Record<PushPlatform, 'APNs' | 'FCM'> = { ios: 'APNs', android: 'FCM' };

/** What one job came to; BullMQ stores it as the job's return value. */
export type ProcessResult = Exclude<PushOutcome, 'retryable_error' | 'permanent_error'> | 'duplicate';

/**
 * One job = one push to one device: check it is still worth sending, send it, and act on the
 * answer per the provider's outcome table (providers/*-outcomes.ts). Retryable failures are rethrown for BullMQ (the backoff
 * strategy decides whether and when); permanent ones become UnrecoverableError.
 */
export function createPushProcessor(deps: ProcessorDeps) {
  const now = deps.now ?? Date.now;

  return async function processPushJob(job: Job): Promise<ProcessResult> {
    const parsed = pushJobSchema.safeParse(job.data);
    if (!parsed.success) {
      deps.log.error({ jobId: job.id, issues: parsed.error.issues.map((i) => i.path.join('.')) }, 'Invalid push job dropped');
      throw new UnrecoverableError('invalid push job');
    }
    const push: PushJob = parsed.data;
    const platform = push.platform;
    const name = PROVIDER_NAME[platform];
    // app_id is a metrics label bounded by the apps the worker knows: any other is "default".
    const { app, provider } = deps.providers.forJob(push);
    // The job's context goes on each line as it is written: a pino child per push (its bindings
    // serialised up front) cost more than the one line most pushes write.
    const context = {
      jobId: job.id,
      platform,
      call_id: push.call_id,
      device_id: push.device_id,
      token_hash: tokenHash(push.push_token),
      attempt: job.attemptsMade + 1,
    };
    const log = {
      info: (msg: string, extra?: object) => deps.log.info(extra ? { ...context, ...extra } : context, msg),
      warn: (msg: string, extra?: object) => deps.log.warn(extra ? { ...context, ...extra } : context, msg),
      error: (msg: string, extra?: object) => deps.log.error(extra ? { ...context, ...extra } : context, msg),
    };
    const count = (outcome: PushOutcome, observeLatency: boolean) => {
      // "Call ended" messages are counted apart: the call push figures (delivery ratio, latency,
      // the unanswered share) stay about calls.
      if (push.kind === 'call_ended') {
        deps.metrics.callEndedMessages.inc({ platform, outcome, app_id: app });
        return;
      }
      deps.metrics.pushes.inc({ platform, outcome, app_id: app });
      if (observeLatency) deps.metrics.latency.observe({ platform, outcome }, Math.max(0, now() - push.enqueued_at) / 1000);
    };

    const isCall = push.kind === 'call';
    const settle = (outcome: 'accepted' | 'retry' | 'failed') =>
      deps.callState.settlePush(push.call_id, push.jid, push.device_id, outcome, platform, now());

    // A phone must not ring for a call that is over (a backlog, a recovered stalled job).
    if (now() >= push.deadline) {
      // Never sent: call-ended must not count it as withdrawn later, nor wait for it.
      if (isCall) await settle('failed');
      count('expired', false);
      deps.metrics.expired.inc({ platform });
      log.warn('Push dropped: the call is older than PUSH_TTL_SECONDS', { late_ms: now() - push.deadline });
      return 'expired';
    }

    if (!provider) {
      if (isCall) await settle('failed');
      count('not_configured', false);
      log.error(`${name} not configured`, { app_id: app });
      return 'not_configured';
    }

    /** call-ended counted this device as notified: its "call ended" message goes now, whatever came of the push. */
    const notify = async (verdict: NotifyVerdict) => {
      await deps.queueCallEnded(verdict.device, push.call_id, verdict.reason);
      log.info('Call ended during the push: call-ended message queued', { reason: verdict.reason });
    };
    if (isCall) {
      // Atomic with call-ended: either this push is withdrawn now, or call-ended sees it in flight.
      const verdict = await deps.callState.startPush(push.call_id, push.jid, push.device_id, platform, now());
      if (verdict.action === 'withdrawn') {
        count('withdrawn', false);
        log.info('Push withdrawn: the call ended before it was sent');
        return 'withdrawn';
      }
      if (verdict.action === 'done') {
        log.info('Push already accepted for this call; not sent again');
        return 'duplicate';
      }
      if (verdict.action === 'notify') {
        // An earlier run died with the push in flight after call-ended counted it: the outcome is
        // unknown, so the phone is told the call ended rather than possibly ringing on.
        await notify(verdict);
        return 'withdrawn';
      }
    }

    let result;
    try {
      result = await provider.send(push);
    } catch (err) {
      if (err instanceof RetryableError) {
        count('retryable_error', true);
        log.warn(`${name} push failed, retryable: ${err.message}`, { reason: err.message, retry_after_ms: err.retryAfterMs });
        const settled = isCall ? await settle('retry') : null;
        if (settled?.action === 'notify') await notify(settled);
        if (settled && settled.action !== 'ok') {
          count('withdrawn', false);
          log.info('Push withdrawn: the call ended before it was sent');
          return 'withdrawn';
        }
        throw err;
      }
      count('permanent_error', true);
      const reason = err instanceof PermanentError ? err.message : `unexpected error: ${(err as Error).message}`;
      log.error(`${name} push failed: ${reason}`, { reason });
      const settled = isCall ? await settle('failed') : null;
      if (settled?.action === 'notify') await notify(settled);
      throw new UnrecoverableError(reason);
    }

    if (result === 'delivered') {
      count('delivered', true);
      if (!isCall) {
        log.info(platform === 'ios' ? 'Missed-call alert delivered' : 'Call ended message delivered', { reason: push.reason });
        return 'delivered';
      }
      log.info(`${name} push delivered`);
      const acceptedAt = now();
      const settled = await settle('accepted');
      if (settled.action === 'notify') await notify(settled);
      // For GET /push/register and the operator; written in a batch with other pushes' (a slow
      // Postgres must not hold this job's concurrency slot: the push is delivered).
      deps.pushesAccepted.record({ jid: push.jid, device_id: push.device_id, accepted_at: acceptedAt });
      return 'delivered';
    }

    count('token_invalid', true);
    const reason = result.tokenInvalid;
    if (platform === 'ios') log.warn(`APNs rejected push: ${reason}`, { reason, kind: push.kind });
    else log.warn('FCM token unregistered', { reason, kind: push.kind });
    if (isCall) {
      const settled = await settle('failed');
      if (settled.action === 'notify') await notify(settled);
    }
    try {
      if (!isCall && platform === 'ios') {
        // The missed-call alert token is not the VoIP token: only it goes, the registration stays.
        const updatedBefore = result.unregisteredAt !== undefined ? { updatedBefore: new Date(result.unregisteredAt) } : {};
        const cleared = await clearAlertTokenIfToken(deps.db, push.jid, push.device_id, push.push_token, updatedBefore);
        log.info(cleared ? 'Alert token cleared' : 'Alert token already replaced or gone; nothing cleared', { cleared });
        return 'token_invalid';
      }
      // Only if the row still holds this token: a device that re-registered meanwhile keeps its new
      // one; and, when APNs says since when the token is invalid, only if not registered again since.
      const updatedBefore = result.unregisteredAt !== undefined ? { updatedBefore: new Date(result.unregisteredAt) } : {};
      const purged = await deleteRegistrationIfToken(deps.db, push.jid, push.device_id, push.push_token, updatedBefore);
      if (purged) deps.metrics.purges.inc({ platform, app_id: app });
      log.info(purged ? 'Registration purged' : 'Registration already re-registered or gone; nothing purged', { purged });
    } catch (err) {
      // Re-sending cannot help; the next call to this device gets the same answer and purges then.
      log.error('Purging the rejected registration failed', { err: (err as Error).message });
    }
    return 'token_invalid';
  };
}
