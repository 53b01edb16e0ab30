// The whole call path with nothing stood in but Apple and Google: sipp -> Kamailio -> the real
// api -> Redis -> the real worker -> the APNs/FCM stand-ins. Ports 5080-5089 belong to this file.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startApnsStandIn, writeTestApnsKey, type ApnsStandIn } from '../../../packages/testkit/src/apns-stand-in.ts';
import { startFcmStandIn, type FcmStandIn } from '../../../packages/testkit/src/fcm-stand-in.ts';
import { standInEnv } from '../../../packages/testkit/src/stand-in-env.ts';
import { runCli } from '../../../tools/cli/src/cli.ts';
import { missingSipTools, startKamailio, type Kamailio } from '../../kamailio/test/support/kamailio.ts';
import { runSipp, startSipp } from '../../kamailio/test/support/sipp.ts';
import { createTestDatabase } from '../../../packages/testkit/src/db.ts';
import { dropQueueBase, TEST_REDIS_URL, testQueueName } from '../../../packages/testkit/src/queue.ts';
import { createRegisterClient } from '../../kamailio/test/support/raw-sip.ts';
import { startService, type ServiceProcess } from './support/services.ts';

/** Polls until `get` returns something, and returns it. */
const eventually = <T>(what: string, get: () => T | undefined) =>
  vi.waitFor(() => get() ?? Promise.reject(new Error(`no ${what} yet`)), { timeout: 10_000, interval: 50 });

const PROXY = 5080;
const CALLER = 5081;
const CALLEE_UAS = 5082;
const REGISTRAR_CLIENT = 5083;
const HOLD_PROXY = 5085;
const HOLD_CALLER = 5086;
const HOLD_UAS = 5087;
const HOLD_REGISTRAR_CLIENT = 5088;
const HOLD_MS = 3000;

const JWT_SECRET = 'e2e-jwt-secret-0123456789abcdef-e2e'; // >= 32 bytes, as the config requires
const NOTIFY_SECRET = 'e2e-notify-secret';
const IOS_TOKEN = (n: number) => String(n).padStart(2, '0').repeat(32);

const missing = missingSipTools();
if (missing) console.warn(`Skipping the end-to-end call path tests: ${missing}`);

