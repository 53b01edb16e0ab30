/**
 * The baseline the benchmark compares against: what a first, obvious implementation of the
 * worker looks like. BullMQ at its default concurrency (1), apns2 with its defaults (it can only
 * reach port 443, so the bench runs an APNs stand-in there), and FCM through a plain fetch per
 * push with a cached OAuth token. Same queues, same jobs, same stand-ins as the real worker.
 */
import { createSign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ApnsClient, Notification, PushType, Priority } from 'apns2';
import { Worker } from 'bullmq';
import { parsePushJob, pushQueueName } from '@veil/queue/contracts';

const env = process.env;
const connection = { url: env.REDIS_URL ?? 'redis://127.0.0.1:6379', maxRetriesPerRequest: null };
// The same PUSH_QUEUE the real worker reads (the stack sets it).
const queueBase = env.PUSH_QUEUE ?? 'veil-push';

const apns = new ApnsClient({
  team: env.APNS_TEAM_ID!,
  keyId: env.APNS_KEY_ID!,
  signingKey: readFileSync(env.APNS_KEY_PATH!),
  defaultTopic: `${env.APNS_BUNDLE_ID}.voip`,
  host: env.NAIVE_APNS_HOSTNAME ?? 'localhost',
});

const account = JSON.parse(readFileSync(env.FCM_SERVICE_ACCOUNT_PATH!, 'utf8')) as {
  project_id: string;
  token_uri: string;
  client_email: string;
  private_key: string;
};

let accessToken: { value: string; until: number } | null = null;
/** OAuth2 JWT-bearer grant (RFC 7523), fetched once and reused until near expiry. */
async function bearer(): Promise<string> {
  if (accessToken && accessToken.until > Date.now()) return accessToken.value;
  const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64({
    iss: account.client_email,
    scope: 'https://www.googleapis.com/auth/firebase.messaging',
    aud: account.token_uri,
    iat: now,
    exp: now + 3600,
  })}`;
  const assertion = `${unsigned}.${createSign('RSA-SHA256').update(unsigned).sign(account.private_key, 'base64url')}`;
  const res = await fetch(account.token_uri, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }),
  });
  const body = (await res.json()) as { access_token: string; expires_in: number };
  accessToken = { value: body.access_token, until: Date.now() + body.expires_in * 500 };
  return accessToken.value;
}

const ios = new Worker(
  pushQueueName(queueBase, 'ios'),
  async (job) => {
    const push = parsePushJob(job.data);
    await apns.send(
      new Notification(push.push_token, {
        type: PushType.voip,
        priority: Priority.immediate,
        expiration: Math.floor(push.deadline / 1000),
        data: { caller_name: push.caller_name, call_id: push.call_id, call_type: push.call_type },
      }),
    );
  },
  { connection, settings: { backoffStrategy: () => 1000 } },
);

const android = new Worker(
  pushQueueName(queueBase, 'android'),
  async (job) => {
    const push = parsePushJob(job.data);
    const res = await fetch(`${env.FCM_API_URL}/v1/projects/${account.project_id}/messages:send`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await bearer()}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        message: {
          token: push.push_token,
          data: { type: 'call', caller_name: push.caller_name, call_id: push.call_id, call_type: push.call_type },
          android: { priority: 'high', ttl: `${Math.max(1, Math.floor((push.deadline - Date.now()) / 1000))}s` },
        },
      }),
    });
    if (!res.ok) throw new Error(`FCM ${res.status}`);
    await res.arrayBuffer();
  },
  { connection, settings: { backoffStrategy: () => 1000 } },
);

// The bench's jobs carry our custom backoff type: without a strategy for it BullMQ cannot fail a
// job cleanly (it stays active and resurfaces as stalled in later phases). A failure is printed.
for (const w of [ios, android]) w.on('failed', (job, err) => console.error(`naive ${w.name} job ${job?.id} failed: ${err.message}`));

process.on('SIGTERM', async () => {
  await Promise.all([ios.close(), android.close()]);
  await apns.close();
  process.exit(0);
});
