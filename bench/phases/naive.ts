import { startApnsStandIn } from '@veil/testkit/apns-stand-in';
import { startService, type ServiceProcess } from '../lib/proc.ts';
import { apnsArrival, type Stack } from '../lib/stack.ts';

/**
 * The naive baseline needs an APNs on port 443 (apns2 cannot be pointed at another port), so
 * it gets a second APNs stand-in there, feeding the same arrival log.
 */
export async function startNaiveWorker(stack: Stack): Promise<{ worker: ServiceProcess; close(): Promise<void> }> {
  const apns443 = await startApnsStandIn({
    key: stack.key,
    port: 443,
    onRequest: apnsArrival(stack.arrivals, stack.rejected),
  });
  const worker = await startService('naive-worker', 'bench/naive-worker.ts', { ...stack.env, NAIVE_APNS_HOSTNAME: 'localhost' }, null);
  // No health endpoint in the baseline: give it time to connect; the queues are paused until then.
  await new Promise((r) => setTimeout(r, 3000));
  return {
    worker,
    async close() {
      await worker.stop();
      await apns443.close();
    },
  };
}
