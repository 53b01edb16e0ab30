// Wake tracking: a REGISTER from a user Kamailio pushed within PUSH_TTL_S is reported to the api's
// registered webhook, off the SIP path. Free ports only; every sipp is killed after each test.
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { freePort } from '../../../packages/testkit/src/ports.ts';
import { missingSipTools, startKamailio, type Kamailio } from './support/kamailio.ts';
import { createRegisterClient, type RegisterClient } from './support/raw-sip.ts';
import { killAllSipp, runSipp } from './support/sipp.ts';
import { kamailioSuite } from './support/suite.ts';
import { startWebhookRecorder, type WebhookRecorder } from './support/webhook.ts';

const SECRET = 'kamailio-wake-secret';
const INSTANCE = '<urn:uuid:550E8400-e29b-41d4-a716-446655440000>';

const missing = missingSipTools();
if (missing) console.warn(`Skipping Kamailio wake-tracking tests: ${missing}`);

describe.skipIf(missing !== null)('kamailio wake tracking (registered webhook)', () => {
  let webhook: WebhookRecorder;
  let kamailio: Kamailio;
  let phone: RegisterClient;
  let seq = 0;
  const callId = (label: string) => `wake-${label}-${process.pid}-${++seq}`;

  kamailioSuite({ kamailio: { pushSecret: SECRET, pushTimeoutSeconds: 2 }, phone: true }, (s) => {
    ({ webhook, kamailio, phone } = s);
  });

  /** An INVITE to an offline user: call-notify posted, 480. */
  async function push(user: string) {
    const cid = callId(user);
    const run = await runSipp({
      scenario: 'uac-offline.xml',
      proxyPort: kamailio.port,
      localPort: await freePort(),
      callId: cid,
      keys: { callee: user, from_user: 'alice', display: '"Alice"', media_extra: 'a=sendrecv' },
    });
    expect(run.code, run.output).toBe(0);
    expect(webhook.postsFor(cid)).toHaveLength(1);
  }

  const registeredPosts = (user: string) => webhook.postsTo('registered', { username: user });

  /** A REGISTER of a freshly pushed user, then its post: everything queued before it is posted. */
  async function flushWith(user: string) {
    await push(user);
    expect((await phone.register({ user })).status).toBe(200);
    await vi.waitFor(() => expect(registeredPosts(user)).toHaveLength(1), { timeout: 5000 });
  }

  it('a REGISTER after a push posts registered with the instance and User-Agent as sent, and the secret', async () => {
    await push('wendy');
    const reg = await runSipp({
      scenario: 'register-device.xml',
      proxyPort: kamailio.port,
      localPort: await freePort(),
      keys: { callee: 'wendy', contact_port: '5999', expires: '60', contact_params: `;+sip.instance="${INSTANCE}";reg-id=1`, user_agent: 'VeilPhone/2.1 (iOS 18)' },
    });
    expect(reg.code, reg.output).toBe(0);

    await vi.waitFor(() => expect(registeredPosts('wendy')).toHaveLength(1), { timeout: 5000 });
    const [post] = registeredPosts('wendy');
    expect(post!.url).toBe('/api/v1/push/registered');
    expect(post!.headers['content-type']).toBe('application/json');
    expect(post!.headers.authorization).toBe(`Bearer ${SECRET}`);
    expect(post!.body).toEqual({ username: 'wendy', domain: '127.0.0.1', instance: INSTANCE, user_agent: 'VeilPhone/2.1 (iOS 18)' });
    await vi.waitFor(() => expect(kamailio.log()).toContain(`Registered webhook result: 200 user=wendy instance=${INSTANCE}`));
  });

  it('a REGISTER without +sip.instance or User-Agent sends both empty; a long User-Agent is cut to 256 characters', async () => {
    await push('xavier');
    expect((await phone.register({ user: 'xavier' })).status).toBe(200);
    await vi.waitFor(() => expect(registeredPosts('xavier')).toHaveLength(1), { timeout: 5000 });
    expect(registeredPosts('xavier')[0]!.body).toEqual({ username: 'xavier', domain: '127.0.0.1', instance: '', user_agent: '' });

    const longUa = `VeilPhone/2.1 ${'x'.repeat(400)}`;
    expect((await phone.register({ user: 'xavier', instance: `"${INSTANCE}"`, userAgent: longUa })).status).toBe(200);
    await vi.waitFor(() => expect(registeredPosts('xavier')).toHaveLength(2), { timeout: 5000 });
    expect(registeredPosts('xavier')[1]!.body).toMatchObject({ instance: INSTANCE, user_agent: longUa.slice(0, 256) });
  });

  it('a REGISTER with no push before it posts nothing', async () => {
    expect((await phone.register({ user: 'yolanda', instance: `"${INSTANCE}"` })).status).toBe(200);
    // The poster works in order: once a later pushed user's post is in, yolanda's would be too.
    await flushWith('yolanda-control');
    expect(registeredPosts('yolanda')).toHaveLength(0);
  });

  it('a REGISTER that removes the last contact posts nothing', async () => {
    await push('zack');
    expect((await phone.register({ user: 'zack' })).status).toBe(200);
    await vi.waitFor(() => expect(registeredPosts('zack')).toHaveLength(1), { timeout: 5000 });

    expect((await phone.register({ user: 'zack', expires: 0 })).status).toBe(200);
    await flushWith('zack-control');
    expect(registeredPosts('zack')).toHaveLength(1);
  });

  it('a burst of REGISTERs from pushed users is reported in full (the poster drains in batches)', async () => {
    await push('burst');
    // One contact refreshed 150 times in waves of 30 (more 200s at once overflow the client's
    // UDP receive buffer on a loaded machine): far faster than one post each, so more than a
    // batch of 50 waits in the queue.
    for (let wave = 0; wave < 5; wave++) {
      const regs = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          phone.register({ user: 'burst', contactPort: 5999, instance: `"<urn:uuid:00000000-0000-4000-8000-${String(wave * 30 + i).padStart(12, '0')}>"` }),
        ),
      );
      expect(regs.every((r) => r.status === 200)).toBe(true);
    }
    // A REGISTER retransmitted after a lost 200 is reported twice; none may be missing.
    await vi.waitFor(() => expect(new Set(registeredPosts('burst').map((p) => p.body.instance)).size).toBe(150), { timeout: 10_000 });
    // Leave an empty queue to the next test.
    await flushWith('burst-control');
  });

  it('a REGISTER is answered at once while the registered webhook hangs', async () => {
    webhook.setMode({ kind: 'hang' }, 'registered');
    await push('yuri');
    // PUSH_TIMEOUT_S is 2: were the post made before the answer, each REGISTER would take 2 s.
    for (let i = 0; i < 3; i++) {
      const reg = await phone.register({ user: 'yuri', instance: `"${INSTANCE}"` });
      expect(reg.status).toBe(200);
      expect(reg.ms).toBeLessThan(1000);
    }
    await vi.waitFor(() => expect(registeredPosts('yuri').length).toBeGreaterThanOrEqual(1), { timeout: 5000 });
  });
});

