import type { Config } from '@veil/config/config';
import { loadCredentials } from '@veil/worker/credential-sets';
import type { CliDeps } from '../cli.ts';
import { UsageError } from '../errors.ts';

/**
 * What the worker would load right now: the default credentials and every app of PUSH_APPS_PATH,
 * each loaded exactly as the worker loads it (same code), printed without any secret: ids,
 * topics, projects and paths only. Exit 1 when anything shown does not load.
 */
export function appsCommand(argv: string[], config: Config, deps: CliDeps): number {
  if (argv.length > 0) throw new UsageError('apps takes no arguments');
  const loaded = loadCredentials(config);
  const { hosts, defaultEnvironment } = config.apns;
  const out: string[] = [];
  out.push(`APNs gateways: sandbox ${hosts.sandbox}, production ${hosts.production}; default ${defaultEnvironment}`);
  const file = loaded.appsFile;
  out.push(
    file.state === 'missing'
      ? `apps file ${config.appsPath}: not found (default credentials only)`
      : file.state === 'unusable'
        ? `apps file ${config.appsPath}: NOT USABLE: ${file.problem}`
        : `apps file ${config.appsPath}: read`,
  );
  let failed = file.state === 'unusable';
  for (const platform of ['ios', 'android'] as const) {
    for (const [app, result] of loaded.sets[platform]) {
      const head = `${platform.padEnd(8)}${app.padEnd(32)}`;
      if (!result.ok) {
        failed = true;
        for (const p of result.problems) out.push(`${head}NOT LOADED: ${p.entry ? `${p.entry}: ` : ''}${p.problem}`);
        continue;
      }
      const s = result.set;
      out.push(
        s.platform === 'ios'
          ? `${head}loaded: key ${s.credentials.keyId}, team ${s.credentials.teamId}, topic ${s.credentials.bundleId}.voip`
          : `${head}loaded: project ${s.account.projectId}, account ${s.account.clientEmail}`,
      );
    }
  }
  for (const p of loaded.unnamed) {
    failed = true;
    out.push(`${p.platform.padEnd(8)}${'?'.padEnd(32)}NOT LOADED: ${p.entry}: ${p.problem}`);
  }
  deps.out.write(out.join('\n') + '\n');
  return failed ? 1 : 0;
}
