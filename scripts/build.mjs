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

for (const service of ['api', 'worker']) {
  const dist = `${root}services/${service}/dist/`;
  rmSync(dist, { recursive: true, force: true });
  await build({
    entryPoints: [`${root}services/${service}/src/main.ts`],
    outfile: `${dist}bin/main.js`,
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
