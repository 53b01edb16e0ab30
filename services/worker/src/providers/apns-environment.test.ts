import { describe, expect, it } from 'vitest';
import type { PushJob } from '@veil/queue/contracts';
import { sendToEnvironment, type EnvironmentFallback } from './apns-environment.ts';
import type { SendResult } from './types.ts';

const push = (apns_environment: PushJob['apns_environment']) => ({ apns_environment }) as PushJob;
const BAD: SendResult = { tokenInvalid: 'BadDeviceToken' };

/** Runs the rule against scripted gateway answers; returns what it sent where and what it reported. */
async function run(job: PushJob, answers: Record<string, SendResult>, tryOther = true) {
  const sent: string[] = [];
  const reported: EnvironmentFallback[] = [];
  const result = await sendToEnvironment(
    job,
    { defaultEnvironment: 'sandbox', tryOther },
    async (env) => (sent.push(env), answers[env]!),
    (f) => reported.push(f),
  );
  return { result, sent, reported };
}

describe('the wrong-environment rule', () => {
  it('an explicit environment is the only gateway asked, whatever it answers', async () => {
    expect(await run(push('production'), { production: BAD, sandbox: 'delivered' })).toEqual({ result: BAD, sent: ['production'], reported: [] });
  });

  it('unset: BadDeviceToken on the default, accepted on the other -> delivered and reported', async () => {
    expect(await run(push(null), { sandbox: BAD, production: 'delivered' })).toEqual({
      result: 'delivered', sent: ['sandbox', 'production'], reported: [{ tried: 'sandbox', then: 'production', outcome: 'delivered' }],
    });
  });

  it("unset: rejected on both -> the other gateway's answer stands (purge)", async () => {
    const gone: SendResult = { tokenInvalid: 'Unregistered' };
    expect(await run(push(null), { sandbox: BAD, production: gone })).toMatchObject({ result: gone, reported: [{ outcome: 'rejected' }] });
  });

  it('other token answers, and a pinned single gateway, never try the other one', async () => {
    expect((await run(push(null), { sandbox: { tokenInvalid: 'DeviceTokenNotForTopic' } })).sent).toEqual(['sandbox']);
    expect(await run(push(null), { sandbox: BAD, production: 'delivered' }, false)).toEqual({ result: BAD, sent: ['sandbox'], reported: [] });
  });
});