describe.skipIf(missing !== null)('call path: Kamailio -> api -> worker -> APNs/FCM', () => {
  let dir: string;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  // The suite's own queues in the shared Redis, named through PUSH_QUEUE as an operator would.
  const queueBase = testQueueName('e2e');
  let apns: ApnsStandIn;
  let fcm: FcmStandIn;
  let api: ServiceProcess;
  let worker: ServiceProcess;
  let apiUrl: string;
  let kamailio: Kamailio;
  let holdKamailio: Kamailio;
  let seq = 0;
  const callId = (label: string) => `e2e-${label}-${process.pid}-${++seq}`;

  async function appToken(jid: string): Promise<string> {
    let token = '';
    const code = await runCli(['token', jid], { env: { JWT_SECRET }, out: { write: (t: string) => (token += t) }, err: { write: () => true } });
    expect(code).toBe(0);
    return token.trim();
  }

  async function registerDevice(jid: string, device: { device_id: string; platform: 'ios' | 'android'; push_token: string }) {
    const res = await fetch(`${apiUrl}/api/v1/push/register`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await appToken(jid)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ jid, ...device }),
    });
    expect(res.status, await res.clone().text()).toBe(201);
  }

  /** What the app sees: GET with its own JWT. */
  async function asApp(jid: string, path: string): Promise<{ status: number; body: any }> {
    const res = await fetch(`${apiUrl}${path}`, { headers: { authorization: `Bearer ${await appToken(jid)}` } });
    return { status: res.status, body: await res.json() };
  }

  const apnsPushFor = (cid: string) => eventually(`an APNs push for ${cid}`, () => apns.requests.find((r) => (r.body as { call_id?: string } | null)?.call_id === cid));
  const fcmPushFor = (cid: string) => eventually(`an FCM push for ${cid}`, () => fcm.requests.find((r) => r.body?.message?.data?.call_id === cid));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'veil-e2e-'));
    database = await createTestDatabase('e2e');
    const key = writeTestApnsKey(dir);
    apns = await startApnsStandIn({ key });
    fcm = await startFcmStandIn();
    const env = {
      PORT: '0',
      METRICS_PORT: '0',
      DATABASE_URL: database.url,
      REDIS_URL: TEST_REDIS_URL,
      PUSH_QUEUE: queueBase,
      JWT_SECRET,
      CALL_NOTIFY_SECRET: NOTIFY_SECRET,
      ...standInEnv({ key, apns, fcm, serviceAccountPath: fcm.writeServiceAccount(dir) }),
      LOG_LEVEL: 'info',
    };
    api = await startService('api', env, 'API listening');
    const port = api.lines().find((l) => l.msg === 'API listening')!.port as number;
    apiUrl = `http://127.0.0.1:${port}`;
    worker = await startService('worker', env, 'Worker started');

    const pushUrl = `${apiUrl}/api/v1/push/call-notify`;
    kamailio = await startKamailio({ port: PROXY, pushUrl, pushSecret: NOTIFY_SECRET });
    holdKamailio = await startKamailio({ port: HOLD_PROXY, pushUrl, pushSecret: NOTIFY_SECRET, holdMs: HOLD_MS });

    await registerDevice('bob@example.com', { device_id: '11111111-1111-4111-8111-111111111111', platform: 'ios', push_token: IOS_TOKEN(1) });
    await registerDevice('carol@example.com', { device_id: '22222222-2222-4222-8222-222222222222', platform: 'android', push_token: 'fcm-token-carol:APA91b_e2e' });
    await registerDevice('erin@example.com', { device_id: '33333333-3333-4333-8333-333333333333', platform: 'ios', push_token: IOS_TOKEN(3) });
    await registerDevice('frank@example.com', { device_id: '44444444-4444-4444-8444-444444444444', platform: 'ios', push_token: IOS_TOKEN(4) });
    await registerDevice('gina@example.com', { device_id: '55555555-5555-4555-8555-555555555555', platform: 'android', push_token: 'fcm-token-gina:APA91b_e2e' });
    await registerDevice('hank@example.com', { device_id: '66666666-6666-4666-8666-666666666666', platform: 'ios', push_token: IOS_TOKEN(6) });
  }, 120_000);

  afterAll(async () => {
    await kamailio?.stop();
    await holdKamailio?.stop();
    await worker?.stop();
    await api?.stop();
    await apns?.close();
    await fcm?.close();
    await dropQueueBase(queueBase);
    await database?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('an audio INVITE to an offline iOS user gets 480 and a VoIP push with the Call-ID and decoded display name', async () => {
    const cid = callId('audio');
    const run = await runSipp({
      scenario: 'uac-offline.xml',
      proxyPort: PROXY,
      localPort: CALLER,
      callId: cid,
      keys: { callee: 'bob', from_user: 'alice', display: '"Zoë \\"Z\\" 山田"', media_extra: 'a=sendrecv' },
    });
    expect(run.code, run.output).toBe(0);
    const push = await apnsPushFor(cid);
    expect(push.token).toBe(IOS_TOKEN(1));
    expect(push.headers['apns-push-type']).toBe('voip');
    expect(push.headers['apns-topic']).toBe('com.example.veil.voip');
    expect(push.body).toEqual({ aps: {}, caller_name: 'Zoë "Z" 山田', call_id: cid, call_type: 'audio' });
    expect(kamailio.log()).toMatch(new RegExp(`Push webhook result: 202 callee=bob call_id=${cid}`));
  });

  it('a video INVITE to an offline Android user gets 480 and an FCM data message with call_type video', async () => {
    const cid = callId('video');
    const run = await runSipp({
      scenario: 'uac-offline.xml',
      proxyPort: PROXY,
      localPort: CALLER,
      callId: cid,
      keys: { callee: 'carol', from_user: 'alice', display: '', media_extra: 'm=video 6002 RTP/AVP 96' },
    });
    expect(run.code, run.output).toBe(0);
    const push = await fcmPushFor(cid);
    // No display name: the caller's username stands in.
    expect(push.body?.message?.data).toEqual({ type: 'call', caller_name: 'alice', call_id: cid, call_type: 'video' });
    expect(push.body?.message?.android?.priority).toBe('high');
  });

  it('a callee with no push registration gets 480 and the api answers no_registrations', async () => {
    const cid = callId('nobody');
    const run = await runSipp({ scenario: 'uac-offline.xml', proxyPort: PROXY, localPort: CALLER, callId: cid, keys: { callee: 'nobody', from_user: 'alice', display: '"A"', media_extra: 'a=sendrecv' } });
    expect(run.code, run.output).toBe(0);
    expect(kamailio.log()).toMatch(new RegExp(`Push webhook result: 200 callee=nobody call_id=${cid} .*no_registrations`));
  });

  it('a user registered over SIP is relayed the INVITE and gets no push', async () => {
    const callee = startSipp({ scenario: 'uas-answer.xml', proxyPort: PROXY, localPort: CALLEE_UAS });
    const reg = await runSipp({ scenario: 'register.xml', proxyPort: PROXY, localPort: REGISTRAR_CLIENT, keys: { callee: 'erin', contact_port: String(CALLEE_UAS), expires: '60' } });
    expect(reg.code, reg.output).toBe(0);
    const cid = callId('relay');
    const call = await runSipp({ scenario: 'uac-answered.xml', proxyPort: PROXY, localPort: CALLER, callId: cid, keys: { callee: 'erin', from_user: 'alice' } });
    expect(call.code, call.output).toBe(0);
    expect((await callee.done).code).toBe(0);
    await new Promise((r) => setTimeout(r, 500));
    expect(apns.requests.filter((r) => (r.body as { call_id?: string } | null)?.call_id === cid)).toHaveLength(0);
    expect(kamailio.log()).not.toContain(`call_id=${cid}`);
  });

  it('hold mode: the INVITE reaches the callee after the push woke it and it registered', async () => {
    const callee = startSipp({ scenario: 'uas-answer.xml', proxyPort: HOLD_PROXY, localPort: HOLD_UAS });
    const cid = callId('hold');
    const call = runSipp({ scenario: 'uac-answered.xml', proxyPort: HOLD_PROXY, localPort: HOLD_CALLER, callId: cid, keys: { callee: 'frank', from_user: 'alice' } });
    // The "phone" registers once its push arrived, as the app would.
    await apnsPushFor(cid);
    const reg = await runSipp({ scenario: 'register.xml', proxyPort: HOLD_PROXY, localPort: HOLD_REGISTRAR_CLIENT, keys: { callee: 'frank', contact_port: String(HOLD_UAS), expires: '60' } });
    expect(reg.code, reg.output).toBe(0);
    const run = await call;
    expect(run.code, run.output).toBe(0);
    expect((await callee.done).code).toBe(0);
    // The same REGISTER that released the call proved the wake (frank's only pushed device);
    // the answered call was posted as ended.
    await vi.waitFor(async () => expect((await asApp('frank@example.com', '/api/v1/push/register')).body.registrations[0].last_wake_at).not.toBeNull(), { timeout: 10_000 });
    await vi.waitFor(async () => expect((await asApp('frank@example.com', `/api/v1/push/calls/${encodeURIComponent(cid)}`)).body).toEqual({ call_id: cid, state: 'ended', reason: 'answered' }), { timeout: 10_000 });
    await runSipp({ scenario: 'register.xml', proxyPort: HOLD_PROXY, localPort: HOLD_REGISTRAR_CLIENT, keys: { callee: 'frank', contact_port: String(HOLD_UAS), expires: '0' } });
  });

  it('hold mode: the caller hangs up, the call is ended for the app, and a phone already rung is told', async () => {
    const cid = callId('hold-cancel');
    const run = await runSipp({ scenario: 'uac-cancel.xml', proxyPort: HOLD_PROXY, localPort: HOLD_CALLER, callId: cid, keys: { callee: 'gina', from_user: 'alice' } });
    expect(run.code, run.output).toBe(0);
    await vi.waitFor(async () => expect((await asApp('gina@example.com', `/api/v1/push/calls/${encodeURIComponent(cid)}`)).body).toEqual({ call_id: cid, state: 'ended', reason: 'cancelled' }), { timeout: 10_000 });
    // Either the push was withdrawn before FCM took it (nothing rang), or it rang and is followed
    // by the call_ended message: never a ringing phone left alone.
    const ended = await eventually('the api log line for the call-ended', () => api.lines().find((l) => l.msg === 'Call ended: pending pushes withdrawn' && l.call_id === cid));
    const types = () => fcm.requests.filter((r) => r.body?.message?.data?.call_id === cid).map((r) => r.body?.message?.data?.type);
    if (ended.notified === 1) await vi.waitFor(() => expect(types()).toEqual(['call', 'call_ended']), { timeout: 10_000 });
    else expect(ended).toMatchObject({ withdrawn: 1, notified: 0 });
  });

  it('the REGISTER after a push is credited to the device named by +sip.instance, with its wake time', async () => {
    const cid = callId('wake');
    const run = await runSipp({ scenario: 'uac-offline.xml', proxyPort: PROXY, localPort: CALLER, callId: cid, keys: { callee: 'hank', from_user: 'alice', display: '"Alice"', media_extra: 'a=sendrecv' } });
    expect(run.code, run.output).toBe(0);
    await apnsPushFor(cid);
    const phone = await createRegisterClient(PROXY);
    try {
      // The app registers with its device_id as the SIP instance id, as the guide tells it to.
      const reg = await phone.register({ user: 'hank', instance: '"<urn:uuid:66666666-6666-4666-8666-666666666666>"', userAgent: 'VeilPhone/2.1 (iOS 18)' });
      expect(reg.status).toBe(200);
      await vi.waitFor(async () => {
        const [row] = (await asApp('hank@example.com', '/api/v1/push/register')).body.registrations;
        expect(row).toMatchObject({ device_id: '66666666-6666-4666-8666-666666666666', unanswered_pushes: 0 });
        expect(row.last_push_at).not.toBeNull();
        expect(row.last_wake_at).not.toBeNull();
        expect(row.last_wake_ms).toEqual(expect.any(Number));
      }, { timeout: 10_000 });
      await phone.register({ user: 'hank', expires: 0 });
    } finally {
      await phone.close();
    }
    expect(kamailio.log()).toMatch(/Registered webhook result: 200/);
  });

  it('hold mode: 480 after the hold time when the woken phone never registers', async () => {
    const cid = callId('hold-timeout');
    const run = await runSipp({ scenario: 'uac-offline.xml', proxyPort: HOLD_PROXY, localPort: HOLD_CALLER, callId: cid, keys: { callee: 'bob', from_user: 'alice', display: '"Alice"', media_extra: 'a=sendrecv' } });
    expect(run.code, run.output).toBe(0);
    expect(run.ms).toBeGreaterThanOrEqual(HOLD_MS - 100);
    expect((await apnsPushFor(cid)).body).toMatchObject({ caller_name: 'Alice', call_id: cid });
  });
});
