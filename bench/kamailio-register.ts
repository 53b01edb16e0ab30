/**
 * What wake tracking costs a REGISTER: REGISTER → 200 latency in Kamailio for users with and
 * without a recent push marker (the marker makes Kamailio queue a registered webhook), in the
 * 480 flow and in hold mode. One UDP client on loopback, REGISTERs one at a time, the two kinds
 * interleaved so that drift on a shared machine hits both alike. Figures, not assertions.
 *
 *   pnpm exec tsx bench/kamailio-register.ts            # BENCH_REGISTERS=400 per kind by default
 */
import { sendRawInvite, createRegisterClient } from '../infra/kamailio/test/support/raw-sip.ts';
import { missingSipTools, startKamailio } from '../infra/kamailio/test/support/kamailio.ts';
import { startWebhookRecorder } from '../infra/kamailio/test/support/webhook.ts';
import { fmt, summarize } from './lib/stats.ts';

const PER_KIND = Number(process.env.BENCH_REGISTERS ?? 400);
const USERS = 50;
const say = (line: string) => process.stdout.write(`${line}\n`);

async function measure(hold: boolean) {
  const webhook = await startWebhookRecorder();
  // Hold mode: call-notify answers no_registrations, so the pushing INVITEs get 480 at once and
  // nothing is held; the marker is set all the same (it is set before the post).
  if (hold) webhook.answer('call-notify', 200, { status: 'no_registrations', devices: 0 });
  const kamailio = await startKamailio({ pushUrl: webhook.url, pushTimeoutSeconds: 2, ...(hold ? { holdMs: 20000 } : {}), pushTtlSeconds: 3600 });
  const phone = await createRegisterClient(kamailio.port);
  try {
    for (let u = 0; u < USERS; u++) {
      const statuses = await sendRawInvite({ proxyPort: kamailio.port, callee: `warm${u}`, callId: `bench-${hold}-${u}-${process.pid}`, timeoutMs: 5000 });
      if (!statuses.at(-1)?.includes(' 480 ')) throw new Error(`push INVITE for warm${u}: ${statuses.join(' / ')}`);
    }
    // Warm-up: first contacts, first shared-memory allocations.
    for (let i = 0; i < USERS; i++) {
      await phone.register({ user: `cold${i}` });
      await phone.register({ user: `warm${i}` });
    }
    const cold: number[] = [];
    const warm: number[] = [];
    for (let i = 0; i < PER_KIND; i++) {
      const u = i % USERS;
      cold.push((await phone.register({ user: `cold${u}`, instance: `"<urn:uuid:00000000-0000-4000-8000-${String(u).padStart(12, '0')}>"`, userAgent: 'bench/1.0' })).ms);
      warm.push((await phone.register({ user: `warm${u}`, instance: `"<urn:uuid:00000000-0000-4000-8000-${String(u).padStart(12, '0')}>"`, userAgent: 'bench/1.0' })).ms);
    }
    // The poster drains the queue on its own clock: how long until every report reached the api.
    const expected = USERS + PER_KIND;
    const lastRegister = performance.now();
    while (webhook.postsTo('registered').length < expected && performance.now() - lastRegister < 60_000) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const posts = webhook.postsTo('registered');
    const drainedMs = (posts.at(-1)?.at ?? lastRegister) - lastRegister;
    return { cold: summarize(cold), warm: summarize(warm), posted: `${posts.length}/${expected}, last ${fmt(Math.max(0, drainedMs), 0)} ms after the last REGISTER` };
  } finally {
    await phone.close();
    await kamailio.stop();
    await webhook.stop();
  }
}

const missing = missingSipTools();
if (missing) {
  say(`skipped: ${missing}`);
} else {
  say(`Kamailio REGISTER → 200 latency, ${PER_KIND} REGISTERs per kind, ${USERS} users each (ms)`);
  say('| mode | REGISTER | p50 | p99 | max | registered posts |');
  say('|---|---|---|---|---|---|');
  for (const hold of [false, true]) {
    const r = await measure(hold);
    const mode = hold ? 'hold' : '480';
    say(`| ${mode} | no recent push | ${fmt(r.cold.p50, 2)} | ${fmt(r.cold.p99, 2)} | ${fmt(r.cold.max, 2)} | — |`);
    say(`| ${mode} | pushed within PUSH_TTL_S | ${fmt(r.warm.p50, 2)} | ${fmt(r.warm.p99, 2)} | ${fmt(r.warm.max, 2)} | ${r.posted} |`);
  }
}
