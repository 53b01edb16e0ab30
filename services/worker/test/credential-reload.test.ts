import type { ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writeTestApnsKey, type TestApnsKey } from '@veil/testkit/apns-stand-in';
import { waitUntil } from '@veil/testkit/wait';
import { startHarness, type Harness } from './support/harness.ts';
import { spawnWorker } from './support/worker-process.ts';

let h: Harness | undefined;
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  await h?.close();
  h = undefined;
});

const iosApp = (appId: string, key: TestApnsKey, keyPath = key.path) => ({ app_id: appId, key_path: keyPath, key_id: key.keyId, team_id: key.teamId });

describe('SIGHUP reload', () => {
  it('rotates an app .p8 key and a Firebase key while pushes are in flight: none is lost, the next ones use the new keys', async () => {
    h = await startHarness({ ttlSeconds: 20 });
    const harness = h;
    const oldKey = writeTestApnsKey(h.dir, { keyId: 'ROTATEKEY1', teamId: 'TEAMROTATE' });
    const newKey = writeTestApnsKey(h.dir, { keyId: 'ROTATEKEY2', teamId: 'TEAMROTATE' });
    h.apns.addKey(oldKey);
    h.apns.addKey(newKey);
    const saPath = h.fcm.writeServiceAccount(h.dir, { projectId: 'rotate' });
    const app = 'com.acme.rotate';
    writeFileSync(h.env.PUSH_APPS_PATH!, JSON.stringify({ ios: [iosApp(app, oldKey)], android: [{ app_id: app, service_account_path: saPath }] }));
    const w = spawnWorker(h);
    children.push(w.child);
    const port = await w.started;

    const androidBefore = await h.enqueue('android', { v: 2, app_id: app });
    expect((await h.settle(androidBefore.job)).returnvalue).toBe('delivered');
    expect(h.fcm.tokenRequestsFor('rotate')).toBe(1);

    // Three iOS pushes held by Apple for 1.5 s while the keys change under them.
    h.apns.answer(null, { status: 200, delayMs: 1500 });
    const inflight = await Promise.all(Array.from({ length: 3 }, () => harness.enqueue('ios', { v: 2, app_id: app })));
    await waitUntil(() => harness.apns.requests.length >= 3);

    writeFileSync(h.env.PUSH_APPS_PATH!, JSON.stringify({ ios: [iosApp(app, newKey)], android: [{ app_id: app, service_account_path: saPath }] }));
    // A new key for the same service account, written over the old file as a secret mount is.
    writeFileSync(saPath, readFileSync(h.fcm.writeServiceAccount(h.dir, { projectId: 'rotate', newKey: true })));
    w.child.kill('SIGHUP');
    await waitUntil(() => w.lines.some((l) => l.msg === 'Credentials reloaded'));
    h.apns.answer(null, { status: 200 });

    const after = await Promise.all(Array.from({ length: 2 }, () => harness.enqueue('ios', { v: 2, app_id: app })));
    const androidAfter = await h.enqueue('android', { v: 2, app_id: app });
    for (const { job } of [...inflight, ...after, androidAfter]) expect((await h.settle(job)).returnvalue).toBe('delivered');

    const requestsOf = (token: string) => harness.apns.requests.filter((r) => r.token === token);
    // In flight: each sent once, signed with the old key, answered on the old connection.
    for (const { push } of inflight) {
      expect(requestsOf(push.push_token)).toHaveLength(1);
      expect(requestsOf(push.push_token)[0]!.jwtClaims?.kid).toBe(oldKey.keyId);
    }
    for (const { push } of after) expect(requestsOf(push.push_token)[0]!.jwtClaims?.kid).toBe(newKey.keyId);
    expect(requestsOf(after[0]!.push.push_token)[0]!.session).not.toBe(requestsOf(inflight[0]!.push.push_token)[0]!.session);
    // The new service account fetched its own OAuth token.
    expect(h.fcm.tokenRequestsFor('rotate')).toBe(2);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toContain('veil_worker_credential_reloads_total{result="ok"} 1');
    expect(metrics).toContain(`veil_worker_credentials_loaded{platform="ios",app_id="${app}"} 1`);
  });
});

describe('a reload that fails', () => {
  it('keeps the previous credentials and says why: apps file not JSON, gone, a key file unreadable or garbled', async () => {
    h = await startHarness();
    const key = writeTestApnsKey(h.dir, { keyId: 'KEEPKEY001', teamId: 'TEAMKEEP01' });
    h.apns.addKey(key);
    const app = 'com.acme.keep';
    const apps = h.env.PUSH_APPS_PATH!;
    writeFileSync(apps, JSON.stringify({ ios: [iosApp(app, key)] }));
    h.startWorker();
    const harness = h;
    const deliveredWith = async (appId: string | null, kid: string) => {
      const { push, job } = await harness.enqueue('ios', { v: 2, app_id: appId });
      expect((await harness.settle(job)).returnvalue).toBe('delivered');
      expect(harness.apns.requests.find((r) => r.token === push.push_token)!.jwtClaims?.kid).toBe(kid);
    };
    await deliveredWith(app, key.keyId);

    writeFileSync(apps, '{"ios": [');
    expect(await h.providers().reload()).toBe(false);
    expect(h.logsWith('Credentials reload failed, keeping the previous credentials: ').map((l) => l.msg)).toEqual([
      `Credentials reload failed, keeping the previous credentials: PUSH_APPS_PATH ${apps} is not JSON`,
    ]);
    await deliveredWith(app, key.keyId);

    rmSync(apps);
    expect(await h.providers().reload()).toBe(false);
    expect(h.logsWith('Credentials reload failed').at(-1)!.msg).toContain('is gone (write {} to remove every app)');
    await deliveredWith(app, key.keyId);

    // The file is fine again, but the app's key and the default key are not.
    writeFileSync(apps, JSON.stringify({ ios: [iosApp(app, key, join(h.dir, 'nowhere.p8'))] }));
    writeFileSync(h.apnsKey.path, 'not a key');
    expect(await h.providers().reload()).toBe(true);
    expect(h.logsWith('keeps its previous credentials').map((l) => l.msg).sort()).toEqual([
      `Credentials reload: ios com.acme.keep keeps its previous credentials: cannot read key_path ${join(h.dir, 'nowhere.p8')}: ENOENT`,
      `Credentials reload: ios default keeps its previous credentials: APNS_KEY_PATH ${h.apnsKey.path} is not a PEM private key`,
    ]);
    await deliveredWith(app, key.keyId);
    await deliveredWith(null, h.apnsKey.keyId);

    const metrics = await h.metrics.registry.metrics();
    expect(metrics).toContain('veil_worker_credential_reloads_total{result="failed"} 2');
    expect(metrics).toContain('veil_worker_credential_reloads_total{result="ok"} 1');
  });
});
