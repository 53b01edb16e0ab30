import type { ApnsStandIn, TestApnsKey } from './apns-stand-in.ts';
import { TEST_CA_PATH } from './certs.ts';
import type { FcmStandIn } from './fcm-stand-in.ts';

export const TEST_BUNDLE_ID = 'com.example.veil';

/**
 * The environment that points a worker (or the whole stack) at the local APNs and FCM stand-ins,
 * exactly as an operator would point it at an egress proxy: key, ids, gateway host, service
 * account, API URL, and trust of the test CA.
 */
export function standInEnv(opts: {
  key: TestApnsKey;
  apns: ApnsStandIn;
  fcm: FcmStandIn;
  serviceAccountPath: string;
  bundleId?: string;
}): Record<string, string> {
  return {
    APNS_KEY_PATH: opts.key.path,
    APNS_KEY_ID: opts.key.keyId,
    APNS_TEAM_ID: opts.key.teamId,
    APNS_BUNDLE_ID: opts.bundleId ?? TEST_BUNDLE_ID,
    APNS_HOST: opts.apns.host,
    FCM_SERVICE_ACCOUNT_PATH: opts.serviceAccountPath,
    FCM_API_URL: opts.fcm.url,
    NODE_EXTRA_CA_CERTS: TEST_CA_PATH,
  };
}
