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
