// Kamailio's route[PUSH] with real SIP (sipp) against a stand-in api that records each webhook.
// Every port is a free one picked at run time; every sipp is killed after each test.
import { describe, expect, it, vi } from 'vitest';
import { freePort } from '../../../packages/testkit/src/ports.ts';
import { missingSipTools, type Kamailio } from './support/kamailio.ts';
import { sendRawInvite } from './support/raw-sip.ts';
import { runSipp, startSipp } from './support/sipp.ts';
import { kamailioSuite } from './support/suite.ts';
import type { WebhookRecorder } from './support/webhook.ts';

const SECRET = 'kamailio-test-secret';

const missing = missingSipTools();
if (missing) console.warn(`Skipping Kamailio tests: ${missing}`);

describe.skipIf(missing !== null)('kamailio route[PUSH]', () => {
  let webhook: WebhookRecorder;
  let kamailio: Kamailio;
  let PROXY: number;
  let seq = 0;
  const callId = (label: string) => `kam-${label}-${process.pid}-${++seq}`;

  kamailioSuite({ kamailio: { pushSecret: SECRET, pushTimeoutSeconds: 2 } }, (s) => {
    ({ webhook, kamailio } = s);
    PROXY = kamailio.port;
  });

  const callOffline = async (cid: string, keys: Partial<Record<'callee' | 'display' | 'media_extra' | 'from_user', string>> = {}) =>
    runSipp({
      scenario: 'uac-offline.xml',
      proxyPort: PROXY,
      localPort: await freePort(),
      callId: cid,
      keys: { callee: 'bob', from_user: 'alice', display: '"Alice"', media_extra: 'a=sendrecv', ...keys },
    });

  /** A sipp REGISTER (register.xml): keys override contact_port and expires. */
  const register = async (user: string, keys: Record<string, string> = {}) =>
    runSipp({
      scenario: 'register.xml',
      proxyPort: PROXY,
      localPort: await freePort(),
      keys: { callee: user, contact_port: '5999', expires: '60', ...keys },
    });

  it('an audio INVITE to an offline user gets 480 and posts the call-notify body with the secret', async () => {
    const cid = callId('audio');
    const run = await callOffline(cid);
    expect(run.code, run.output).toBe(0);

    const posts = webhook.postsFor(cid);
    expect(posts).toHaveLength(1);
    expect(posts[0]!.url).toBe('/api/v1/push/call-notify');
    expect(posts[0]!.headers['content-type']).toBe('application/json');
    expect(posts[0]!.headers.authorization).toBe(`Bearer ${SECRET}`);
    expect(posts[0]!.body).toEqual({
      callee_username: 'bob',
      caller_username: 'alice',
      caller_display_name: 'Alice',
      call_id: cid,
      call_type: 'audio',
    });
    expect(kamailio.log()).toMatch(new RegExp(`Push webhook result: 202 callee=bob call_id=${cid}`));
  });

  it('an SDP offering video is a video call; a video stream with port 0 is not', async () => {
    const video = callId('video');
    expect((await callOffline(video, { media_extra: 'm=video 6002 RTP/AVP 96' })).code).toBe(0);
    expect(webhook.postsFor(video)[0]?.body.call_type).toBe('video');

    const rejected = callId('video0');
    expect((await callOffline(rejected, { media_extra: 'm=video 0 RTP/AVP 96' })).code).toBe(0);
    expect(webhook.postsFor(rejected)[0]?.body.call_type).toBe('audio');
  });

  it('a quoted display name with escapes and non-ASCII characters arrives decoded', async () => {
    const cid = callId('name');
    const run = await callOffline(cid, { display: '"Zoë \\"Zed\\" Ødegård 山田"' });
    expect(run.code, run.output).toBe(0);
    expect(webhook.postsFor(cid)[0]?.body.caller_display_name).toBe('Zoë "Zed" Ødegård 山田');
  });

  it('an unquoted display name is kept and a missing one is sent empty', async () => {
    const token = callId('token');
    expect((await callOffline(token, { display: 'Bob' })).code).toBe(0);
    expect(webhook.postsFor(token)[0]?.body.caller_display_name).toBe('Bob');

    const none = callId('noname');
    expect((await callOffline(none, { display: '' })).code).toBe(0);
    expect(webhook.postsFor(none)[0]?.body.caller_display_name).toBe('');
  });

  it('a display name that is not valid UTF-8 is sent empty, and the call still gets 480', async () => {
    const cid = callId('latin1');
    // "Zoë" in Latin-1: jansson refuses it, so the api will fall back to the caller's username.
    const statuses = await sendRawInvite({ proxyPort: PROXY, callee: 'bob', callId: cid, timeoutMs: 5000, displayName: Buffer.from([0x22, 0x5a, 0x6f, 0xeb, 0x22]) });
    expect(statuses.at(-1)).toMatch(/^SIP\/2.0 480/);
    expect(webhook.postsFor(cid)[0]?.body).toMatchObject({ caller_username: 'carol', caller_display_name: '' });
  });

  it('a retransmitted INVITE does not post the webhook twice', async () => {
    webhook.setMode({ kind: 'delay', ms: 600 });
    const cid = callId('retrans');
    const statuses = await sendRawInvite({ proxyPort: PROXY, callee: 'bob', callId: cid, resendAfterMs: 200, timeoutMs: 5000 });
    expect(statuses.at(-1)).toMatch(/^SIP\/2.0 480/);
    // The 480 leaves 600 ms after the first post, 400 ms after the retransmission: a second
    // post would have been recorded on arrival, long before.
    expect(webhook.postsFor(cid)).toHaveLength(1);
  });

  it('a webhook that is down still gives a prompt 480 and logs the curl error', async () => {
    await webhook.down();
    try {
      const cid = callId('down');
      const run = await callOffline(cid);
      expect(run.code, run.output).toBe(0);
      expect(run.ms).toBeLessThan(3000);
      expect(kamailio.log()).toMatch(new RegExp(`Push webhook result: curl error \\d+ callee=bob call_id=${cid}`));
    } finally {
      await webhook.up();
    }
  });

  it('webhooks that never answer give 480 within the timeout while REGISTERs are still served', async () => {
    webhook.setMode({ kind: 'hang' });
    // As many hung calls as SIP workers (SIP_WORKERS=2): were the webhook run in a SIP worker,
    // both would be stuck for the 2 s timeout and the REGISTER would wait behind them.
    const cids = [callId('hang'), callId('hang')];
    const calls = cids.map((cid) => callOffline(cid, { display: '"A"' }));
    await vi.waitFor(() => cids.forEach((cid) => expect(webhook.postsFor(cid)).toHaveLength(1)), { timeout: 5000 });
    const reg = await register('dave', { contact_port: String(await freePort()) });
    expect(reg.code, reg.output).toBe(0);
    expect(reg.ms).toBeLessThan(1000);

    for (const run of await Promise.all(calls)) {
      expect(run.code, run.output).toBe(0);
      expect(run.ms).toBeLessThan(5000);
    }
    for (const cid of cids) {
      expect(webhook.postsFor(cid)).toHaveLength(1);
      expect(kamailio.log()).toMatch(new RegExp(`Push webhook result: curl error 28 callee=bob call_id=${cid}`));
    }
  });

  it('a registered user is relayed the INVITE with no push', async () => {
    const uasPort = await freePort();
    const callee = startSipp({ scenario: 'uas-answer.xml', proxyPort: PROXY, localPort: uasPort });
    const reg = await register('erin', { contact_port: String(uasPort) });
    expect(reg.code, reg.output).toBe(0);

    const cid = callId('relay');
    const call = await runSipp({ scenario: 'uac-answered.xml', proxyPort: PROXY, localPort: await freePort(), callId: cid, keys: { callee: 'erin', from_user: 'alice' } });
    expect(call.code, call.output).toBe(0);
    expect((await callee.done).code).toBe(0);
    expect(webhook.postsFor(cid)).toHaveLength(0);

    // Unregister so the user is offline again for anyone reusing the name.
    await register('erin', { contact_port: String(uasPort), expires: '0' });
  });
});
