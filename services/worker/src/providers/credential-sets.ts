import { createHash } from 'node:crypto';
import type { Config } from '@veil/config/config';
import type { PushPlatform } from '@veil/queue/contracts';
import { loadApnsCredentials, loadKey, type ApnsCredentials } from './apns-provider-token.ts';
import { readAppsFile, type EntryProblem } from './apps-file.ts';
import { loadFcmServiceAccount, type FcmServiceAccount } from './fcm-access-token.ts';

/** The app label of the APNS_* / FCM_SERVICE_ACCOUNT_PATH credentials (metrics, logs). */
export const DEFAULT_APP = 'default';

export type CredentialSet =
  | { platform: 'ios'; app: string; credentials: ApnsCredentials; fingerprint: string }
  | { platform: 'android'; app: string; account: FcmServiceAccount; fingerprint: string };

/** What is wrong with a credential set; `entry` names the apps-file entry (null: the defaults). */
export interface SetProblem {
  problem: string;
  entry: string | null;
}

/** One credential set as loaded: usable, or why not (an app_id listed twice has two entries). */
export type LoadedSet = { ok: true; set: CredentialSet } | { ok: false; problems: SetProblem[] };

export interface LoadedCredentials {
  /** Per platform: DEFAULT_APP, then every app_id the apps file names (broken entries included). */
  sets: Record<PushPlatform, Map<string, LoadedSet>>;
  appsFile: { state: 'missing' } | { state: 'unusable'; problem: string } | { state: 'read' };
  /** Apps-file entries without a usable app_id: only reported. */
  unnamed: EntryProblem[];
}

const broken = (problem: string, entry: string | null): LoadedSet => ({ ok: false, problems: [{ problem, entry }] });

const sha256 = (...parts: (string | Buffer)[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex');
};

function iosSet(app: string, credentials: ApnsCredentials): CredentialSet {
  const der = credentials.key.export({ type: 'pkcs8', format: 'der' });
  return { platform: 'ios', app, credentials, fingerprint: sha256(credentials.keyId, credentials.teamId, credentials.bundleId, der) };
}

function androidSet(app: string, account: FcmServiceAccount): CredentialSet {
  return { platform: 'android', app, account, fingerprint: sha256(JSON.stringify(account)) };
}

/**
 * Reads every credential the worker may use: the defaults and the apps file's entries, key
 * files included. Pure of side effects beyond reading files; the caller logs and decides.
 */
export function loadCredentials(config: Config): LoadedCredentials {
  const sets: LoadedCredentials['sets'] = { ios: new Map(), android: new Map() };

  const apns = loadApnsCredentials(config.apns);
  sets.ios.set(DEFAULT_APP, typeof apns === 'string' ? broken(apns, null) : { ok: true, set: iosSet(DEFAULT_APP, apns) });
  const account = loadFcmServiceAccount(config.fcm.serviceAccountPath);
  sets.android.set(
    DEFAULT_APP,
    typeof account === 'string' ? broken(account, null) : { ok: true, set: androidSet(DEFAULT_APP, account) },
  );

  const file = readAppsFile(config.appsPath);
  if (file.state !== 'read') return { sets, appsFile: file, unnamed: [] };

  for (const p of file.problems) {
    if (!p.appId) continue;
    const known = sets[p.platform].get(p.appId);
    if (known && !known.ok) known.problems.push({ problem: p.problem, entry: p.entry });
    else sets[p.platform].set(p.appId, broken(p.problem, p.entry));
  }
  for (const e of file.ios) {
    const entry = e.entry;
    const key = loadKey(e.keyPath, 'key_path');
    sets.ios.set(
      e.appId,
      typeof key === 'string'
        ? broken(key, entry)
        // The topic is `<app_id>.voip`: the app id is the bundle id.
        : { ok: true, set: iosSet(e.appId, { key, keyId: e.keyId, teamId: e.teamId, bundleId: e.appId }) },
    );
  }
  for (const e of file.android) {
    const entry = e.entry;
    const sa = loadFcmServiceAccount(e.serviceAccountPath, 'service_account_path');
    sets.android.set(e.appId, typeof sa === 'string' ? broken(sa, entry) : { ok: true, set: androidSet(e.appId, sa) });
  }
  return { sets, appsFile: { state: 'read' }, unnamed: file.problems.filter((p) => !p.appId) };
}
