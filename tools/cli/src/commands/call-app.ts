import { Queue } from 'bullmq';
import type { Config } from '@veil/config/config';
import { createDb } from '@veil/db/client';
import { findCalleeDevices } from '@veil/db/registrations';
import { tokenHash } from '@veil/log/token-hash';
import { PUSH_JOB, pushJobOptions, pushJobSchema, pushQueueName, type PushPlatform } from '@veil/queue/contracts';
import { createCallState, endedDeviceMeta } from '@veil/queue/call-state';
import { createRedis, queueOptions } from '@veil/queue/redis';
import type { CliDeps } from '../cli.ts';

export interface AppCall {
  callee: string;
  app: string;
  domain: string | null;
  callerUsername: string;
  callerName: string;
  callId: string;
  callType: 'audio' | 'video';
}

/**
 * `veil call <callee> --app <app_id>`: rings only the callee's devices registered with that
 * app, to try one app's credentials end to end. call-notify has no app filter (Kamailio knows
 * no apps), so this queues the push jobs itself, exactly as the api would for those devices
 * (same job schema, options and dedup id), and the worker sends them.
 */
export async function callAppCommand(call: AppCall, config: Config, deps: CliDeps): Promise<number> {
  const db = deps.openDb ? deps.openDb(config) : createDb({ url: config.databaseUrl, max: 1, connectTimeoutSeconds: 3, queryTimeoutMs: 5000 });
  const connection = createRedis(config.redis, 'producer', { enableOfflineQueue: true });
  const calls = createCallState(connection, { base: config.pushQueue, ttlSeconds: config.pushTtlSeconds });
  const queues = new Map<PushPlatform, Queue>();
  try {
    const devices = (await findCalleeDevices(db, call.callee, call.domain ?? config.sipDomain)).filter((d) => d.app_id === call.app);
    if (devices.length === 0) {
      deps.err.write(`veil call: ${call.callee} has no registrations of app ${call.app}\n`);
      return 1;
    }
    const now = Date.now();
    const caller = { caller_name: call.callerName || call.callerUsername, call_id: call.callId, call_type: call.callType };
    // Recorded like call-notify does, so call-ended withdraws it and GET /calls knows it.
    const live = new Set((await calls.begin(call.callId, call.callee.toLowerCase(), endedDeviceMeta(devices, caller))).map((d) => d.device_id));
    for (const d of devices.filter((x) => live.has(x.device_id))) {
      const job = pushJobSchema.parse({
        v: 2, platform: d.platform, jid: d.jid, device_id: d.device_id, push_token: d.push_token, app_id: d.app_id,
        apns_environment: d.apns_environment, caller_name: call.callerName || call.callerUsername, call_id: call.callId,
        call_type: call.callType, enqueued_at: now, deadline: now + config.pushTtlSeconds * 1000,
      });
      let queue = queues.get(d.platform);
      if (!queue) {
        const name = pushQueueName(config.pushQueue, d.platform);
        queues.set(d.platform, (queue = new Queue(name, { connection, ...queueOptions(config.redis, name) })));
      }
      await queue.add(PUSH_JOB, job, pushJobOptions(job, config.pushMaxAttempts, config.pushTtlSeconds));
      deps.out.write(`queued ${d.platform} push for ${d.jid} device ${d.device_id} (app ${call.app}, token hash ${tokenHash(d.push_token)})\n`);
    }
    deps.out.write(`call_id=${call.callId}: ${devices.length} push(es) queued; follow the worker's log lines for this call_id\n`);
    return 0;
  } finally {
    await Promise.all([...queues.values()].map((q) => q.close()));
    connection.disconnect();
    if (!deps.openDb) await db.close();
  }
}
