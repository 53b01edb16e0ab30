import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { apiSuite, call } from './support/api.ts';
import { hsToken } from './support/tokens.ts';

const alice = hsToken({ jid: 'alice@example.com' });

const suite = apiSuite('api_edges');

/**
 * One request written byte for byte: fetch and node:http add Content-Length or Transfer-Encoding
 * on their own, and a request with neither (no body at all) is exactly the case under test.
 */
async function rawRequest(method: string, path: string, headers: Record<string, string>): Promise<{ status: number; type: string; body: any }> {
  const { hostname, port } = new URL(suite.api.url);
  const socket = connect(Number(port), hostname);
  const head = [`${method} ${path} HTTP/1.1`, `Host: ${hostname}`, 'Connection: close', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  socket.write(`${head.join('\r\n')}\r\n\r\n`);
  let text = '';
  for await (const chunk of socket) text += chunk;
  const [statusLine, ...rest] = text.slice(0, text.indexOf('\r\n\r\n')).split('\r\n');
  const type = rest.find((l) => /^content-type:/i.test(l))?.split(':')[1]?.trim() ?? '';
  const body = text.slice(text.indexOf('\r\n\r\n') + 4);
  return { status: Number(statusLine!.split(' ')[1]), type, body: body && type.startsWith('application/json') ? JSON.parse(body) : body };
}

describe('Content-Type application/json and no body at all', () => {
  it('call-notify: 400 naming the missing field, not 415', async () => {
    const res = await rawRequest('POST', '/api/v1/push/call-notify', { 'Content-Type': 'application/json' });
    expect(res).toMatchObject({ status: 400, body: { error: { code: 'invalid_request', message: 'callee_username: is required' } } });
  });

  it('register (POST and DELETE): 400 naming the missing field, not 415', async () => {
    for (const method of ['POST', 'DELETE']) {
      const res = await rawRequest(method, '/api/v1/push/register', { 'Content-Type': 'application/json; charset=utf-8', Authorization: `Bearer ${alice}` });
      expect(res).toMatchObject({ status: 400, body: { error: { code: 'invalid_request', message: 'jid: is required' } } });
    }
  });

  it('text/plain or no Content-Type without a body stays 415', async () => {
    for (const headers of [{ 'Content-Type': 'text/plain' }, {}] as Record<string, string>[]) {
      const res = await rawRequest('POST', '/api/v1/push/call-notify', headers);
      expect(res).toMatchObject({ status: 415, body: { error: { code: 'unsupported_media_type' } } });
    }
  });
});

describe('methods without a route get the JSON 404', () => {
  it('OPTIONS on every known path is 404 not_found in JSON (no text/plain Allow list)', async () => {
    for (const path of ['/api/v1/push/register', '/api/v1/push/call-notify', '/healthz', '/readyz', '/metrics', '/nowhere']) {
      const res = await rawRequest('OPTIONS', path, {});
      expect(res.type).toMatch(/^application\/json/);
      expect(res).toMatchObject({ status: 404, body: { error: { code: 'not_found', message: expect.any(String) } } });
    }
  });

  it('methods a route does not take are 404 not_found in JSON', async () => {
    const routes: [string, string[]][] = [
      ['/api/v1/push/register', ['PUT', 'PATCH']],
      ['/api/v1/push/call-notify', ['GET', 'PUT', 'PATCH', 'DELETE']],
      ['/api/v1/push/call-ended', ['GET', 'PUT', 'PATCH', 'DELETE']],
      ['/api/v1/push/registered', ['GET', 'PUT', 'PATCH', 'DELETE']],
      ['/api/v1/push/calls/c1', ['POST', 'PUT', 'DELETE']],
    ];
    for (const [path, methods] of routes) {
      for (const method of methods) {
        const res = await call(`${suite.api.url}${path}`, { method, ...(method === 'GET' ? {} : { body: {} }) });
        expect(res, `${method} ${path}`).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
      }
    }
  });
});
