// `pnpm start`: api and worker side by side in one terminal. If either exits, the other is
// stopped too, so a supervisor sees one failure instead of a half-running service.
import { spawn } from 'node:child_process';

const services = ['api', 'worker'];
// Node directly (not through pnpm and a shell), so SIGTERM reaches the services themselves;
// the bundles come from `pnpm build`, which `pnpm start` runs first.
const root = new URL('..', import.meta.url);
const children = services.map((name) =>
  spawn(process.execPath, ['--enable-source-maps', `services/${name}/dist/bin/main.js`], { stdio: 'inherit', env: process.env, cwd: root }),
);

let stopping = false;
function stopAll(signal) {
  if (stopping) return;
  stopping = true;
  for (const child of children) if (child.exitCode === null) child.kill(signal);
}

for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => stopAll(signal));

let exitCode = 0;
let remaining = children.length;
children.forEach((child, i) => {
  child.on('exit', (code, signal) => {
    if (!stopping) {
      process.stderr.write(`${services[i]} exited (${signal ?? code}); stopping the others\n`);
      exitCode = code || 1;
      stopAll('SIGTERM');
    }
    if (--remaining === 0) process.exit(exitCode);
  });
});
