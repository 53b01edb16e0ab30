import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import type { Config } from '@veil/config/config';
import type { CliDeps } from '../cli.ts';
import { UsageError } from '../errors.ts';
import { callAppCommand } from './call-app.ts';

/** Plays Kamailio: POSTs the call-notify webhook for <callee> to the api on 127.0.0.1:$PORT. */
export async function callCommand(argv: string[], config: Config, deps: CliDeps): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      from: { type: 'string', default: 'veil-cli' },
      name: { type: 'string', default: '' },
      video: { type: 'boolean', default: false },
      domain: { type: 'string' },
      'call-id': { type: 'string' },
      app: { type: 'string' },
    },
  });
  const callee = positionals[0];
  if (!callee || positionals.length > 1) throw new UsageError('call takes exactly one callee username');
  if (values.app !== undefined) {
    if (!values.app) throw new UsageError('--app needs an app_id');
    return callAppCommand(
      {
        callee, app: values.app, domain: values.domain ?? null, callerUsername: values.from, callerName: values.name,
        callId: values['call-id'] ?? `veil-cli-${randomUUID()}`, callType: values.video ? 'video' : 'audio',
      },
      config,
      deps,
    );
  }

  const body = {
    callee_username: callee,
    caller_username: values.from,
    caller_display_name: values.name,
    call_id: values['call-id'] ?? `veil-cli-${randomUUID()}`,
    call_type: values.video ? 'video' : 'audio',
    ...(values.domain ? { callee_domain: values.domain } : {}),
  };
  const url = `http://127.0.0.1:${config.port}/api/v1/push/call-notify`;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (config.callNotifySecret) headers.authorization = `Bearer ${config.callNotifySecret}`;

  const res = await request(url, { method: 'POST', headers, body: JSON.stringify(body), headersTimeout: 5000, bodyTimeout: 5000 });
  const text = await res.body.text();
  deps.out.write(`POST ${url} call_id=${body.call_id}\n${res.statusCode} ${text}\n`);
  return res.statusCode >= 200 && res.statusCode < 300 ? 0 : 1;
}
