import type { ApnsEnvironment, Config } from '@veil/config/config';
import type { Logger } from '@veil/log/logger';
import { tokenHash } from '@veil/log/token-hash';
import { PUSH_PLATFORMS, type PushJob, type PushPlatform } from '@veil/queue/contracts';
import type { WorkerMetrics } from '../metrics.ts';
import { createApnsProvider } from './apns.ts';
import { sendToEnvironment } from './apns-environment.ts';
import { ApnsProviderToken } from './apns-provider-token.ts';
import { DEFAULT_APP, loadCredentials, type CredentialSet, type LoadedCredentials } from './credential-sets.ts';
import { createFcmProvider } from './fcm.ts';
import { FcmAccessToken, type FcmAccessTokenOptions } from './fcm-access-token.ts';
import { LiveCredentialSet } from './live-credential-set.ts';
import { RetryableError, type PushProvider, type SendResult } from './types.ts';

/** What the processor needs of a provider. */
export interface PushSender {
  send(push: PushJob): Promise<SendResult>;
}

/** Where one job goes: the app label for metrics, and its sender (null: "not configured"). */
export interface JobRoute {
  app: string;
  provider: PushSender | null;
}

export interface ProviderSet {
  forJob(push: PushJob): JobRoute;
  /** SIGHUP: re-read keys, service accounts and the apps file; false when it kept the old ones. */
  reload(): Promise<boolean>;
  /** Channels (APNs environments / 'fcm') opened per credential set, e.g. `ios:default` -> ['sandbox']. */
  channelsOpened(): Record<string, string[]>;
  close(): Promise<void>;
}

export interface ProviderSetDeps {
  config: Config;
  log: Logger;
  metrics: WorkerMetrics;
  requestTimeoutMs?: number;
  /** FCM access-token timings (tests use seconds). */
  fcmAccessToken?: Omit<FcmAccessTokenOptions, 'log'>;
}

/** Per platform: the default set and each app's; null = configured or listed, but unusable. */
type Routes = Record<PushPlatform, Map<string, LiveCredentialSet | null>>;

const NAME: Record<PushPlatform, 'APNs' | 'FCM'> = { ios: 'APNs', android: 'FCM' };

/**
 * Every credential set the worker pushes with — the default APNS_* / FCM_* ones and each app of
 * PUSH_APPS_PATH — and the rule that picks one per job: an app_id listed for the job's platform
 * uses that app's set, anything else the default set.
 */
