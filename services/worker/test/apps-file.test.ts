import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readAppsFile } from '../src/providers/apps-file.ts';

const dir = mkdtempSync(join(tmpdir(), 'veil-apps-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (content: unknown) => {
  const path = join(dir, `apps-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
};

describe('the apps file', () => {
  it('missing means no extra apps; a directory, a non-object or a non-list is unusable as a whole', () => {
    expect(readAppsFile(join(dir, 'none.json'))).toEqual({ state: 'missing' });
    expect(readAppsFile(dir)).toEqual({ state: 'unusable', problem: `cannot read PUSH_APPS_PATH ${dir}: EISDIR` });
    const array = file([]);
    expect(readAppsFile(array)).toEqual({ state: 'unusable', problem: `PUSH_APPS_PATH ${array} must hold an object with "ios" and/or "android" lists` });
    const notList = file({ ios: { app_id: 'x' } });
    expect(readAppsFile(notList)).toEqual({ state: 'unusable', problem: `PUSH_APPS_PATH ${notList}: "ios" must be a list` });
  });

  it('names each broken entry and its problem; good entries are kept; an empty object is no apps', () => {
    expect(readAppsFile(file({}))).toEqual({ state: 'read', ios: [], android: [], problems: [] });
    const result = readAppsFile(file({
      ios: [
        { app_id: 'com.ok', key_path: '/k.p8', key_id: 'ABCDEFGHIJ', team_id: 'TEAM000001', extra: 'ignored' },
        { app_id: 'com.missing', key_id: 'ABCDEFGHIJ' },
        { app_id: 'com.team', key_path: '/k.p8', key_id: 'ABCDEFGHIJ', team_id: 'team-1' },
        { app_id: 'has space', key_path: '/k.p8', key_id: 'ABCDEFGHIJ', team_id: 'TEAM000001' },
      ],
      android: [{ app_id: 'com.ok', service_account_path: '/sa.json' }, { app_id: 'com.nosa' }, null],
    }));
    expect(result).toEqual({
      state: 'read',
      ios: [{ appId: 'com.ok', entry: 'ios[0] (com.ok)', keyPath: '/k.p8', keyId: 'ABCDEFGHIJ', teamId: 'TEAM000001' }],
      android: [{ appId: 'com.ok', entry: 'android[0] (com.ok)', serviceAccountPath: '/sa.json' }],
      problems: [
        { platform: 'ios', appId: 'com.missing', entry: 'ios[1] (com.missing)', problem: 'key_path, team_id missing' },
        { platform: 'ios', appId: 'com.team', entry: 'ios[2] (com.team)', problem: 'team_id must be 10 letters or digits' },
        { platform: 'ios', appId: null, entry: 'ios[3]', problem: 'app_id missing or not reverse-DNS characters' },
        { platform: 'android', appId: 'com.nosa', entry: 'android[1] (com.nosa)', problem: 'service_account_path missing' },
        { platform: 'android', appId: null, entry: 'android[2]', problem: 'not an object' },
      ],
    });
  });

  it('refuses app_id "default": that name is the default credentials\' own', () => {
    const result = readAppsFile(file({ android: [{ app_id: 'default', service_account_path: '/sa.json' }] }));
    expect(result).toMatchObject({ state: 'read', android: [], problems: [{ platform: 'android', appId: null, entry: 'android[0]', problem: 'app_id "default" is reserved for the default credentials' }] });
  });
});