describe.skipIf(missing !== null)('kamailio wake tracking with PUSH_TTL_S=1 and PUSH_REGISTERED_URL', () => {
  let webhook: WebhookRecorder;
  let kamailio: Kamailio;
  let phone: RegisterClient;

  beforeAll(async () => {
    webhook = await startWebhookRecorder();
    kamailio = await startKamailio({ pushUrl: webhook.url, pushTtlSeconds: 1, pushRegisteredUrl: webhook.urlOf('wake') });
    phone = await createRegisterClient(kamailio.port);
  });

  afterAll(async () => {
    await killAllSipp();
    await phone?.close();
    await kamailio?.stop();
    await webhook?.stop();
  });

  afterEach(() => killAllSipp());

  async function push(user: string) {
    const run = await runSipp({
      scenario: 'uac-offline.xml',
      proxyPort: kamailio.port,
      localPort: await freePort(),
      callId: `ttl-${user}-${process.pid}`,
      keys: { callee: user, from_user: 'alice', display: '"Alice"', media_extra: 'a=sendrecv' },
    });
    expect(run.code, run.output).toBe(0);
    return performance.now();
  }

  it('posts to PUSH_REGISTERED_URL within PUSH_TTL_S of the push, and nothing once it has passed', async () => {
    const pushedAt = await push('tina');
    expect((await phone.register({ user: 'tina' })).status).toBe(200);
    await vi.waitFor(() => expect(webhook.postsTo('wake', { username: 'tina' })).toHaveLength(1), { timeout: 5000 });
    expect(webhook.postsTo('registered')).toHaveLength(0);

    // The marker lives PUSH_TTL_S = 1 s, on a whole-second clock: 2.1 s after the push it is gone.
    // Waiting for time itself to pass is the condition here.
    await vi.waitFor(() => expect(performance.now() - pushedAt).toBeGreaterThan(2100), { timeout: 5000, interval: 100 });
    expect((await phone.register({ user: 'tina' })).status).toBe(200);

    await push('tina-control');
    expect((await phone.register({ user: 'tina-control' })).status).toBe(200);
    await vi.waitFor(() => expect(webhook.postsTo('wake', { username: 'tina-control' })).toHaveLength(1), { timeout: 5000 });
    expect(webhook.postsTo('wake', { username: 'tina' })).toHaveLength(1);
  });
});
