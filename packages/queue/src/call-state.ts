import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { jobTarget, type CallEndReason, type PushJob, type PushPlatform } from './contracts.ts';
import { BEGIN, CONFIRM, CREDIT, END, SETTLE, START, TAKE_DUE, UNCREDIT } from './call-state-scripts.ts';

/**
 * Per-call and per-user push state in Redis, shared by every api and worker process: which
 * devices a call pushed and how far each push got, whether the callee's call ended (and why),
 * and which accepted pushes still wait for the REGISTER that proves the phone woke.
 * Everything expires on its own (a few TTLs); nothing here is needed once a call is over.
 */

/** What a "call ended" message to one device needs, recorded when the call push is queued. */
export interface DeviceMeta {
  platform: PushPlatform;
  /** The FCM token (Android) or the missed-call alert token (iOS, null without one). */
  push_token: string;
  alert_token: string | null;
  app_id: string | null;
  apns_environment: 'sandbox' | 'production' | null;
  caller_name: string;
  call_type: 'audio' | 'video';
}

export interface EndedDevice extends DeviceMeta {
  jid: string;
  device_id: string;
}

/** Where call-ended left a device whose "call ended" message the worker must queue. */
export type NotifyVerdict = { action: 'notify'; reason: CallEndReason; device: EndedDevice };
export type StartVerdict = { action: 'go' } | { action: 'withdrawn' } | { action: 'done' } | NotifyVerdict;
export type SettleVerdict = { action: 'ok' } | { action: 'withdrawn' } | NotifyVerdict;

/** A recent accepted push of one of a user's devices, waiting for its wake. */
export interface PendingWake {
  jid: string;
  device_id: string;
  platform: PushPlatform;
  /** Epoch ms when Apple or Google accepted it. */
  accepted_at: number;
  /** The raw stored value: crediting compares it, so two api processes never credit one push twice. */
  stamp: string;
  /** Its wake was already credited (the entry stays until the window closes: it still was pushed). */
  credited: boolean;
}

type Connection = Redis | Cluster;
type Scripted = Connection & Record<string, (...args: (string | number)[]) => Promise<unknown>>;

const SCRIPTS = {
  veilCallBegin: [1, BEGIN],
  veilCallEnd: [1, END],
  veilCallConfirm: [1, CONFIRM],
  veilPushStart: [2, START],
  veilPushSettle: [3, SETTLE],
  veilWakeCredit: [2, CREDIT],
  veilWakeUncredit: [2, UNCREDIT],
  veilWakeTakeDue: [1, TAKE_DUE],
} as const;

const sha = (s: string) => createHash('sha256').update(s).digest('base64url');
const device = (jid: string, deviceId: string) => `${jid} ${deviceId}`;
const usernameOf = (jid: string) => jid.slice(0, jid.indexOf('@'));

export interface CallState {
  /**
   * call-notify: record the devices about to be pushed; returns those to push (none when this
   * callee's call already ended).
   */
  begin<D extends EndedDevice>(callId: string, username: string, devices: D[]): Promise<D[]>;
  /** call-ended: withdraw what is not yet accepted, and return the devices to message now. */
  end(callId: string, username: string, domain: string | null, reason: CallEndReason): Promise<{ withdrawn: number; notified: number; devices: EndedDevice[] }>;
  /** The "call ended" messages of these devices are queued: a repeat of call-ended must not hand them out again. */
  confirmNotified(callId: string, devices: { jid: string; device_id: string }[]): Promise<void>;
  /** What one user may see of a call: null unless the call pushed one of the jid's devices. */
  view(callId: string, jid: string): Promise<null | { state: 'ringing' } | { state: 'ended'; reason: CallEndReason }>;
  /** Worker, before sending a call push. */
  startPush(callId: string, jid: string, deviceId: string, platform: PushPlatform, at: number): Promise<StartVerdict>;
  /** Worker, after a call push's attempt. */
  settlePush(callId: string, jid: string, deviceId: string, outcome: 'accepted' | 'retry' | 'failed', platform: PushPlatform, at: number): Promise<SettleVerdict>;
  /** registered: the user's accepted pushes still inside the wake window. */
  pendingWakes(username: string, now: number): Promise<PendingWake[]>;
  /** registered: take the wake of one push; false when another process already took it. */
  creditWake(username: string, wake: PendingWake): Promise<boolean>;
  /** Undo creditWake when the wake could not be stored. */
  returnWake(username: string, wake: PendingWake): Promise<void>;
  /** The pushes whose wake window closed without a credited wake (each returned once). */
  takeUnanswered(now: number, limit: number): Promise<PendingWake[]>;
  /** Put back pushes taken by takeUnanswered that could not be counted (Postgres down). */
  returnUnanswered(wakes: PendingWake[]): Promise<void>;
}

