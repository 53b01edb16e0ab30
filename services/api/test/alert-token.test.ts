import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { apiSuite, call } from './support/api.ts';
import { hsToken } from './support/tokens.ts';

// iOS apps register their ordinary remote-notification token beside the VoIP token, for
// missed-call alerts. It is checked like an iOS token, stored, replaced by each registration,
// ignored for Android, and never answered or logged whole.

const suite = apiSuite('api_alert');

const token = hsToken({ jid: 'alice@example.com' });
const register = (body: Record<string, unknown>) => call(`${suite.api.url}/api/v1/push/register`, { body, token });
const stored = async (deviceId: string) =>
  (await suite.db.sql<{ alert_token: string | null }[]>`SELECT alert_token FROM push_registrations WHERE device_id = ${deviceId}`)[0];
const ios = (over: Record<string, unknown>) => ({ jid: 'alice@example.com', device_id: randomUUID(), platform: 'ios', push_token: 'ab'.repeat(32), ...over });

describe('alert_token at registration', () => {
  it('is stored lower-case, never answered, and replaced or removed by the next registration', async () => {
    const body = ios({ alert_token: 'CD'.repeat(32) });
    const res = await register(body);
    expect(res.status).toBe(201);
    expect(JSON.stringify(res.body).toLowerCase()).not.toContain('cd'.repeat(32));
    expect(await stored(body.device_id as string)).toEqual({ alert_token: 'cd'.repeat(32) });

    await register({ ...body, alert_token: 'ef'.repeat(32) });
    expect(await stored(body.device_id as string)).toEqual({ alert_token: 'ef'.repeat(32) });
    await register({ ...body, alert_token: undefined });
    expect(await stored(body.device_id as string)).toEqual({ alert_token: null });
    expect(suite.api.rawLogs().toLowerCase()).not.toContain('cd'.repeat(32));
  });

  it('that is not an even-length hex string of 64 to 200 characters is a 400 and stores nothing', async () => {
    for (const alert_token of ['xyz', 'ab'.repeat(31), `${'ab'.repeat(32)}a`, 'ab'.repeat(101), 42]) {
      const body = ios({ alert_token });
      const res = await register(body);
      expect(res.status).toBe(400);
      expect(res.body.error.message).toMatch(/^alert_token: /);
      expect(await stored(body.device_id as string)).toBeUndefined();
    }
  });

  it('is ignored for Android, whatever its length; a 4096-character FCM token is stored', async () => {
    const body = { jid: 'alice@example.com', device_id: randomUUID(), platform: 'android', push_token: 'f'.repeat(4096), alert_token: `not hex ${'x'.repeat(300)}` };
    expect((await register(body)).status).toBe(201);
    expect(await stored(body.device_id)).toEqual({ alert_token: null });
  });

  it('moves with the phone: registered by another user, it is cleared from the old owner', async () => {
    const alert = 'ab12'.repeat(16);
    const first = ios({ alert_token: alert });
    expect((await register(first)).status).toBe(201);
    const bob = hsToken({ jid: 'bob@example.com' });
    const second = { ...ios({ alert_token: alert, push_token: 'cd34'.repeat(16) }), jid: 'bob@example.com' };
    expect((await call(`${suite.api.url}/api/v1/push/register`, { body: second, token: bob })).status).toBe(201);
    expect(await stored(first.device_id as string)).toEqual({ alert_token: null });
    expect(await stored(second.device_id as string)).toEqual({ alert_token: alert });
  });
});
