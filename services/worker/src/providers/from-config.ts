import type { Config } from '@veil/config/config';
import type { Logger } from '@veil/log/logger';
import type { PushPlatform } from '@veil/queue/contracts';
import { createApnsProvider } from './apns.ts';
import { ApnsProviderToken, loadApnsCredentials } from './apns-provider-token.ts';
import { createFcmProvider } from './fcm.ts';
import { FcmAccessToken, loadFcmServiceAccount } from './fcm-access-token.ts';
import type { WorkerMetrics } from '../metrics.ts';
import type { PushProvider } from './types.ts';

export interface ProviderOptions {
  requestTimeoutMs?: number;
  /** veil_worker_credentials_loaded: 1 per platform whose credentials loaded, else 0. */
  metrics?: Pick<WorkerMetrics, 'credentialsLoaded'>;
}

/**
 * Both providers from the configuration, checked at start-up. A missing or broken credential
 * leaves that platform null ("not configured") with one error line naming the problem; the
 * other platform is unaffected and the process keeps running.
 */
export function createProvidersFromConfig(config: Config, log: Logger, opts: ProviderOptions = {}): Record<PushPlatform, PushProvider | null> {
  const apnsCreds = loadApnsCredentials(config.apns);
  let ios: PushProvider | null = null;
  if (typeof apnsCreds === 'string') {
    log.error({ platform: 'ios', problem: apnsCreds }, `APNs not configured: ${apnsCreds}`);
  } else {
    ios = createApnsProvider({
      host: config.apns.host,
      credentials: apnsCreds,
      providerToken: new ApnsProviderToken(apnsCreds),
      missedCall: config.missedCall,
      requestTimeoutMs: opts.requestTimeoutMs,
    });
    log.info({ platform: 'ios', host: config.apns.host, key_id: apnsCreds.keyId }, 'APNs configured');
  }

  const account = loadFcmServiceAccount(config.fcm.serviceAccountPath);
  let android: PushProvider | null = null;
  if (typeof account === 'string') {
    log.error({ platform: 'android', problem: account }, `FCM not configured: ${account}`);
  } else {
    android = createFcmProvider({
      apiUrl: config.fcm.apiUrl,
      account,
      accessToken: new FcmAccessToken(account, { log: log.child({ platform: 'android' }) }),
      pushTtlSeconds: config.pushTtlSeconds,
      requestTimeoutMs: opts.requestTimeoutMs,
    });
    log.info({ platform: 'android', project_id: account.projectId, api: config.fcm.apiUrl }, 'FCM configured');
  }
  for (const [platform, p] of [['ios', ios], ['android', android]] as const) opts.metrics?.credentialsLoaded.set({ platform, app_id: 'default' }, p ? 1 : 0);
  return { ios, android };
}
