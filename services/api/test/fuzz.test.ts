import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { apiSuite, call } from './support/api.ts';
import { hsToken } from './support/tokens.ts';

const suite = apiSuite('api_fuzz');

const token = hsToken({ jid: 'alice@example.com' }, { expiresIn: '1h' });

// Values that stress the validators: near-valid strings as well as wrong types.
const value = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom('alice@example.com', 'ALICE@example.com', 'ios', 'android', 'audio', 'video', 'ab'.repeat(32), '550e8400-e29b-41d4-a716-446655440000', ''),
  fc.string({ unit: 'grapheme', maxLength: 300 }),
  fc.stringMatching(/^[0-9a-f]{0,210}$/),
);
const registerBody = fc.record(
  { jid: value, device_id: value, platform: value, push_token: value, app_id: value, extra: value },
  { requiredKeys: [] },
);
const notifyBody = fc.record(
  { callee_username: value, caller_username: value, caller_display_name: value, call_id: value, call_type: value, callee_domain: value },
  { requiredKeys: [] },
);
const anyBody = (shaped: fc.Arbitrary<unknown>) => fc.oneof(shaped, fc.jsonValue());

describe('random bodies never get a 5xx', () => {
  it('POST /api/v1/push/register', async () => {
    await fc.assert(
      fc.asyncProperty(anyBody(registerBody), async (body) => {
        const res = await call(`${suite.api.url}/api/v1/push/register`, { body, token });
        expect(res.status).toBeLessThan(500);
        if (res.status >= 400) expect(res.body.error).toEqual({ code: expect.any(String), message: expect.any(String) });
      }),
      { numRuns: 300 },
    );
  });

  it('DELETE /api/v1/push/register', async () => {
    await fc.assert(
      fc.asyncProperty(anyBody(registerBody), async (body) => {
        const res = await call(`${suite.api.url}/api/v1/push/register`, { method: 'DELETE', body, token });
        expect(res.status).toBeLessThan(500);
      }),
      { numRuns: 150 },
    );
  });

  it('POST /api/v1/push/call-notify', async () => {
    await fc.assert(
      fc.asyncProperty(anyBody(notifyBody), async (body) => {
        const res = await call(`${suite.api.url}/api/v1/push/call-notify`, { body });
        expect(res.status).toBeLessThan(500);
        expect([200, 202, 400]).toContain(res.status);
      }),
      { numRuns: 300 },
    );
  });

  it('arbitrary bytes as a JSON body', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 200 }), async (raw) => {
        const res = await call(`${suite.api.url}/api/v1/push/call-notify`, { raw });
        expect(res.status).toBeLessThan(500);
      }),
      { numRuns: 150 },
    );
  });
});
