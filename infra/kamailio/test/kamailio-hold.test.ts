// Hold mode (-A WITH_PUSH_HOLD): after a 202 the INVITE rings (180) while the phone wakes and is
// relayed when a device registers; anything but 202 is a 480 at once. A held call that ends posts
// call-ended. Free ports only; every sipp is killed after each test, also a failed one's.
import { describe, expect, it, vi } from 'vitest';
import { freePort } from '../../../packages/testkit/src/ports.ts';
import { missingSipTools, type Kamailio } from './support/kamailio.ts';
import { type RegisterClient, type RegisterOptions } from './support/raw-sip.ts';
import { runSipp, startSipp } from './support/sipp.ts';
import { kamailioSuite } from './support/suite.ts';
import type { WebhookRecorder } from './support/webhook.ts';

const HOLD_MS = 2000;
const SECRET = 'kamailio-hold-secret';

const missing = missingSipTools();
if (missing) console.warn(`Skipping Kamailio hold-mode tests: ${missing}`);

describe.skipIf(missing !== null)('kamailio hold mode', () => {
  let webhook: WebhookRecorder;
  let kamailio: Kamailio;
  let phone: RegisterClient;
  let seq = 0;
  const callId = (label: string) => `hold-${label}-${process.pid}-${++seq}`;

  kamailioSuite({ kamailio: { pushSecret: SECRET, pushTimeoutSeconds: 1, holdMs: HOLD_MS }, phone: true }, (s) => {
    ({ webhook, kamailio, phone } = s);
  });

  const call = async (scenario: string, cid: string, callee: string) =>
    runSipp({
      scenario,
      proxyPort: kamailio.port,
      localPort: await freePort(),
      callId: cid,
      keys: { callee, from_user: 'alice', display: '"Alice"', media_extra: 'a=sendrecv' },
    });

  /** A device's UAS sipp on a free port, and that port for its REGISTER's Contact. */
  async function device(scenario: string, calls = 1) {
    const port = await freePort();
    return { port, ...startSipp({ scenario, proxyPort: kamailio.port, localPort: port, calls }) };
  }

  async function register(opts: RegisterOptions) {
    expect((await phone.register(opts)).status).toBe(200);
  }

  const heldLine = (cid: string) => `Push hold: holding call_id=${cid} `;
  const waitUntilHeld = (cid: string) => vi.waitFor(() => expect(kamailio.log()).toContain(heldLine(cid)), { timeout: 5000 });
  const endedFor = (cid: string) => webhook.postsTo('call-ended', { call_id: cid });
  const waitForEnded = (cid: string) => vi.waitFor(() => expect(endedFor(cid)).toHaveLength(1), { timeout: 5000 });

  it('202: the caller hears 180 at once; the REGISTER relays the call and posts registered; the answer posts call-ended answered', async () => {
    const phoneUas = await device('uas-answer-at-once.xml');
    const cid = callId('wake');
    // uac-ringback-answered requires a 180, and this device sends none: it is Kamailio's.
    const caller = call('uac-ringback-answered.xml', cid, 'frank');

    await waitUntilHeld(cid);
    expect(webhook.postsFor(cid)).toHaveLength(1);
    await register({ user: 'frank', contactPort: phoneUas.port, instance: '"<urn:uuid:00000000-0000-4000-8000-00000000f4a1>"', userAgent: 'VeilPhone/2.1' });

    const run = await caller;
    expect(run.code, run.output).toBe(0);
    expect((await phoneUas.done).code).toBe(0);
    expect(run.ms).toBeLessThan(HOLD_MS + 1000);

    await waitForEnded(cid);
    const [ended] = endedFor(cid);
    expect(ended!.url).toBe('/api/v1/push/call-ended');
    expect(ended!.headers.authorization).toBe(`Bearer ${SECRET}`);
    expect(ended!.body).toEqual({ callee_username: 'frank', call_id: cid, reason: 'answered' });
    await vi.waitFor(() => expect(webhook.postsTo('registered', { username: 'frank' })).toHaveLength(1), { timeout: 5000 });
    expect(webhook.postsTo('registered', { username: 'frank' })[0]!.body).toEqual({
      username: 'frank',
      domain: '127.0.0.1',
      instance: '<urn:uuid:00000000-0000-4000-8000-00000000f4a1>',
      user_agent: 'VeilPhone/2.1',
    });
  });

  it('200 no_registrations: 480 at once, nothing held, no call-ended', async () => {
    webhook.answer('call-notify', 200, { status: 'no_registrations', devices: 0 });
    const cid = callId('noreg');
    const run = await call('uac-offline.xml', cid, 'nadia');
    expect(run.code, run.output).toBe(0);
    expect(run.ms).toBeLessThan(HOLD_MS);
    expect(kamailio.log()).toContain(`Push hold: not holding call_id=${cid} for nadia (webhook result 200), 480`);
    expect(kamailio.log()).not.toContain(heldLine(cid));

    // call-ended is posted in order of ending: once a later cancelled call's is in, this one's
    // would have been too.
    webhook.reset();
    const control = callId('noreg-control');
    expect((await call('uac-cancel.xml', control, 'nadia-control')).code).toBe(0);
    await waitForEnded(control);
    expect(endedFor(cid)).toHaveLength(0);
  });

  it('an api that is down or does not answer: 480 without holding', async () => {
    await webhook.down();
    try {
      const down = callId('down');
      const run = await call('uac-offline.xml', down, 'oscar');
      expect(run.code, run.output).toBe(0);
      expect(run.ms).toBeLessThan(HOLD_MS);
      expect(kamailio.log()).toMatch(new RegExp(`Push hold: not holding call_id=${down} for oscar \\(webhook result curl error 7\\), 480`));
    } finally {
      await webhook.up();
    }

    webhook.setMode({ kind: 'hang' }, 'call-notify');
    const hung = callId('hung');
    const run = await call('uac-offline.xml', hung, 'oscar');
    expect(run.code, run.output).toBe(0);
    expect(kamailio.log()).toContain(`Push webhook result: curl error 28 callee=oscar call_id=${hung}`);
    expect(kamailio.log()).not.toContain(heldLine(hung));
  });

  it('a CANCEL of a held INVITE gets 200 and the INVITE 487, and posts call-ended cancelled', async () => {
    const cid = callId('cancel');
    const run = await call('uac-cancel.xml', cid, 'ivan');
    expect(run.code, run.output).toBe(0);
    expect(run.ms).toBeLessThan(HOLD_MS);
    await waitForEnded(cid);
    expect(endedFor(cid)[0]!.body).toEqual({ callee_username: 'ivan', call_id: cid, reason: 'cancelled' });
    await vi.waitFor(() => expect(kamailio.log()).toContain(`Call-ended webhook result: 200 callee=ivan call_id=${cid} reason=cancelled`));
  });

  it('a call-ended the api answers 503 (a Redis failover) is posted again until it is taken', async () => {
    webhook.answer('call-ended', 503, { error: { code: 'queue_unavailable' } });
    const cid = callId('ended-retry');
    expect((await call('uac-cancel.xml', cid, 'ines')).code).toBe(0);
    await vi.waitFor(() => expect(webhook.postsTo('call-ended', { call_id: cid }).length).toBeGreaterThanOrEqual(2), { timeout: 10_000 });
    webhook.answer('call-ended', 200, { status: 'ended', withdrawn: 1, notified: 0 });
    await vi.waitFor(() => expect(kamailio.log()).toContain(`Call-ended webhook result: 200 callee=ines call_id=${cid} reason=cancelled (retried)`), { timeout: 10_000 });
    const tries = webhook.postsTo('call-ended', { call_id: cid });
    for (const t of tries) expect(t.body).toEqual({ callee_username: 'ines', call_id: cid, reason: 'cancelled' });
  });

  it('nobody registering gets 480 after the hold time, not before, and posts call-ended timeout', async () => {
    const cid = callId('timeout');
    const run = await call('uac-offline.xml', cid, 'henry');
    expect(run.code, run.output).toBe(0);
    expect(run.ms).toBeGreaterThanOrEqual(HOLD_MS - 100);
    expect(run.ms).toBeLessThan(HOLD_MS + 3000);
    expect(webhook.postsFor(cid)).toHaveLength(1);
    await waitForEnded(cid);
    expect(endedFor(cid)[0]!.body).toEqual({ callee_username: 'henry', call_id: cid, reason: 'timeout' });
  });

  it('a released call the device declines with 486 posts call-ended declined', async () => {
    const busy = await device('uas-busy.xml');
    const cid = callId('busy');
    const caller = call('uac-declined.xml', cid, 'bella');
    await waitUntilHeld(cid);
    await register({ user: 'bella', contactPort: busy.port });

    const run = await caller;
    expect(run.code, run.output).toBe(0);
    expect((await busy.done).code).toBe(0);
    await waitForEnded(cid);
    expect(endedFor(cid)[0]!.body).toEqual({ callee_username: 'bella', call_id: cid, reason: 'declined' });
  });

  it('a released call the caller hangs up while the device rings posts call-ended cancelled', async () => {
    const ringing = await device('uas-ring-cancelled.xml');
    const cid = callId('hangup');
    const caller = call('uac-cancel-after-ring.xml', cid, 'carl');
    await waitUntilHeld(cid);
    await register({ user: 'carl', contactPort: ringing.port });

    const run = await caller;
    expect(run.code, run.output).toBe(0);
    expect((await ringing.done).code).toBe(0);
    await waitForEnded(cid);
    expect(endedFor(cid)[0]!.body).toEqual({ callee_username: 'carl', call_id: cid, reason: 'cancelled' });
  });

  it('two devices registering for one held call both ring; the one that answers wins, the other is cancelled, one call-ended', async () => {
    const first = await device('uas-ring-cancelled.xml');
    const second = await device('uas-answer.xml');
    const cid = callId('two');
    const caller = call('uac-ringback-answered.xml', cid, 'tess');

    await waitUntilHeld(cid);
    await register({ user: 'tess', contactPort: first.port, instance: '"<urn:uuid:00000000-0000-4000-8000-0000000000a1>"' });
    await vi.waitFor(() => expect(kamailio.log()).toContain(`releasing tess::${cid}`), { timeout: 5000 });
    await register({ user: 'tess', contactPort: second.port, instance: '"<urn:uuid:00000000-0000-4000-8000-0000000000b2>"' });

    const run = await caller;
    expect(run.code, run.output).toBe(0);
    const [a, b] = await Promise.all([first.done, second.done]);
    expect(a.code, a.output).toBe(0);
    expect(b.code, b.output).toBe(0);
    await waitForEnded(cid);
    expect(endedFor(cid)[0]!.body).toMatchObject({ reason: 'answered' });
    // Both REGISTERs came from a pushed user: both are reported, one per device.
    await vi.waitFor(() => expect(webhook.postsTo('registered', { username: 'tess' })).toHaveLength(2), { timeout: 5000 });
    expect(endedFor(cid)).toHaveLength(1);
  });

  it('two calls held for the same user are both relayed by one REGISTER, and each posts call-ended', async () => {
    const phoneUas = await device('uas-answer.xml', 2);
    const [cidA, cidB] = [callId('twin-a'), callId('twin-b')];
    const first = call('uac-answered.xml', cidA, 'gina');
    const second = call('uac-answered.xml', cidB, 'gina');

    await waitUntilHeld(cidA);
    await waitUntilHeld(cidB);
    await register({ user: 'gina', contactPort: phoneUas.port });

    const [a, b] = await Promise.all([first, second]);
    expect(a.code, a.output).toBe(0);
    expect(b.code, b.output).toBe(0);
    expect((await phoneUas.done).code).toBe(0);
    await waitForEnded(cidA);
    await waitForEnded(cidB);
  });

  it('a released call that rings past the hold time is answered, not cut off by the hold timer', async () => {
    const phoneUas = await device('uas-answer-late.xml');
    const cid = callId('late');
    const caller = call('uac-answered.xml', cid, 'jane');
    await waitUntilHeld(cid);
    await register({ user: 'jane', contactPort: phoneUas.port });
    const run = await caller;
    expect(run.code, run.output).toBe(0);
    expect(run.ms).toBeGreaterThan(HOLD_MS);
    expect((await phoneUas.done).code).toBe(0);
    await waitForEnded(cid);
    expect(endedFor(cid)[0]!.body).toMatchObject({ reason: 'answered' });
  });

  it('a de-registration does not end a held call early', async () => {
    const cid = callId('dereg');
    const caller = call('uac-offline.xml', cid, 'kim');
    await waitUntilHeld(cid);
    await register({ user: 'kim', expires: 0 });
    const run = await caller;
    expect(run.code, run.output).toBe(0);
    expect(run.ms).toBeGreaterThanOrEqual(HOLD_MS - 100);
  });
});
