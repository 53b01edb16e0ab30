import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { assertMatchesOpenApi, OPENAPI_PATH, openApiDocumentProblems } from './openapi.ts';

const registration = {
  jid: 'alice@example.com',
  device_id: '550e8400-e29b-41d4-a716-446655440000',
  platform: 'ios',
  app_id: null,
  created_at: '2026-01-01T00:00:00.000Z',
  updated_at: '2026-01-01T00:00:00.000Z',
};
const error = { error: { code: 'invalid_request', message: 'jid: is required' } };

describe('docs/openapi.yaml', () => {
  it('is a valid OpenAPI 3.1 document whose response schemas all resolve', async () => {
    expect(await openApiDocumentProblems()).toEqual([]);
  });

  it('the check finds a response without a description and a $ref that resolves nowhere', async () => {
    const doc = parse(readFileSync(OPENAPI_PATH, 'utf8'));
    delete doc.paths['/healthz'].get.responses['200'].description;
    expect(await openApiDocumentProblems(doc)).not.toEqual([]);
    const dangling = parse(readFileSync(OPENAPI_PATH, 'utf8'));
    dangling.components.schemas.CallEndedResponse.properties.status = { $ref: '#/components/schemas/Nope' };
    expect((await openApiDocumentProblems(dangling)).join('\n')).toMatch(/call-ended 200/);
  });
});

describe('assertMatchesOpenApi', () => {
  it('accepts documented answers', () => {
    assertMatchesOpenApi('POST', '/api/v1/push/register', 201, registration);
    assertMatchesOpenApi('DELETE', '/api/v1/push/register', 204, null);
    assertMatchesOpenApi('POST', '/api/v1/push/register', 400, error);
    assertMatchesOpenApi('GET', '/api/v1/push/calls/abc%40host', 200, { call_id: 'abc@host', state: 'ended', reason: 'cancelled' });
    assertMatchesOpenApi('GET', 'http://127.0.0.1:1/metrics?x=1', 200, '# TYPE x counter\n');
    assertMatchesOpenApi('GET', '/nowhere', 404, { error: { code: 'not_found', message: 'no route' } });
  });

  it('rejects a registration that carries its token, a wrong shape, an undocumented status or route', () => {
    expect(() => assertMatchesOpenApi('POST', '/api/v1/push/register', 201, { ...registration, push_token: 'ab'.repeat(32) })).toThrow(/additional/);
    expect(() => assertMatchesOpenApi('POST', '/api/v1/push/register', 201, { ...registration, platform: 'web' })).toThrow(/platform/);
    expect(() => assertMatchesOpenApi('POST', '/api/v1/push/register', 400, { error: 'bad' })).toThrow(/does not match/);
    expect(() => assertMatchesOpenApi('POST', '/api/v1/push/register', 418, error)).toThrow(/not documented/);
    expect(() => assertMatchesOpenApi('POST', '/api/v1/push/call-notify', 202, { status: 'queued', devices: 0 })).toThrow(/devices must be >= 1/);
    expect(() => assertMatchesOpenApi('GET', '/nowhere', 200, {})).toThrow(/no such operation/);
    expect(() => assertMatchesOpenApi('DELETE', '/api/v1/push/register', 204, { removed: true })).toThrow(/without a body/);
  });
});
