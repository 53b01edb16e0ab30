import { readFileSync } from 'node:fs';
import type { PushPlatform } from '@veil/queue/contracts';
import { APPLE_ID } from './apns-provider-token.ts';

/**
 * PUSH_APPS_PATH: apps with credentials of their own, beside the default APNS_* / FCM_* ones.
 *
 *   {"ios": [{"app_id": "com.acme.phone", "key_path": "/etc/veil/acme.p8",
 *             "key_id": "ABC123DEFG", "team_id": "TEAMID1234"}],
 *    "android": [{"app_id": "com.acme.phone", "service_account_path": "/etc/veil/acme-fcm.json"}]}
 *
 * This module checks the file's shape only; the key files are read by credential-sets.ts.
 */
export interface IosAppEntry {
  appId: string;
  /** Where it is in the file, for error lines: `ios[0] (com.acme.phone)`. */
  entry: string;
  keyPath: string;
  keyId: string;
  teamId: string;
}

export interface AndroidAppEntry {
  appId: string;
  entry: string;
  serviceAccountPath: string;
}

/** An entry that cannot be used, named so the operator finds it: `ios[1] (com.acme.phone)`. */
export interface EntryProblem {
  platform: PushPlatform;
  /** Null when the entry does not even carry a usable app_id. */
  appId: string | null;
  entry: string;
  problem: string;
}

export type AppsFile =
  | { state: 'missing' }
  /** Not readable, not JSON, not the expected shape: nothing in it can be trusted. */
  | { state: 'unusable'; problem: string }
  | { state: 'read'; ios: IosAppEntry[]; android: AndroidAppEntry[]; problems: EntryProblem[] };

// As the api accepts app_id at registration: reverse-DNS characters, at most 255.
const APP_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;

export function readAppsFile(path: string): AppsFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { state: 'missing' };
    return { state: 'unusable', problem: `cannot read PUSH_APPS_PATH ${path}: ${code ?? 'error'}` };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { state: 'unusable', problem: `PUSH_APPS_PATH ${path} is not JSON` };
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    return { state: 'unusable', problem: `PUSH_APPS_PATH ${path} must hold an object with "ios" and/or "android" lists` };
  }
  const { ios = [], android = [] } = json as { ios?: unknown; android?: unknown };
  for (const [name, list] of [['ios', ios], ['android', android]] as const) {
    if (!Array.isArray(list)) return { state: 'unusable', problem: `PUSH_APPS_PATH ${path}: "${name}" must be a list` };
  }
  const problems: EntryProblem[] = [];
  const iosEntries = checkEntries<IosAppEntry>('ios', ios as unknown[], problems, (e) => {
    const missing = ['key_path', 'key_id', 'team_id'].filter((f) => typeof e[f] !== 'string' || e[f] === '');
    if (missing.length > 0) return `${missing.join(', ')} missing`;
    const wrong = [
      APPLE_ID.test(e.key_id as string) ? null : 'key_id must be 10 letters or digits',
      APPLE_ID.test(e.team_id as string) ? null : 'team_id must be 10 letters or digits',
    ].filter(Boolean);
    if (wrong.length > 0) return wrong.join('; ');
    return { keyPath: e.key_path as string, keyId: e.key_id as string, teamId: e.team_id as string };
  });
  const androidEntries = checkEntries<AndroidAppEntry>('android', android as unknown[], problems, (e) => {
    if (typeof e.service_account_path !== 'string' || e.service_account_path === '') return 'service_account_path missing';
    return { serviceAccountPath: e.service_account_path };
  });
  return { state: 'read', ios: iosEntries, android: androidEntries, problems };
}

/**
 * Each entry checked on its own. An app_id listed twice names two candidate credentials and
 * nobody can tell which one the operator meant: every entry of that app_id is skipped (its
 * registrations then stay "not configured" rather than being pushed with a guess).
 */
function checkEntries<T>(
  platform: PushPlatform,
  list: unknown[],
  problems: EntryProblem[],
  check: (e: Record<string, unknown>) => string | Omit<T, 'appId' | 'entry'>,
): T[] {
  const seen = new Map<string, number[]>();
  const good = new Map<number, T>();
  list.forEach((raw, i) => {
    const entry = `${platform}[${i}]`;
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      problems.push({ platform, appId: null, entry, problem: 'not an object' });
      return;
    }
    const e = raw as Record<string, unknown>;
    const appId = typeof e.app_id === 'string' && APP_ID.test(e.app_id) ? e.app_id : null;
    if (!appId) {
      problems.push({ platform, appId: null, entry, problem: 'app_id missing or not reverse-DNS characters' });
      return;
    }
    // "default" names the APNS_* / FCM_SERVICE_ACCOUNT_PATH credentials (metrics, logs): an app
    // of that name would silently replace them for every registration without an app_id.
    if (appId === 'default') {
      problems.push({ platform, appId: null, entry, problem: 'app_id "default" is reserved for the default credentials' });
      return;
    }
    seen.set(appId, [...(seen.get(appId) ?? []), i]);
    const result = check(e);
    if (typeof result === 'string') problems.push({ platform, appId, entry: `${entry} (${appId})`, problem: result });
    else good.set(i, { ...result, appId, entry: `${entry} (${appId})` } as T);
  });
  for (const [appId, indexes] of seen) {
    if (indexes.length < 2) continue;
    for (const i of indexes) {
      // An entry already reported for its own problem gets no second line.
      if (!good.delete(i)) continue;
      const others = indexes.filter((j) => j !== i).map((j) => `${platform}[${j}]`).join(', ');
      problems.push({ platform, appId, entry: `${platform}[${i}] (${appId})`, problem: `duplicate app_id, also in ${others}` });
    }
  }
  return [...good.values()];
}
