import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '@veil/config/config';
import { writeTestApnsKey, type TestApnsKey } from '@veil/testkit/apns-stand-in';
import { captureLogs } from '@veil/testkit/logs';
import { createWorkerMetrics } from '../src/metrics.ts';
import { createProviderSet } from '../src/providers/provider-set.ts';
import { registrationToken, startHarness, type Harness } from './support/harness.ts';

// Two white-label iOS apps of two Apple teams, two Android apps of two Firebase projects, and
// broken entries beside them. The APNs stand-in refuses a key's JWT for another team's topic.
let h: Harness;
let keyA: TestApnsKey;
let keyB: TestApnsKey;
const appsFile = () => h.env.PUSH_APPS_PATH!;

beforeAll(async () => {
  h = await startHarness();
  keyA = writeTestApnsKey(h.dir, { keyId: 'AAAAAAKEY1', teamId: 'TEAMAAAAAA', topics: ['com.acme.a.voip'] });
  keyB = writeTestApnsKey(h.dir, { keyId: 'BBBBBBKEY1', teamId: 'TEAMBBBBBB', topics: ['com.acme.b.voip'] });
  h.apns.addKey(keyA);
  h.apns.addKey(keyB);
  const saA = h.fcm.writeServiceAccount(h.dir, { projectId: 'acme-a' });
  const saB = h.fcm.writeServiceAccount(h.dir, { projectId: 'acme-b' });
  writeFileSync(appsFile(), JSON.stringify({
    ios: [
      { app_id: 'com.acme.a', key_path: keyA.path, key_id: keyA.keyId, team_id: keyA.teamId },
      { app_id: 'com.acme.b', key_path: keyB.path, key_id: keyB.keyId, team_id: keyB.teamId },
      { app_id: 'com.acme.nokey', key_path: join(h.dir, 'missing.p8'), key_id: 'CCCCCCKEY1', team_id: 'TEAMCCCCCC' },
      { app_id: 'com.acme.badid', key_path: keyA.path, key_id: 'short', team_id: keyA.teamId },
      { app_id: 'com.acme.twice', key_path: keyA.path, key_id: keyA.keyId, team_id: keyA.teamId },
      { app_id: 'com.acme.twice', key_path: keyB.path, key_id: keyB.keyId, team_id: keyB.teamId },
      'not an entry',
    ],
    android: [
      { app_id: 'com.acme.a', service_account_path: saA },
      { app_id: 'com.acme.b', service_account_path: saB },
      { app_id: 'com.acme.nosa', service_account_path: join(h.dir, 'missing.json') },
    ],
  }));
  h.startWorker();
});
afterAll(() => h.close());
beforeEach(() => {
  h.apns.reset();
  h.fcm.reset();
});

