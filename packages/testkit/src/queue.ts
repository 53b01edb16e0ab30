import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';

export const TEST_REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A queue name no other test uses, as BullMQ's own suite does. */
export function testQueueName(label = 'test'): string {
  return `${label}-${randomUUID()}`;
}

/** Removes every key of a test queue (jobs, dedup keys, events); for per-platform queues call it for each name. */
export async function obliterateQueue(name: string): Promise<void> {
  const connection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection });
  try {
    await queue.obliterate({ force: true });
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

/** Removes the call and wake state a test's api and workers kept under its queue base. */
export async function dropCallState(base: string): Promise<void> {
  const connection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
  try {
    // Braces are glob metacharacters for SCAN MATCH only inside [...]; escape them anyway.
    const pattern = `\\{${base}:calls\\}:*`;
    let cursor = '0';
    do {
      const [next, keys] = await connection.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      if (keys.length > 0) await connection.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    connection.disconnect();
  }
}

/** Everything a service run under PUSH_QUEUE=`base` leaves in the shared Redis: both platform queues, the maintenance queue, the call state. */
export async function dropQueueBase(base: string): Promise<void> {
  await Promise.all([obliterateQueue(`${base}-ios`), obliterateQueue(`${base}-android`), obliterateQueue(`${base}-maintenance`), dropCallState(base)]);
}
