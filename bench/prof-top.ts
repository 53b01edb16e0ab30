/**
 * Summarises V8 CPU profiles (BENCH_CPU_PROF=1 writes them to bench/.out/prof/<service>/):
 * the top functions by self time, and self time per package, so a profile can be read without
 * a browser. Usage: tsx bench/prof-top.ts <file.cpuprofile | dir> [top=25]
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [target = 'bench/.out/prof', topArg = '25'] = process.argv.slice(2);
const files = statSync(target).isDirectory()
  ? readdirSync(target, { recursive: true }).map(String).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(target, f))
  : [target];

/** Where a frame's code lives: a package, node's internals, or our own source. */
function owner(url: string): string {
  const pkg = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:')) return url.split('/')[0]!;
  if (url === '') return '(vm / gc / native)';
  return url.includes('/dist/') ? '(veil bundle)' : url;
}

for (const file of files) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  const perOwner = new Map<string, number>();
  let total = 0;
  let idle = 0;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    const f = byId.get(id)!.callFrame;
    total += dt;
    if (f.functionName === '(idle)') {
      idle += dt;
      return;
    }
    const key = `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    perOwner.set(owner(f.url), (perOwner.get(owner(f.url)) ?? 0) + dt);
  });
  const busy = total - idle;
  const ms = (us: number) => `${(us / 1000).toFixed(0)} ms`;
  const pct = (us: number) => `${((100 * us) / busy).toFixed(1)}%`;
  console.log(`\n== ${file}: ${ms(total)} sampled, ${ms(busy)} busy`);
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg))) console.log(`${pct(v).padStart(6)} ${ms(v).padStart(9)}  ${k}`);
  console.log('-- by package');
  for (const [k, v] of [...perOwner].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`${pct(v).padStart(6)} ${ms(v).padStart(9)}  ${k}`);
}
