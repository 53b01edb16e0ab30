import { describe, expect, it } from 'vitest';
import { ERROR_STATUS, HttpError } from './errors.ts';

describe('error codes', () => {
  it('an HttpError takes its status from the one code table', () => {
    expect(new HttpError('forbidden', 'x').status).toBe(403);
    expect(new HttpError('queue_unavailable', 'x').status).toBe(503);
  });

  it('every code is a client (4xx) or server (5xx) error, and every 5xx is one of the few documented ones', () => {
    for (const status of Object.values(ERROR_STATUS)) expect(status >= 400 && status < 600).toBe(true);
    const server = Object.entries(ERROR_STATUS).filter(([, s]) => s >= 500).map(([c]) => c).sort();
    expect(server).toEqual(['database_unavailable', 'internal_error', 'jwks_unavailable', 'not_ready', 'queue_unavailable']);
  });
});
