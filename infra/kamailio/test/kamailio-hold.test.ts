// Hold mode (-A WITH_PUSH_HOLD): the INVITE waits for the woken callee to register.
// Ports 5075-5079 on 127.0.0.1 belong to this file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missingSipTools, startKamailio, type Kamailio } from './support/kamailio.ts';
import { runSipp, startSipp } from './support/sipp.ts';
import { startWebhookRecorder, type WebhookRecorder } from './support/webhook.ts';

const PROXY = 5075;
const CALLER = 5076;
const CALLEE_UAS = 5077;
const REGISTRAR_CLIENT = 5078;
const SECOND_CALLER = 5079;
const HOLD_MS = 1500;

const missing = missingSipTools();
if (missing) console.warn(`Skipping Kamailio hold-mode tests: ${missing}`);

describe.skipIf(missing !== null)('kamailio hold mode', () => {
  let webhook: WebhookRecorder;
  let kamailio: Kamailio;
  let seq = 0;
  const callId = (label: string) => `hold-${label}-${process.pid}-${++seq}`;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  beforeAll(async () => {
    webhook = await startWebhookRecorder();
    kamailio = await startKamailio({ port: PROXY, pushUrl: webhook.url, pushTimeoutSeconds: 1, holdMs: HOLD_MS });
  });

  afterAll(async () => {
    await kamailio?.stop();
    await webhook?.stop();
  });

  const register = (user: string, expires: string) =>
    runSipp({ scenario: 'register.xml', proxyPort: PROXY, localPort: REGISTRAR_CLIENT, keys: { callee: user, contact_port: String(CALLEE_UAS), expires } });

  it('a held INVITE reaches the callee once it registers, after the push went out', async () => {
    const callee = startSipp({ scenario: 'uas-answer.xml', proxyPort: PROXY, localPort: CALLEE_UAS });
    const cid = callId('wake');
    const call = runSipp({ scenario: 'uac-answered.xml', proxyPort: PROXY, localPort: CALLER, callId: cid, keys: { callee: 'frank', from_user: 'alice' } });

    await sleep(400);
    expect(webhook.postsFor(cid)).toHaveLength(1);
    expect((await register('frank', '60')).code).toBe(0);

    const run = await call;
    expect(run.code, run.output).toBe(0);
    expect((await callee.done).code).toBe(0);
    expect(run.ms).toBeLessThan(HOLD_MS + 1000);
    await register('frank', '0');
  });

  it('a released call that rings past the hold time is answered, not cut off by the hold timer', async () => {
    const callee = startSipp({ scenario: 'uas-answer-late.xml', proxyPort: PROXY, localPort: CALLEE_UAS });
    const call = runSipp({ scenario: 'uac-answered.xml', proxyPort: PROXY, localPort: CALLER, callId: callId('late'), keys: { callee: 'jane', from_user: 'alice' } });
    await sleep(300);
    expect((await register('jane', '60')).code).toBe(0);
    const run = await call;
    expect(run.code, run.output).toBe(0);
    expect(run.ms).toBeGreaterThan(HOLD_MS);
    expect((await callee.done).code).toBe(0);
    await register('jane', '0');
  });

  it('two calls held for the same user are both relayed by one REGISTER', async () => {
    const callee = startSipp({ scenario: 'uas-answer.xml', proxyPort: PROXY, localPort: CALLEE_UAS, calls: 2 });
    const first = runSipp({ scenario: 'uac-answered.xml', proxyPort: PROXY, localPort: CALLER, callId: callId('twin-a'), keys: { callee: 'gina', from_user: 'alice' } });
    const second = runSipp({ scenario: 'uac-answered.xml', proxyPort: PROXY, localPort: SECOND_CALLER, callId: callId('twin-b'), keys: { callee: 'gina', from_user: 'carol' } });

    await sleep(400);
    expect((await register('gina', '60')).code).toBe(0);

    const [a, b] = await Promise.all([first, second]);
    expect(a.code, a.output).toBe(0);
    expect(b.code, b.output).toBe(0);
    expect((await callee.done).code).toBe(0);
    await register('gina', '0');
  });

  it('nobody registering gets 480 after the hold time, not before', async () => {
    const cid = callId('timeout');
    const run = await runSipp({
      scenario: 'uac-offline.xml',
      proxyPort: PROXY,
      localPort: CALLER,
      callId: cid,
      keys: { callee: 'henry', from_user: 'alice', display: '"Alice"', media_extra: 'a=sendrecv' },
    });
    expect(run.code, run.output).toBe(0);
    expect(run.ms).toBeGreaterThanOrEqual(HOLD_MS - 100);
    expect(run.ms).toBeLessThan(HOLD_MS + 3000);
    expect(webhook.postsFor(cid)).toHaveLength(1);
  });

  it('a de-registration does not end a held call early', async () => {
    const call = runSipp({
      scenario: 'uac-offline.xml',
      proxyPort: PROXY,
      localPort: CALLER,
      callId: callId('dereg'),
      keys: { callee: 'kim', from_user: 'alice', display: '"Alice"', media_extra: 'a=sendrecv' },
    });
    await sleep(300);
    expect((await register('kim', '0')).code).toBe(0);
    const run = await call;
    expect(run.code, run.output).toBe(0);
    expect(run.ms).toBeGreaterThanOrEqual(HOLD_MS - 100);
  });

  it('a CANCEL of a held INVITE gets 200 and the INVITE 487', async () => {
    const cid = callId('cancel');
    const run = await runSipp({ scenario: 'uac-cancel.xml', proxyPort: PROXY, localPort: CALLER, callId: cid, keys: { callee: 'ivan', from_user: 'alice' } });
    expect(run.code, run.output).toBe(0);
    expect(run.ms).toBeLessThan(HOLD_MS + 500);
    // The hold timer firing later must not disturb anything: kamailio still serves requests.
    await sleep(HOLD_MS);
    expect((await register('ivan', '0')).code).toBe(0);
  });
});
