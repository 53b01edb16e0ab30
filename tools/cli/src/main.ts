// `pnpm veil <command>`: the operator's checks of a running veil-push. See docs/operator-guide.md.
import { runCli } from './cli.ts';

process.exitCode = await runCli(process.argv.slice(2), { env: process.env, out: process.stdout, err: process.stderr });
