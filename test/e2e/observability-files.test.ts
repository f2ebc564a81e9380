// The Grafana dashboard and the Prometheus alert rules shipped in config/ (issue #17 item 6): the
// rules pass `promtool check rules` (Debian's prometheus package; skipped without it) and every
// aigate metric either names exists in a running aigate's /metrics.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestProxy, startVendors, type TestProxy } from '../support/proxy.js';
import type { FakeVendors } from '../support/vendors.js';

const run = promisify(execFile);
const CONFIG = resolve(import.meta.dirname, '../../config');
const DASHBOARD = resolve(CONFIG, 'grafana-dashboard.json');
const ALERTS = resolve(CONFIG, 'prometheus-alerts.yaml');
const PROMTOOL = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p));

let vendors: FakeVendors;
let px: TestProxy;
let exposed: Set<string>;

beforeAll(async () => {
  vendors = await startVendors();
  px = await startTestProxy(vendors, (raw) => {
    (raw['listen'] as Record<string, unknown>)['forward'] = { host: '127.0.0.1', port: 0 };
    raw['egress'] = { allow: [{ host: 'api.githubcopilot.com', ports: [443] }] };
  });
  const text = await (await request(`${px.adminUrl}/metrics`)).body.text();
  exposed = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
});
afterAll(async () => {
  await px?.stop();
  await vendors?.close();
});

/** aigate_* metric names in PromQL, histogram series (_bucket/_count/_sum) named by their metric. */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\baigate_[a-z_]+/g)].map((m) => (exposed.has(m[0]) ? m[0] : m[0].replace(/_(bucket|count|sum)$/, '')));
}

function dashboardExprs(): string[] {
  const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Array<{ targets?: Array<{ expr?: string }> }>; templating: { list: Array<{ query?: { query?: string } }> } };
  const exprs = dash.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ''));
  for (const v of dash.templating.list) if (v.query?.query) exprs.push(v.query.query);
  return exprs;
}

describe('config/grafana-dashboard.json', () => {
  it('parses, and every aigate metric its queries name is exposed by /metrics', () => {
    const exprs = dashboardExprs();
    expect(exprs.length).toBeGreaterThan(10);
    const named = new Set(exprs.flatMap(metricNames));
    expect(named.size).toBeGreaterThan(10);
    expect([...named].filter((n) => !exposed.has(n))).toEqual([]);
  });
});

describe('config/prometheus-alerts.yaml', () => {
  it('every aigate metric the rules name is exposed by /metrics', () => {
    const doc = parseYaml(readFileSync(ALERTS, 'utf8')) as { groups: Array<{ rules: Array<{ expr: string }> }> };
    const named = new Set(doc.groups.flatMap((g) => g.rules.flatMap((r) => metricNames(String(r.expr)))));
    expect(named.size).toBeGreaterThan(5);
    expect([...named].filter((n) => !exposed.has(n))).toEqual([]);
  });

  it.skipIf(!PROMTOOL)('passes promtool check rules', async () => {
    const { stdout } = await run(PROMTOOL!, ['check', 'rules', ALERTS]);
    expect(stdout).toMatch(/SUCCESS: \d+ rules found/);
  });
  if (!PROMTOOL) it.skip('promtool check rules: promtool not installed (apt-get install prometheus; .ci/run does)', () => {});
});
