import { ConfigError, loadConfig, type Config } from '@veil/config/config';
import { createDb, type Db } from '@veil/db/client';
import { appsCommand } from './commands/apps.ts';
import { callCommand } from './commands/call.ts';
import { registrationsCommand } from './commands/registrations.ts';
import { tokenCommand } from './commands/token.ts';
import { UsageError } from './errors.ts';

export interface CliDeps {
  env: Record<string, string | undefined>;
  out: { write(text: string): unknown };
  err: { write(text: string): unknown };
  /** Tests hand in a database of their own; the real CLI opens DATABASE_URL. */
  openDb?: (config: Config) => Db;
}

export const USAGE = `usage: pnpm veil <command>
  token <jid> [--ttl 1h]                        mint a dev HS256 JWT from JWT_SECRET
  registrations <jid>                           list a JID's push registrations (tokens masked)
  call <callee> [--from alice] [--name Alice] [--video] [--domain example.com] [--call-id ID]
                                                POST a test call-notify to http://127.0.0.1:$PORT
  call <callee> --app <app_id> [same options]   ring only the callee's devices of that app (queues the pushes directly)
  apps                                          list the default and PUSH_APPS_PATH credentials and whether each loads
`;

/** Runs one command and resolves its exit code: 0 done, 1 it failed, 2 usage, 78 bad config. */
export async function runCli(argv: string[], deps: CliDeps): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    deps.out.write(USAGE);
    return command ? 0 : 2;
  }
  let config: Config;
  try {
    config = loadConfig(deps.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const problem of err.problems) deps.err.write(`veil: invalid configuration: ${problem}\n`);
    return 78;
  }
  try {
    switch (command) {
      case 'token':
        return tokenCommand(rest, config, deps);
      case 'registrations': {
        const db = deps.openDb ? deps.openDb(config) : createDb({ url: config.databaseUrl, max: 1, connectTimeoutSeconds: 3, queryTimeoutMs: 5000 });
        try {
          return await registrationsCommand(rest, db, deps);
        } finally {
          if (!deps.openDb) await db.close();
        }
      }
      case 'call':
        return await callCommand(rest, config, deps);
      case 'apps':
        return appsCommand(rest, config, deps);
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      deps.err.write(`veil: ${(err as Error).message}\n${USAGE}`);
      return 2;
    }
    deps.err.write(`veil ${command}: ${(err as Error).message}\n`);
    return 1;
  }
}
