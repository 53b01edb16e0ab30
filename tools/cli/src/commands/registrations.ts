import type { Db } from '@veil/db/client';
import { listRegistrations } from '@veil/db/registrations';
import { tokenHash } from '@veil/log/token-hash';
import type { CliDeps } from '../cli.ts';
import { UsageError } from '../errors.ts';

/** Enough of a token to recognise it on a device screen, never enough to use it. */
export function maskToken(token: string): string {
  const shown = token.length > 16 ? `${token.slice(0, 6)}…${token.slice(-4)}` : '…';
  return `${shown} (hash ${tokenHash(token)})`;
}

export async function registrationsCommand(argv: string[], db: Db, deps: CliDeps): Promise<number> {
  if (argv.length !== 1 || argv[0]!.startsWith('-')) throw new UsageError('registrations takes exactly one JID');
  const jid = argv[0]!;
  const rows = await listRegistrations(db, jid);
  if (rows.length === 0) {
    deps.out.write(`no push registrations for ${jid}\n`);
    return 0;
  }
  for (const r of rows) {
    deps.out.write(
      [
        `${r.jid}  device ${r.device_id}  ${r.platform}${r.app_id ? `  app ${r.app_id}` : ''}${r.apns_environment ? `  apns ${r.apns_environment}` : ''}`,
        `  token ${maskToken(r.push_token)}`,
        ...(r.alert_token ? [`  alert token ${maskToken(r.alert_token)}`] : []),
        `  created ${r.created_at.toISOString()}  updated ${r.updated_at.toISOString()}`,
        `  last push ${r.last_push_at?.toISOString() ?? 'never'}  last wake ${r.last_wake_at ? `${r.last_wake_at.toISOString()} (${r.last_wake_ms} ms after the push)` : 'never'}  unanswered in a row ${r.unanswered_pushes}`,
      ].join('\n') + '\n',
    );
  }
  return 0;
}
