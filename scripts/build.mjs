// `pnpm build`: each service as one ES module, services/<name>/dist/bin/main.js, which
// production runs with plain `node` (pnpm start, the Docker images, the benchmark).
// Why: under `node --import tsx` every process carries tsx's module-hooks thread, a second V8
// heap (about 35 MB of RSS per service, measured) and compiles TypeScript at every start.
// Tests keep running the TypeScript sources through tsx. npm packages stay external (bullmq
// reads its Lua scripts from its own folder); the workspace packages are bundled in.
import { cpSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const npmPackagesExternal = {
  name: 'npm-packages-external',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => (args.path.startsWith('@veil/') ? undefined : { path: args.path, external: true }));
  },
};

// The api image also carries the migrate CLI (`node dist/bin/migrate.js`), bundled like the
// service, so an operator can migrate before a rollout without TypeScript or tsx in the image.
const entries = {
  api: { main: 'services/api/src/main.ts', migrate: 'packages/db/src/migrate-cli.ts' },
  worker: { main: 'services/worker/src/main.ts' },
};

for (const [service, points] of Object.entries(entries)) {
  const dist = `${root}services/${service}/dist/`;
  rmSync(dist, { recursive: true, force: true });
  await build({
    entryPoints: Object.fromEntries(Object.entries(points).map(([name, path]) => [name, `${root}${path}`])),
    outdir: `${dist}bin`,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: true,
    plugins: [npmPackagesExternal],
    logLevel: 'warning',
  });
  // packages/db finds its SQL at ../migrations/ from its own module; in the bundle that module
  // is dist/bin/main.js, so the migrations go to dist/migrations/.
  cpSync(`${root}packages/db/migrations`, `${dist}migrations`, { recursive: true });
}