/** The hash tag of a deployment's call state keys (one Cluster slot for all of them). */
export function callStateTag(base: string): string {
  return `{${base}:calls}`;
}

/**
 * `base` is the queue base name (PUSH_QUEUE): one hash tag for all of a deployment's call state,
 * so each script's keys share a Redis Cluster slot, and tests with their own base never meet.
 */
export function createCallState(redis: Connection, opts: { base: string; ttlSeconds: number }): CallState {
  for (const [name, [numberOfKeys, lua]] of Object.entries(SCRIPTS)) {
    if (!(name in redis)) redis.defineCommand(name, { numberOfKeys, lua });
  }
  const r = redis as Scripted;
  const tag = callStateTag(opts.base);
  const ttlMs = opts.ttlSeconds * 1000;
  // Kept for two TTLs: "ended" must outlive the last retransmitted call-notify of the call.
  const keepMs = 2 * ttlMs;
  const callKey = (callId: string) => `${tag}:call:${sha(callId)}`;
  const pushedKey = (username: string) => `${tag}:pushed:${sha(username)}`;
  const dueKey = `${tag}:wake-due`;

  const parseWake = (field: string, value: string): PendingWake => {
    const [jid = '', deviceId = ''] = field.split(' ');
    const [at = '0', platform = 'ios', mark] = value.split(' ');
    return { jid, device_id: deviceId, platform: platform as PushPlatform, accepted_at: Number(at), stamp: `${at} ${platform}`, credited: mark === 'credited' };
  };
  const notifyVerdict = (jid: string, deviceId: string, reason: string | undefined, meta: string | undefined): NotifyVerdict | { action: 'withdrawn' } => {
    // Meta is recorded with every device at call-notify; without it (expired) there is nothing to send.
    if (!meta || !reason) return { action: 'withdrawn' };
    return { action: 'notify', reason: reason as CallEndReason, device: { jid, device_id: deviceId, ...(JSON.parse(meta) as DeviceMeta) } };
  };

  return {
    async begin(callId, username, devices) {
      const args: string[] = [];
      for (const d of devices) {
        const { jid, device_id, platform, push_token, alert_token, app_id, apns_environment, caller_name, call_type } = d;
        const meta: DeviceMeta = { platform, push_token, alert_token, app_id, apns_environment, caller_name, call_type };
        args.push(device(jid, device_id), JSON.stringify(meta));
      }
      const live = new Set((await r.veilCallBegin!(callKey(callId), username, keepMs, ...args)) as string[]);
      return devices.filter((d) => live.has(device(d.jid, d.device_id)));
    },

    async end(callId, username, domain, reason) {
      const [withdrawn, notified, ...rest] = (await r.veilCallEnd!(callKey(callId), username, domain ?? '', reason, keepMs)) as (string | number)[];
      const devices: EndedDevice[] = [];
      for (let i = 0; i + 1 < rest.length; i += 2) {
        const [jid = '', deviceId = ''] = String(rest[i]).split(' ');
        devices.push({ jid, device_id: deviceId, ...(JSON.parse(String(rest[i + 1])) as DeviceMeta) });
      }
      return { withdrawn: Number(withdrawn), notified: Number(notified), devices };
    },

    async confirmNotified(callId, devices) {
      if (devices.length === 0) return;
      await r.veilCallConfirm!(callKey(callId), ...devices.map((d) => device(d.jid, d.device_id)));
    },

    async view(callId, jid) {
      const all = await redis.hgetall(callKey(callId));
      const mine = Object.keys(all).some((f) => f.startsWith(`s:${jid} `));
      if (!mine) return null;
      const reason = all[`e:${usernameOf(jid)}`] ?? all[`e:${jid}`];
      return reason ? { state: 'ended', reason: reason as CallEndReason } : { state: 'ringing' };
    },

    async startPush(callId, jid, deviceId, platform, at) {
      const [action, reason, meta] = (await r.veilPushStart!(callKey(callId), pushedKey(usernameOf(jid)), device(jid, deviceId), at, ttlMs, platform)) as string[];
      if (action === 'notify') return notifyVerdict(jid, deviceId, reason, meta);
      return { action: action as 'go' | 'withdrawn' | 'done' };
    },

    async settlePush(callId, jid, deviceId, outcome, platform, at) {
      const username = usernameOf(jid);
      const [action, reason, meta] = (await r.veilPushSettle!(callKey(callId), pushedKey(username), dueKey, device(jid, deviceId), outcome, at, ttlMs, platform)) as string[];
      if (action === 'notify') return notifyVerdict(jid, deviceId, reason, meta);
      return { action: action === 'withdrawn' ? 'withdrawn' : 'ok' };
    },

    async pendingWakes(username, now) {
      const all = await redis.hgetall(pushedKey(username));
      return Object.entries(all)
        .map(([field, stamp]) => parseWake(field, stamp))
        .filter((w) => w.accepted_at + ttlMs >= now);
    },

    async creditWake(username, wake) {
      return (await r.veilWakeCredit!(pushedKey(username), dueKey, device(wake.jid, wake.device_id), wake.stamp)) === 1;
    },

    async returnWake(username, wake) {
      await r.veilWakeUncredit!(pushedKey(username), dueKey, device(wake.jid, wake.device_id), wake.stamp, wake.accepted_at + ttlMs, ttlMs);
    },

    async takeUnanswered(now, limit) {
      const members = (await r.veilWakeTakeDue!(dueKey, now, limit)) as string[];
      return members.map((m) => {
        const [jid = '', deviceId = '', at = '0', platform = 'ios'] = m.split(' ');
        return parseWake(`${jid} ${deviceId}`, `${at} ${platform}`);
      });
    },

    async returnUnanswered(wakes) {
      if (wakes.length === 0) return;
      const args: (string | number)[] = [];
      for (const w of wakes) args.push(w.accepted_at + ttlMs, `${w.jid} ${w.device_id} ${w.stamp}`);
      await redis.zadd(dueKey, ...args);
    },
  };
}

/** One "call ended" message per device that call-ended (or the worker) found already rung. */
export function buildCallEndedJobs(devices: EndedDevice[], callId: string, reason: CallEndReason, ttlSeconds: number, now = Date.now()): PushJob[] {
  return devices.map((d) => ({
    v: 2,
    kind: 'call_ended',
    reason,
    ...jobTarget(d),
    caller_name: d.caller_name,
    call_id: callId,
    call_type: d.call_type,
    enqueued_at: now,
    deadline: now + ttlSeconds * 1000,
  }));
}

/**
 * What call-ended will need per device, recorded with the call: the FCM token on Android, the
 * missed-call alert token on iOS (the VoIP token never gets anything but a call).
 */
export function endedDeviceMeta(
  devices: { jid: string; device_id: string; platform: PushPlatform; push_token: string; alert_token: string | null; app_id: string | null; apns_environment: 'sandbox' | 'production' | null }[],
  call: { caller_name: string; call_type: 'audio' | 'video' },
): EndedDevice[] {
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
