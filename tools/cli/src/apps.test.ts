import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upsertRegistration } from '@veil/db/registrations';
import { pushQueueName } from '@veil/queue/contracts';
import { createRedis } from '@veil/queue/redis';
import { writeTestApnsKey } from '@veil/testkit/apns-stand-in';
import { createTestDb, type TestDb } from '@veil/testkit/db';
import { startFcmStandIn, type FcmStandIn } from '@veil/testkit/fcm-stand-in';
import { obliterateQueue, testQueueName, TEST_REDIS_URL } from '@veil/testkit/queue';
import { runCli } from './cli.ts';

function capture() {
  const io = { stdout: '', stderr: '' };
  return { io, out: { write: (t: string) => (io.stdout += t) }, err: { write: (t: string) => (io.stderr += t) } };
}

let dir: string;
let fcm: FcmStandIn;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'veil-cli-apps-'));
  fcm = await startFcmStandIn();
});
afterAll(async () => {
  await fcm.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('veil apps', () => {
  it('lists the default and every app credential with whether it loads, never a secret; exit 1 when one does not', async () => {
    const key = writeTestApnsKey(dir, { keyId: 'DEFAULTK01', teamId: 'TEAMDEF001' });
    const appKey = writeTestApnsKey(dir, { keyId: 'APPKEY0001', teamId: 'TEAMAPP001' });
    const sa = fcm.writeServiceAccount(dir);
    const appSa = fcm.writeServiceAccount(dir, { projectId: 'acme-cli' });
    const appsPath = join(dir, 'apps.json');
    writeFileSync(appsPath, JSON.stringify({
      ios: [
        { app_id: 'com.acme.cli', key_path: appKey.path, key_id: appKey.keyId, team_id: appKey.teamId },
        { app_id: 'com.acme.broken', key_path: join(dir, 'none.p8'), key_id: 'BROKENKEY1', team_id: 'TEAMAPP001' },
      ],
      android: [{ app_id: 'com.acme.cli', service_account_path: appSa }],
    }));
    const env = {
      APNS_KEY_PATH: key.path, APNS_KEY_ID: key.keyId, APNS_TEAM_ID: key.teamId, APNS_BUNDLE_ID: 'com.example.veil',
      APNS_PRODUCTION_HOST: 'prod.proxy:8443', FCM_SERVICE_ACCOUNT_PATH: sa, PUSH_APPS_PATH: appsPath,
    };
    const c = capture();
    expect(await runCli(['apps'], { env, ...c })).toBe(1);
    const lines = c.io.stdout.split('\n');
    expect(lines).toContain('APNs gateways: sandbox api.sandbox.push.apple.com, production prod.proxy:8443; default sandbox');
    expect(lines).toContain(`apps file ${appsPath}: read`);
    expect(lines.find((l) => l.startsWith('ios') && l.includes(' default '))).toMatch(/loaded: key DEFAULTK01, team TEAMDEF001, topic com\.example\.veil\.voip$/);
    expect(lines.find((l) => l.includes('com.acme.cli') && l.startsWith('ios'))).toMatch(/loaded: key APPKEY0001, team TEAMAPP001, topic com\.acme\.cli\.voip$/);
    expect(lines.find((l) => l.includes('com.acme.broken'))).toMatch(/NOT LOADED: ios\[1\] \(com\.acme\.broken\): cannot read key_path .*none\.p8: ENOENT$/);
    expect(lines.find((l) => l.includes('com.acme.cli') && l.startsWith('android'))).toMatch(/loaded: project acme-cli, account push@acme-cli\.iam\.gserviceaccount\.com$/);
    // No key material: neither the PEM body of a .p8 nor the service account's private key.
    for (const secret of [readFileSync(key.path, 'utf8'), readFileSync(appKey.path, 'utf8'), (JSON.parse(readFileSync(appSa, 'utf8')) as { private_key: string }).private_key]) {
      const body = secret.split('\n')[1]!;
      expect(c.io.stdout).not.toContain(body);
    }

    // Fixed: exit 0. No apps file at all: defaults only, also exit 0.
    writeFileSync(appsPath, JSON.stringify({ ios: [{ app_id: 'com.acme.cli', key_path: appKey.path, key_id: appKey.keyId, team_id: appKey.teamId }] }));
    expect(await runCli(['apps'], { env, ...capture() })).toBe(0);
    const none = capture();
    expect(await runCli(['apps'], { env: { ...env, PUSH_APPS_PATH: join(dir, 'nothing.json') }, ...none })).toBe(0);
    expect(none.io.stdout).toContain('not found (default credentials only)');
  });
});

describe('veil call --app', () => {
  let db: TestDb;
  const queueBase = testQueueName('cli');
  const connection = createRedis(TEST_REDIS_URL, 'worker');
  const queue = (platform: 'ios' | 'android') => new Queue(pushQueueName(queueBase, platform), { connection });
  const acmePhone = { jid: 'bob@example.com', device_id: randomUUID(), platform: 'ios' as const, push_token: 'ab'.repeat(32), app_id: 'com.acme.phone', apns_environment: 'production' as const };
  const acmeAndroid = { jid: 'bob@example.com', device_id: randomUUID(), platform: 'android' as const, push_token: 'fcm:bob-acme', app_id: 'com.acme.phone' };
  const otherApp = { jid: 'bob@example.com', device_id: randomUUID(), platform: 'ios' as const, push_token: 'cd'.repeat(32), app_id: 'com.other.app' };

  beforeAll(async () => {
    db = await createTestDb('cli_call_app');
    for (const r of [acmePhone, acmeAndroid, otherApp]) await upsertRegistration(db, r);
  });
  afterAll(async () => {
    await db.drop();
    await Promise.all([obliterateQueue(pushQueueName(queueBase, 'ios')), obliterateQueue(pushQueueName(queueBase, 'android'))]);
    connection.disconnect();
  });

  it("queues pushes only for the callee's devices of that app, carrying the job contract", async () => {
    const c = capture();
    const code = await runCli(['call', 'bob', '--app', 'com.acme.phone', '--name', 'Alice', '--call-id', 'cli-app-1'], {
      env: { REDIS_URL: TEST_REDIS_URL, PUSH_TTL_SECONDS: '20', PUSH_QUEUE: queueBase }, ...c, openDb: () => db,
    });
    expect(code).toBe(0);
    const ios = queue('ios');
    const android = queue('android');
    try {
      const iosJobs = await ios.getJobs(['waiting']);
      const androidJobs = await android.getJobs(['waiting']);
      expect(iosJobs.map((j) => j.data.device_id)).toEqual([acmePhone.device_id]);
      expect(iosJobs[0]!.data).toMatchObject({ v: 2, app_id: 'com.acme.phone', apns_environment: 'production', caller_name: 'Alice', call_id: 'cli-app-1' });
      expect(iosJobs[0]!.data.deadline - iosJobs[0]!.data.enqueued_at).toBe(20_000);
      expect(androidJobs.map((j) => j.data.device_id)).toEqual([acmeAndroid.device_id]);
    } finally {
      await Promise.all([ios.close(), android.close()]);
    }
    expect(c.io.stdout).toContain('2 push(es) queued');
    expect(c.io.stdout).not.toContain(acmePhone.push_token);
  });

  it('an app the callee has no device of: exit 1, nothing queued', async () => {
    const c = capture();
    const code = await runCli(['call', 'bob', '--app', 'com.nobody', '--call-id', 'cli-app-2'], {
      env: { REDIS_URL: TEST_REDIS_URL, PUSH_QUEUE: queueBase }, ...c, openDb: () => db,
    });
    expect(code).toBe(1);
    expect(c.io.stderr).toContain('bob has no registrations of app com.nobody');
    const ios = queue('ios');
    try {
      expect((await ios.getJobs(['waiting'])).map((j) => j.data.call_id)).not.toContain('cli-app-2');
    } finally {
      await ios.close();
    }
  });
});
