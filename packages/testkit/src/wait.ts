import { expect, vi } from 'vitest';

/**
 * Retries `check` until it holds (vi.waitFor does the polling and the timeout). For conditions
 * that are a yes/no question; a value to assert on is better polled with expect.poll.
 */
export function waitUntil(check: () => boolean | Promise<boolean>, timeout = 10_000, interval = 50): Promise<void> {
  return vi.waitFor(async () => expect(await check()).toBe(true), { timeout, interval });
}