describe('several apps (PUSH_APPS_PATH)', () => {
  it('two iOS apps of different teams are signed with their own keys and pushed to their own topics', async () => {
    const a = await h.enqueue('ios', { v: 2, app_id: 'com.acme.a' });
    const b = await h.enqueue('ios', { v: 2, app_id: 'com.acme.b' });
    expect((await h.settle(a.job)).returnvalue).toBe('delivered');
    expect((await h.settle(b.job)).returnvalue).toBe('delivered');
    const byToken = (t: string) => h.apns.requests.find((r) => r.token === t)!;
    expect(byToken(a.push.push_token)).toMatchObject({ jwtClaims: { kid: keyA.keyId, iss: keyA.teamId }, problems: [] });
    expect(byToken(a.push.push_token).headers['apns-topic']).toBe('com.acme.a.voip');
    expect(byToken(b.push.push_token)).toMatchObject({ jwtClaims: { kid: keyB.keyId, iss: keyB.teamId }, problems: [] });
    expect(byToken(b.push.push_token).headers['apns-topic']).toBe('com.acme.b.voip');
    // Each credential set has its own connection.
    expect(byToken(a.push.push_token).session).not.toBe(byToken(b.push.push_token).session);
  });

  it('two Android apps reach their own Firebase projects with their own OAuth tokens', async () => {
    const a = await h.enqueue('android', { v: 2, app_id: 'com.acme.a' });
    const b = await h.enqueue('android', { v: 2, app_id: 'com.acme.b' });
    expect((await h.settle(a.job)).returnvalue).toBe('delivered');
    expect((await h.settle(b.job)).returnvalue).toBe('delivered');
    const reqA = h.fcm.requests.find((r) => r.body?.message?.token === a.push.push_token)!;
    const reqB = h.fcm.requests.find((r) => r.body?.message?.token === b.push.push_token)!;
    expect(reqA.projectId).toBe('acme-a');
    expect(reqB.projectId).toBe('acme-b');
    expect(reqA.authorization).not.toBe(reqB.authorization);
    expect(h.fcm.tokenRequestsFor('acme-a')).toBe(1);
    expect(h.fcm.tokenRequestsFor('acme-b')).toBe(1);
  });

  it('registrations of apps the file does not list use the default credentials', async () => {
    const ios = await h.enqueue('ios', { v: 2, app_id: 'com.unlisted.app' });
    const iosNoApp = await h.enqueue('ios', { v: 2, app_id: null });
    const android = await h.enqueue('android', { v: 2, app_id: 'com.unlisted.app' });
    for (const { job } of [ios, iosNoApp, android]) expect((await h.settle(job)).returnvalue).toBe('delivered');
    expect(h.apns.requests.map((r) => r.jwtClaims?.kid)).toEqual([h.apnsKey.keyId, h.apnsKey.keyId]);
    expect(h.apns.requests.map((r) => r.headers['apns-topic']).sort()).toEqual(['com.example.veil.voip', 'com.unlisted.app.voip']);
    expect(h.fcm.requests.map((r) => r.projectId)).toEqual([h.fcm.projectId]);
  });

  it('each broken entry is skipped with one error line naming it, and its registrations are kept, "not configured"', async () => {
    const skipped = h.logs.filter((l) => l.level === 50 && String(l.msg).startsWith('Apps file entry skipped: '));
    const lines = skipped.map((l) => String(l.msg)).sort();
    expect(lines).toEqual([
      `Apps file entry skipped: android[2] (com.acme.nosa): cannot read service_account_path ${join(h.dir, 'missing.json')}: ENOENT`,
      'Apps file entry skipped: ios[3] (com.acme.badid): key_id must be 10 letters or digits',
      'Apps file entry skipped: ios[4] (com.acme.twice): duplicate app_id, also in ios[5]',
      'Apps file entry skipped: ios[5] (com.acme.twice): duplicate app_id, also in ios[4]',
      'Apps file entry skipped: ios[6]: not an object',
      `Apps file entry skipped: ios[2] (com.acme.nokey): cannot read key_path ${join(h.dir, 'missing.p8')}: ENOENT`,
    ].sort());
    // A broken app is not pushed with the default credentials: another team's key or another
    // Firebase project would be refused, and FCM's SENDER_ID_MISMATCH would purge the device.
    const nokey = await h.enqueue('ios', { v: 2, app_id: 'com.acme.nokey' });
    const nosa = await h.enqueue('android', { v: 2, app_id: 'com.acme.nosa' });
    expect((await h.settle(nokey.job)).returnvalue).toBe('not_configured');
    expect((await h.settle(nosa.job)).returnvalue).toBe('not_configured');
    expect(await registrationToken(h.db, nokey.push.jid, nokey.push.device_id)).toBe(nokey.push.push_token);
    expect(await registrationToken(h.db, nosa.push.jid, nosa.push.device_id)).toBe(nosa.push.push_token);
    expect(h.apns.requests).toHaveLength(0);
    expect(h.fcm.requests).toHaveLength(0);
  });

  it('/metrics says which credentials are loaded and counts pushes per known app', async () => {
    const a = await h.enqueue('ios', { v: 2, app_id: 'com.acme.a' });
    await h.settle(a.job);
    const text = await h.metrics.registry.metrics();
    for (const line of [
      'veil_worker_credentials_loaded{platform="ios",app_id="default"} 1',
      'veil_worker_credentials_loaded{platform="ios",app_id="com.acme.a"} 1',
      'veil_worker_credentials_loaded{platform="ios",app_id="com.acme.nokey"} 0',
      'veil_worker_credentials_loaded{platform="ios",app_id="com.acme.twice"} 0',
      'veil_worker_credentials_loaded{platform="android",app_id="com.acme.b"} 1',
      'veil_worker_credentials_loaded{platform="android",app_id="com.acme.nosa"} 0',
    ]) {
      expect(text).toContain(line);
    }
    expect(text).toMatch(/veil_worker_pushes_total\{platform="ios",outcome="delivered",app_id="com\.acme\.a"\} [1-9]/);
    // Unlisted app ids never become label values.
    expect(text).not.toContain('app_id="com.unlisted.app"');
  });
});

describe('an unusable apps file', () => {
  it('not JSON at start: one error line, the default credentials still work', async () => {
    const path = join(h.dir, 'broken-apps.json');
    writeFileSync(path, '{"ios": [');
    const captured = captureLogs('worker');
    const set = createProviderSet({ config: loadConfig({ ...h.env, PUSH_APPS_PATH: path }), log: captured.log, metrics: createWorkerMetrics() });
    try {
      expect(captured.lines().filter((l) => (l.level as number) >= 50).map((l) => l.msg)).toEqual([`Apps file unusable: PUSH_APPS_PATH ${path} is not JSON`]);
      expect(set.forJob({ platform: 'ios', app_id: 'com.acme.a' } as never)).toMatchObject({ app: 'default' });
      expect(set.forJob({ platform: 'ios', app_id: 'com.acme.a' } as never).provider).not.toBeNull();
    } finally {
      await set.close();
      rmSync(path);
    }
  });
});
