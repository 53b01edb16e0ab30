import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { startKamailio, type Kamailio, type KamailioOptions } from './kamailio.ts';
import { createRegisterClient, type RegisterClient } from './raw-sip.ts';
import { killAllSipp } from './sipp.ts';
import { startWebhookRecorder, type WebhookRecorder } from './webhook.ts';

export interface KamailioSuite {
  webhook: WebhookRecorder;
  kamailio: Kamailio;
  /** A phone's REGISTER client on the proxy (when asked for). */
  phone: RegisterClient;
}

/**
 * The set-up every Kamailio test file shares: a webhook stand-in, one kamailio posting to it, and
 * optionally a REGISTER client; reset before each test, every sipp killed after each (also a
 * failed one's), everything stopped at the end. `ready` hands the parts to the file's variables.
 */
export function kamailioSuite(
  opts: { kamailio: Omit<KamailioOptions, 'pushUrl'>; phone?: boolean },
  ready: (suite: KamailioSuite) => void,
): void {
  let suite: Partial<KamailioSuite> = {};
  beforeAll(async () => {
    const webhook = await startWebhookRecorder();
    suite.webhook = webhook;
    const kamailio = await startKamailio({ pushUrl: webhook.url, ...opts.kamailio });
    suite.kamailio = kamailio;
    if (opts.phone) suite.phone = await createRegisterClient(kamailio.port);
    ready(suite as KamailioSuite);
  });
  afterAll(async () => {
    await killAllSipp();
    await suite.phone?.close();
    await suite.kamailio?.stop();
    await suite.webhook?.stop();
    suite = {};
  });
  beforeEach(() => suite.webhook?.reset());
  afterEach(() => killAllSipp());
}
