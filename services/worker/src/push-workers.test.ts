import { describe, expect, it } from 'vitest';
import { lockDurationMs } from './push-workers.ts';

describe('job lock duration', () => {
  it('is a quarter of the call TTL, so a crashed worker\'s job comes back while the caller still waits', () => {
    expect(lockDurationMs(30)).toBe(7_500);
    expect(lockDurationMs(20)).toBe(5_000);
  });

  it('stays between 2 s (renewal traffic) and 10 s (a long TTL must not strand a job)', () => {
    expect(lockDurationMs(1)).toBe(2_000);
    expect(lockDurationMs(3600)).toBe(10_000);
  });
});
