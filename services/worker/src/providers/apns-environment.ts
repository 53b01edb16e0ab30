import type { ApnsEnvironment } from '@veil/config/config';
import type { PushJob } from '@veil/queue/contracts';
import type { SendResult } from './types.ts';

export const OTHER_ENVIRONMENT: Record<ApnsEnvironment, ApnsEnvironment> = { sandbox: 'production', production: 'sandbox' };

/** What the wrong-environment rule did, for the caller's log line and metric. */
export type EnvironmentFallback = { tried: ApnsEnvironment; then: ApnsEnvironment; outcome: 'delivered' | 'rejected' };

/**
 * The gateway for one iOS push, and the wrong-environment rule.
 *
 * A registration that names its environment goes there and nowhere else: its BadDeviceToken is
 * final (the registration is purged as before). One that does not goes to the deployment
 * default; Apple answers BadDeviceToken there both to a garbage token and to a good token of the
 * other environment (a TestFlight build on a sandbox deployment), so before a valid registration
 * is purged the push is tried once on the other gateway, right away, within the same attempt:
 * - accepted there: delivered (reported, so the operator can have the app send apns_environment);
 * - rejected there too (any token answer): that answer stands and the registration is purged;
 * - any other failure there (timeout, 5xx, bad key) is thrown like any send failure: retried or
 *   failed by the queue, the registration kept. A retry starts again at the default gateway.
 * Nothing is remembered between pushes: the registration is the place for the environment.
 *
 * Off (`tryOther` false) when APNS_HOST pins APNs to one override and the other environment has
 * no gateway variable: that set-up reaches one gateway only (a test gateway, an egress proxy),
 * and BadDeviceToken purges at once, as before environments existed.
 */
export async function sendToEnvironment(
  push: PushJob,
  opts: { defaultEnvironment: ApnsEnvironment; tryOther: boolean },
  send: (environment: ApnsEnvironment) => Promise<SendResult>,
  onFallback: (fallback: EnvironmentFallback) => void,
): Promise<SendResult> {
  if (push.apns_environment) return send(push.apns_environment);
  const { defaultEnvironment } = opts;
  const first = await send(defaultEnvironment);
  if (!opts.tryOther || first === 'delivered' || first.tokenInvalid !== 'BadDeviceToken') return first;
  const other = OTHER_ENVIRONMENT[defaultEnvironment];
  const second = await send(other);
  onFallback({ tried: defaultEnvironment, then: other, outcome: second === 'delivered' ? 'delivered' : 'rejected' });
  return second;
}
