// What the production images carry: the Dockerfile copies `pnpm --filter <service> deploy --prod`
// into the runtime stage, so this runs the same command into a temporary folder and looks at the
// result. No Docker needed. --prefer-offline, not --offline: deploy resolves the service's
// dependencies again, and a machine that installed from the lockfile alone has no registry
// metadata cached (the registry is asked only for what the store and cache lack).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../../packages/testkit/src/db.ts';
import { REPO_ROOT } from '../../../packages/testkit/src/spawn.ts';

const out = mkdtempSync(join(tmpdir(), 'veil-deploy-'));
const pnpm = (args: string[]) => execFileSync('pnpm', args, { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

beforeAll(() => {
  pnpm(['build']);
  for (const service of ['api', 'worker']) pnpm(['--filter', `@veil/${service}`, 'deploy', '--prod', '--prefer-offline', join(out, service)]);
}, 120_000);
afterAll(() => rmSync(out, { recursive: true, force: true }));

/** Every file under `dir`, relative, skipping node_modules. */
function ownFiles(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((e) => {
    const rel = join(prefix, e.name);
    if (e.name === 'node_modules') return [];
    return e.isDirectory() ? ownFiles(dir, rel) : [rel];
  });
}

/** Bare module specifiers a bundle imports (node: built-ins excluded). */
function bareImports(bundle: string): string[] {
  const found = [...bundle.matchAll(/(?:from|import)\s*\(?\s*["']([^"'./][^"']*)["']/g)].map((m) => m[1]!);
  return [...new Set(found.filter((s) => !s.startsWith('node:')).map((s) => (s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]!)))].sort();
}

describe.each(['api', 'worker'])('the %s image (pnpm deploy --prod)', (service) => {
  it('ships the bundle, its package.json and production dependencies only', () => {
    const dir = join(out, service);
    const files = ownFiles(dir).sort();
    expect(files.filter((f) => !f.startsWith('dist/'))).toEqual(['package.json']);
    expect(files).toContain('dist/bin/main.js');
    expect(files.some((f) => f.startsWith('dist/migrations/') && f.endsWith('.sql'))).toBe(true);
    // No TypeScript sources of ours, and none of the build or test tooling.
    expect(files.filter((f) => f.endsWith('.ts'))).toEqual([]);
    const installed = readdirSync(join(dir, 'node_modules', '.pnpm'));
    for (const tool of ['tsx@', 'esbuild@', 'typescript@', 'vitest@', '@veil+']) {
      expect(installed.filter((p) => p.startsWith(tool.replace('/', '+')))).toEqual([]);
    }
  });

  it('declares every npm package its bundle imports as a production dependency', () => {
    const dir = join(out, service);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const imports = bareImports(readFileSync(join(dir, 'dist/bin/main.js'), 'utf8'));
    expect(imports.length).toBeGreaterThan(3);
    expect(imports.filter((name) => !(name in pkg.dependencies))).toEqual([]);
    for (const name of imports) expect(readdirSync(join(dir, 'node_modules'))).toContain(name.split('/')[0]);
  });
});

describe('the migrate CLI in the api image', () => {
  it('applies the migrations to an empty database with plain node, then finds it up to date', async () => {
    const db = await createTestDatabase('deploy_migrate');
    try {
      const run = () =>
        execFileSync(process.execPath, ['dist/bin/migrate.js'], {
          cwd: join(out, 'api'),
          env: { PATH: process.env.PATH ?? '', DATABASE_URL: db.url, LOG_LEVEL: 'info' },
          encoding: 'utf8',
        });
      expect(run()).toContain('"msg":"Migrations applied"');
      expect(run()).toContain('"msg":"Database is up to date"');
    } finally {
      await db.drop();
    }
  });
});
