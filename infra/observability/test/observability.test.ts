// The alert rules and the dashboard against promtool and against the services' live /metrics:
// a renamed metric breaks this test instead of silently emptying a panel or muting an alert.
import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { startApi, type RunningApi } from '../../../services/api/test/support/api.ts';
import { createTestDb, type TestDb } from '../../../packages/testkit/src/db.ts';
import { startHarness, type Harness } from '../../../services/worker/test/support/harness.ts';
import { spawnWorker } from '../../../services/worker/test/support/worker-process.ts';
import { exposedNames, metricNames } from './promql-names.ts';

const here = (p: string) => fileURLToPath(new URL(`../${p}`, import.meta.url));
const RULES = here('prometheus/alerts.yml');
const RULE_TESTS = here('prometheus/alerts.test.yml');
const DASHBOARD = here('grafana/dashboards/veil-push.json');

interface Rule { alert: string; expr: string }
interface Panel { title: string; targets?: { expr: string }[]; panels?: Panel[] }
const rules = (parse(readFileSync(RULES, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
const panels = (JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[] }).panels.flatMap((p) => [p, ...(p.panels ?? [])]);
/** Grafana's variables replaced by what they stand for, so promtool can parse the query. */
const dashboardExprs = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr.replaceAll('$__rate_interval', '5m').replaceAll('$platform', '.*') })));

/** Prometheus's own series, not something our services export. */
const PROMETHEUS_OWN = new Set(['up', 'ALERTS', 'ALERTS_FOR_STATE']);

const promtool = (...args: string[]) => spawnSync('promtool', args, { encoding: 'utf8' });
const hasPromtool = spawnSync('sh', ['-c', 'command -v promtool']).status === 0;

describe.skipIf(!hasPromtool)('alert rules (promtool)', () => {
  it('pass promtool check rules, and the Prometheus config that loads them passes check config', () => {
    const rulesCheck = promtool('check', 'rules', RULES);
    expect(rulesCheck.status, rulesCheck.stdout + rulesCheck.stderr).toBe(0);
    const configCheck = promtool('check', 'config', here('prometheus/prometheus.yml'));
    expect(configCheck.status, configCheck.stdout + configCheck.stderr).toBe(0);
  });

  it('pass their unit tests (promtool test rules)', () => {
    const run = promtool('test', 'rules', RULE_TESTS);
    expect(run.status, run.stdout + run.stderr).toBe(0);
  });

  it('every alert has a unit test where it fires and one where it stays quiet', () => {
    type Case = { alertname: string; exp_alerts?: unknown[] };
    const tests = (parse(readFileSync(RULE_TESTS, 'utf8')) as { tests: { alert_rule_test: Case[] }[] }).tests.flatMap((t) => t.alert_rule_test);
    for (const { alert } of rules) {
      const cases = tests.filter((c) => c.alertname === alert);
      expect(cases.some((c) => (c.exp_alerts ?? []).length > 0), `${alert} never fires in a test`).toBe(true);
      expect(cases.some((c) => (c.exp_alerts ?? []).length === 0), `${alert} has no quiet case`).toBe(true);
    }
  });

  it('every alert is explained in the operator guide', () => {
    const guide = readFileSync(fileURLToPath(new URL('../../../docs/operator-guide.md', import.meta.url)), 'utf8');
    const section = guide.slice(guide.indexOf('## Dashboards and alerts'), guide.indexOf('## Troubleshooting'));
    for (const { alert } of rules) expect(section, alert).toContain(`\`${alert}\``);
  });

  it("the dashboard's queries are valid PromQL", () => {
    expect(dashboardExprs.length).toBeGreaterThan(15);
    const dir = mkdtempSync(join(tmpdir(), 'veil-dash-'));
    try {
      const file = join(dir, 'dashboard-queries.yml');
      const asRules = dashboardExprs.map(({ expr }, i) => ({ record: `dashboard:query_${i}`, expr }));
      writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules: asRules }] }));
      const run = promtool('check', 'rules', file);
      expect(run.status, run.stdout + run.stderr).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the running api and worker', () => {
  let db: TestDb | undefined;
  let api: RunningApi | undefined;
  let h: Harness | undefined;
  let worker: ChildProcess | undefined;
  let workerUrl = '';
  beforeAll(async () => {
    db = await createTestDb('obs_names');
    api = await startApi({ db });
    h = await startHarness();
    const w = spawnWorker(h);
    worker = w.child;
    workerUrl = `http://127.0.0.1:${await w.started}`;
  });
  afterAll(async () => {
    if (worker && worker.exitCode === null) worker.kill('SIGKILL');
    await api?.close();
    await db?.drop();
    await h?.close();
  });

  it("export every metric the dashboard and the rules query (their /metrics' TYPE lines)", async () => {
    const apiText = await (await fetch(`${api!.url}/metrics`)).text();
    const workerText = await (await fetch(`${workerUrl}/metrics`)).text();
    const exported = new Set([...exposedNames(apiText), ...exposedNames(workerText)]);

    const queried = new Map<string, string>();
    for (const r of rules) for (const n of metricNames(r.expr)) queried.set(n, `alert ${r.alert}`);
    for (const q of dashboardExprs) for (const n of metricNames(q.expr)) queried.set(n, `panel "${q.panel}"`);
    // The parse found the metrics it should (a parser returning nothing would pass vacuously).
    expect([...queried.keys()]).toEqual(expect.arrayContaining(['veil_worker_queue_jobs', 'veil_push_wake_seconds_bucket', 'up']));

    const missing = [...queried].filter(([n]) => !PROMETHEUS_OWN.has(n) && !exported.has(n)).map(([n, where]) => `${n} (${where})`);
    expect(missing).toEqual([]);
  });

  it("the worker's /readyz says ready while Redis answers, and its gauges report the queues and credentials", async () => {
    // Its probe connection may still be handshaking right after start (a loaded machine): ready soon after.
    await expect.poll(async () => (await fetch(`${workerUrl}/readyz`)).status, { timeout: 10_000 }).toBe(200);
    const res = await fetch(`${workerUrl}/readyz`);
    expect(await res.json()).toEqual({ status: 'ready', redis: 'ok' });
    const text = await (await fetch(`${workerUrl}/metrics`)).text();
    expect(text).toContain('veil_worker_redis_up 1');
    expect(text).toContain('veil_worker_queue_jobs{platform="ios",state="waiting"} 0');
    expect(text).toContain('veil_worker_credentials_loaded{platform="ios",app_id="default"} 1');
    expect(text).toContain('veil_worker_credentials_loaded{platform="android",app_id="default"} 1');
  });
});