export function createProviderSet(deps: ProviderSetDeps): ProviderSet {
  const { config, log, metrics } = deps;
  let routes: Routes = { ios: new Map(), android: new Map() };
  let appsFileRead = false;
  const everyLive = new Set<LiveCredentialSet>();
  // One provider JWT per APNs credential set, shared by its two environments' connections.
  const providerTokens = new WeakMap<CredentialSet, ApnsProviderToken>();

  const make = (set: CredentialSet, channel: string): PushProvider => {
    if (set.platform === 'ios') {
      return createApnsProvider({
        host: config.apns.hosts[channel as ApnsEnvironment],
        credentials: set.credentials,
        providerToken: providerTokens.get(set) ?? providerTokens.set(set, new ApnsProviderToken(set.credentials)).get(set)!,
        requestTimeoutMs: deps.requestTimeoutMs,
        missedCall: config.missedCall,
      });
    }
    return createFcmProvider({
      apiUrl: config.fcm.apiUrl,
      account: set.account,
      accessToken: new FcmAccessToken(set.account, { ...deps.fcmAccessToken, log: log.child({ platform: 'android', app_id: set.app }) }),
      requestTimeoutMs: deps.requestTimeoutMs,
      pushTtlSeconds: config.pushTtlSeconds,
    });
  };

  const sendIos = (live: LiveCredentialSet, push: PushJob) =>
    live.run((provider) =>
      sendToEnvironment(
        push,
        { defaultEnvironment: config.apns.defaultEnvironment, tryOther: !config.apns.apnsHostOnly },
        (environment) => provider(environment).send(push),
        (fallback) => {
          metrics.apnsEnvironmentFallbacks.inc({ outcome: fallback.outcome });
          const fields = { platform: 'ios', app_id: live.set.app, call_id: push.call_id, device_id: push.device_id, token_hash: tokenHash(push.push_token), ...fallback };
          if (fallback.outcome === 'delivered') {
            log.warn(fields, `APNs push delivered on the ${fallback.then} gateway after BadDeviceToken on ${fallback.tried}: the app should register with apns_environment`);
          } else {
            log.info(fields, `APNs BadDeviceToken on both gateways`);
          }
        },
      ),
    );

  // One sender per (platform, app), created once: it looks the live set up when a send starts,
  // so a send never lands on a set that a reload has already closed.
  const senders = new Map<string, PushSender>();
  const senderFor = (platform: PushPlatform, app: string): PushSender => {
    const key = `${platform}:${app}`;
    let sender = senders.get(key);
    if (!sender) {
      sender = {
        send: (push) => {
          const live = routes[platform].get(app);
          if (!live) return Promise.reject(new RetryableError(`${NAME[platform]} credentials of ${app} were removed by a reload`));
          return platform === 'ios' ? sendIos(live, push) : live.run((provider) => provider('fcm').send(push));
        },
      };
      senders.set(key, sender);
    }
    return sender;
  };

  function apply(loaded: LoadedCredentials, reloading: boolean): void {
    const next: Routes = { ios: new Map(), android: new Map() };
    const kept: string[] = [];
    for (const platform of PUSH_PLATFORMS) {
      for (const [app, result] of loaded.sets[platform]) {
        const current = routes[platform].get(app) ?? null;
        if (result.ok) {
          const same = current?.fingerprint === result.set.fingerprint;
          next[platform].set(app, same ? current : new LiveCredentialSet(result.set, make));
          if (!same) logConfigured(result.set);
          continue;
        }
        // A key file caught mid-rewrite, a typo: on reload the working credentials stay until fixed.
        const keep = reloading && current !== null;
        next[platform].set(app, keep ? current : null);
        if (keep) kept.push(`${platform}:${app}`);
        for (const { problem, entry } of result.problems) {
          const fields = { platform, app_id: app, entry, problem };
          if (keep) log.error(fields, `Credentials reload: ${platform} ${app} keeps its previous credentials: ${problem}`);
          else if (!entry) log.error({ platform, problem }, `${NAME[platform]} not configured: ${problem}`);
          else log.error(fields, `Apps file entry skipped: ${entry}: ${problem}`);
        }
      }
    }
    for (const p of loaded.unnamed) log.error({ platform: p.platform, entry: p.entry, problem: p.problem }, `Apps file entry skipped: ${p.entry}: ${p.problem}`);

    const previous = routes;
    routes = next;
    for (const platform of PUSH_PLATFORMS) {
      for (const [app, live] of previous[platform]) {
        if (!next[platform].has(app)) metrics.credentialsLoaded.remove({ platform, app_id: app });
        if (live && next[platform].get(app) !== live) live.retire();
      }
      for (const [app, live] of next[platform]) {
        metrics.credentialsLoaded.set({ platform, app_id: app }, live ? 1 : 0);
        if (live) everyLive.add(live);
      }
    }
    if (reloading) {
      log.info(
        { ios_apps: next.ios.size - 1, android_apps: next.android.size - 1, kept_previous: kept },
        kept.length > 0 ? 'Credentials reloaded, some kept their previous credentials' : 'Credentials reloaded',
      );
    }
  }

  function logConfigured(set: CredentialSet): void {
    if (set.platform === 'ios') {
      const { keyId, teamId, bundleId } = set.credentials;
      log.info({ platform: 'ios', app_id: set.app, key_id: keyId, team_id: teamId, topic: `${bundleId}.voip`, hosts: config.apns.hosts, default_environment: config.apns.defaultEnvironment }, 'APNs configured');
    } else {
      log.info({ platform: 'android', app_id: set.app, project_id: set.account.projectId, api: config.fcm.apiUrl }, 'FCM configured');
    }
  }

  // Start: whatever loads is used; an unusable apps file leaves the defaults alone in service.
  const first = loadCredentials(config);
  if (first.appsFile.state === 'unusable') log.error({ problem: first.appsFile.problem }, `Apps file unusable: ${first.appsFile.problem}`);
  if (first.appsFile.state === 'missing') log.info({ path: config.appsPath }, 'No apps file: default credentials only');
  appsFileRead = first.appsFile.state === 'read';
  apply(first, false);

  let reloads: Promise<boolean> = Promise.resolve(true);
  const failed = (problem: string): false => {
    metrics.credentialReloads.inc({ result: 'failed' });
    log.error({ problem }, `Credentials reload failed, keeping the previous credentials: ${problem}`);
    return false;
  };
  const reloadOnce = async (): Promise<boolean> => {
    try {
      const loaded = loadCredentials(config);
      // A file that cannot be read as a whole says nothing about which apps exist: nothing changes.
      if (loaded.appsFile.state === 'unusable') return failed(loaded.appsFile.problem);
      // Gone between two reads (an editor's delete-then-write, an unmounted volume): dropping every
      // app would push their registrations with the default credentials. Write {} to remove all.
      if (loaded.appsFile.state === 'missing' && appsFileRead) return failed(`PUSH_APPS_PATH ${config.appsPath} is gone (write {} to remove every app)`);
      // apply() swaps the routes only once the new ones are complete.
      apply(loaded, true);
      appsFileRead = loaded.appsFile.state === 'read';
      metrics.credentialReloads.inc({ result: 'ok' });
      return true;
    } catch (err) {
      // A signal handler must never take the worker down.
      return failed(`unexpected error: ${(err as Error).message}`);
    }
  };

  return {
    forJob(push) {
      const table = routes[push.platform];
      const app = push.app_id !== null && push.app_id !== DEFAULT_APP && table.has(push.app_id) ? push.app_id : DEFAULT_APP;
      return { app, provider: table.get(app) ? senderFor(push.platform, app) : null };
    },
    reload() {
      reloads = reloads.then(reloadOnce, reloadOnce);
      return reloads;
    },
    channelsOpened() {
      const out: Record<string, string[]> = {};
      for (const platform of PUSH_PLATFORMS) for (const [app, live] of routes[platform]) if (live) out[`${platform}:${app}`] = live.channelsOpened();
      return out;
    },
    async close() {
      await Promise.all([...everyLive].map((live) => live.close()));
    },
  };
}
