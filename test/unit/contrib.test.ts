import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { createMetrics, mergedExposition } from '../../src/observability/metrics.js';
import { ROOT } from '../helpers/fixtures.js';

/**
 * contrib/grafana-dashboard.json and contrib/prometheus-rules.yaml: every metric their queries name
 * is one the daemon exports (read from the daemon's own registry, both threads' sets merged as
 * /metrics serves them), every label they match on is one that metric has, and promtool accepts
 * the rules and fires the important alerts when it should.
 */

const RULES_FILE = join(ROOT, 'contrib', 'prometheus-rules.yaml');
const DASHBOARD_FILE = join(ROOT, 'contrib', 'grafana-dashboard.json');

interface Rule {
  readonly alert: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}
const rules: Rule[] = (parse(readFileSync(RULES_FILE, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);

interface Panel {
  readonly type: string;
  readonly title: string;
  readonly id: number;
  readonly datasource?: { type: string; uid: string };
  readonly targets?: { expr: string; datasource?: { uid: string } }[];
  readonly panels?: Panel[];
  readonly gridPos?: { h: number; w: number; x: number; y: number };
}
interface Dashboard {
  readonly schemaVersion: number;
  readonly uid: string;
  readonly panels: Panel[];
  readonly templating: { list: { name: string; type: string; query: unknown; definition?: string; datasource?: { uid: string } }[] };
}
const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard;
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const dashboardExprs = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel "${p.title}"`, expr: t.expr })));
const ruleExprs = rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr }));

/** What /metrics serves: series name → its type and label names (from the daemon's registry, not a list kept here). */
async function exported(): Promise<Map<string, { type: string; labels: Set<string> }>> {
  const main = createMetrics();
  const processing = createMetrics({ processMetrics: false });
  const text = await mergedExposition(main.registry, [await processing.registry.getMetricsAsJSON()]);
  const series = new Map<string, { type: string; labels: Set<string> }>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name = '', type = ''] = m;
    const metric = main.registry.getSingleMetric(name) as unknown as { labelNames?: readonly string[] } | undefined;
    // Prometheus adds instance and job at scrape time.
    const labels = new Set(['instance', 'job', ...(metric?.labelNames ?? [])]);
    if (type === 'histogram') {
      series.set(`${name}_bucket`, { type, labels: new Set([...labels, 'le']) });
      series.set(`${name}_sum`, { type, labels });
      series.set(`${name}_count`, { type, labels });
    } else if (type === 'summary') {
      series.set(name, { type, labels: new Set([...labels, 'quantile']) });
      series.set(`${name}_sum`, { type, labels });
      series.set(`${name}_count`, { type, labels });
    } else {
      series.set(name, { type, labels });
    }
  }
  return series;
}

const PROMQL_WORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

/** The metric names a PromQL expression selects, each with the label names its matchers use. */
export function selectors(expr: string): { name: string; labels: string[] }[] {
  // Strings first (a matcher's value may hold any character), then ranges ([5m], [$__rate_interval]).
  const e = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/'(?:[^'\\]|\\.)*'/g, "''").replace(/\[[^\]]*\]/g, ' ');
  const out: { name: string; labels: string[] }[] = [];
  // Grouping clauses hold label names, not metrics.
  const bare = e.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  for (const m of bare.matchAll(/[A-Za-z_:][\w:]*/g)) {
    const before = bare[m.index - 1] ?? ' ';
    if (/[\w.$]/.test(before)) continue; // part of a number (1e3), a duration or a Grafana variable
    if (PROMQL_WORDS.has(m[0].toLowerCase())) continue;
    const rest = bare.slice(m.index + m[0].length);
    if (/^\s*\(/.test(rest)) continue; // a function
    if (isInsideBraces(bare, m.index)) continue; // a label name of a matcher
    const matchers = /^\s*\{([^}]*)\}/.exec(rest)?.[1] ?? '';
    out.push({ name: m[0], labels: [...matchers.matchAll(/([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1] ?? '') });
  }
  return out;
}

function isInsideBraces(text: string, at: number): boolean {
  return text.lastIndexOf('{', at) > text.lastIndexOf('}', at);
}

describe('the PromQL reader of this test', () => {
  it('finds metrics, not functions, keywords, label names, durations or variables', () => {
    expect(selectors('histogram_quantile(0.95, sum by (le, operation) (rate(zgb_glpi_request_duration_seconds_bucket{instance=~"$instance"}[$__rate_interval])))')).toEqual([
      { name: 'zgb_glpi_request_duration_seconds_bucket', labels: ['instance'] },
    ]);
    expect(selectors('sum(a_total{x="y{z}", w!~"1e3"}) by (q) / ignoring(r) b offset 5m > 1e3 unless absent(c)')).toEqual([
      { name: 'a_total', labels: ['x', 'w'] },
      { name: 'b', labels: [] },
      { name: 'c', labels: [] },
    ]);
  });
});

describe('contrib/: the dashboard and the alert rules query what the daemon exports', () => {
  it('every metric and label in the dashboard and the rules exists in /metrics (histograms as _bucket, _sum, _count)', async () => {
    const series = await exported();
    expect(series.has('zgb_glpi_request_duration_seconds_bucket')).toBe(true); // the registry was read
    const variable = dashboard.templating.list.filter((v) => v.type === 'query').map((v) => ({ where: `variable $${v.name}`, expr: /^label_values\(([^,]+),/.exec(v.definition ?? '')?.[1] ?? `unreadable: ${v.definition}` }));
    const problems: string[] = [];
    for (const { where, expr } of [...dashboardExprs, ...ruleExprs, ...variable]) {
      const found = selectors(expr);
      if (found.length === 0) problems.push(`${where}: no metric in ${expr}`);
      for (const { name, labels } of found) {
        const s = series.get(name);
        if (!s) problems.push(`${where}: ${name} is not exported${series.has(`${name}_bucket`) ? ' (a histogram: use _bucket, _sum or _count)' : ''}`);
        for (const l of labels) if (s && !s.labels.has(l)) problems.push(`${where}: ${name} has no label ${l} (it has ${[...s.labels].join(', ')})`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('the dashboard: Grafana 10 model, a data source variable every query uses, rates over $__rate_interval, quantiles from buckets by le', () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.uid).toBe('zabbix-glpi-bridge');
    expect(dashboard.templating.list.find((v) => v.name === 'datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of panels) {
      expect(p.gridPos).toBeDefined();
      if (p.type === 'row') continue;
      expect({ panel: p.title, uid: p.datasource?.uid }).toEqual({ panel: p.title, uid: '${datasource}' });
      expect(p.targets?.length).toBeGreaterThan(0);
    }
    for (const { where, expr } of dashboardExprs) {
      for (const m of expr.matchAll(/\b(rate|increase|irate)\((?:[^()[\]]|\([^()]*\))*\[([^\]]+)\]/g)) expect({ where, window: m[2] }).toEqual({ where, window: '$__rate_interval' });
      for (const m of expr.matchAll(/histogram_quantile\(([^,]+),(.*)\)\s*$/g)) {
        expect({ where, byLe: /by \((?:[\w, ]*\b)?le\b/.test(m[2] ?? '') }).toEqual({ where, byLe: true });
        expect(m[2]).toMatch(/_bucket\{/);
      }
    }
    // The panels the issue asks for.
    const titles = panels.map((p) => p.title).join('\n');
    for (const want of [/Alerts received/, /latency/i, /Inbox/, /Dead letters/, /GLPI errors by status/, /Ticket operations/, /Poller/i]) expect(titles).toMatch(want);
  });

  it('the rules: a for:, a severity, a summary, a description and a runbook each; the alerts the issue asks for', () => {
    for (const r of rules) {
      expect({ alert: r.alert, for: r.for }).toEqual({ alert: r.alert, for: expect.stringMatching(/^\d+[smh]$/) });
      expect({ alert: r.alert, severity: r.labels?.severity }).toEqual({ alert: r.alert, severity: expect.stringMatching(/^(critical|warning)$/) });
      for (const a of ['summary', 'description', 'runbook']) expect({ alert: r.alert, [a]: (r.annotations?.[a] ?? '').length > 20 }).toEqual({ alert: r.alert, [a]: true });
    }
    const exprOf = (name: string) => rules.find((r) => r.alert === name)?.expr ?? '';
    expect(exprOf('ZabbixGlpiBridgeInboxGrowing')).toContain('zgb_inbox_depth');
    expect(exprOf('ZabbixGlpiBridgeOldestJobWaiting')).toContain('zgb_queue_oldest_pending_age_seconds');
    expect(exprOf('ZabbixGlpiBridgeDeadLetters')).toContain('zgb_queue_depth{state="dead"}');
    expect(exprOf('ZabbixGlpiBridgeGlpiLoginFailing')).toContain('operation=~"initSession|passwordLogin"');
    expect(exprOf('ZabbixGlpiBridgeZabbixPollFailing')).toContain('zgb_zabbix_polls_total{result="failure"}');
  });
});

/** promtool, from Debian's prometheus package (.ci/run installs it). Missing: the test fails, saying so. */
function promtool(args: string[]): { status: number | null; out: string } {
  const r = spawnSync('promtool', args, { encoding: 'utf8' });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new Error('promtool is not installed: apt-get install --no-install-recommends prometheus (Debian\'s package; .ci/run installs it without starting the server)');
  }
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

interface AlertCase {
  readonly alert: string;
  readonly series: Record<string, string>;
  /** Minute → the alerts expected firing then (labels besides alertname and severity, and the summary). */
  readonly at: Record<number, { labels: Record<string, string>; summary: string }[]>;
}

const A = 'instance="bridge-a:8088", job="zgb"';
const B = 'instance="bridge-b:8088", job="zgb"';
const C = 'instance="bridge-c:8088", job="zgb"';
const CASES: AlertCase[] = [
  {
    alert: 'ZabbixGlpiBridgeDeadLetters',
    series: { [`zgb_queue_depth{state="dead", ${A}}`]: '0x5 2x10 0x10', [`zgb_queue_depth{state="pending", ${A}}`]: '3x26' },
    // Dead letters from minute 6: pending for 5 minutes, firing from 11, cleared once retried (minute 17).
    at: {
      8: [],
      12: [{ labels: { state: 'dead', instance: 'bridge-a:8088', job: 'zgb' }, summary: 'Bridge on bridge-a:8088: 2 dead letters' }],
      20: [],
    },
  },
  {
    alert: 'ZabbixGlpiBridgeOldestJobWaiting',
    // A job waiting since minute 0: over 900 s from minute 16, firing from 21.
    series: { [`zgb_queue_oldest_pending_age_seconds{${A}}`]: '0+60x30', [`zgb_queue_oldest_pending_age_seconds{${B}}`]: '0x30' },
    at: { 18: [], 22: [{ labels: { instance: 'bridge-a:8088', job: 'zgb' }, summary: 'Bridge on bridge-a:8088: a GLPI job has waited 22m 0s' }] },
  },
  {
    alert: 'ZabbixGlpiBridgeGlpiLoginFailing',
    // A refuses every login; B had one refused but opens sessions; C (glpi.api: v2) has its password grant refused.
    series: {
      [`zgb_glpi_requests_total{operation="initSession", status="401", ${A}}`]: '0+1x30',
      [`zgb_glpi_requests_total{operation="passwordLogin", status="400", ${C}}`]: '0+1x30',
      [`zgb_glpi_sessions_total{reason="start", ${A}}`]: '1x30',
      [`zgb_glpi_requests_total{operation="initSession", status="401", ${B}}`]: '0+1x30',
      [`zgb_glpi_sessions_total{reason="expired", ${B}}`]: '1+1x30',
      [`zgb_glpi_requests_total{operation="createTicket", status="400", ${B}}`]: '0+5x30',
    },
    at: {
      3: [],
      12: [
        { labels: { instance: 'bridge-a:8088', job: 'zgb' }, summary: 'Bridge on bridge-a:8088: GLPI refuses its login' },
        { labels: { instance: 'bridge-c:8088', job: 'zgb' }, summary: 'Bridge on bridge-c:8088: GLPI refuses its login' },
      ],
    },
  },
  {
    alert: 'ZabbixGlpiBridgeInboxGrowing',
    // A grows 10 alerts a minute; B holds a steady 50 (busy, keeping up); C is stuck at 500 (decisions stalled).
    series: { [`zgb_inbox_depth{${A}}`]: '0+10x40', [`zgb_inbox_depth{${B}}`]: '50x40', [`zgb_inbox_depth{${C}}`]: '500x40' },
    at: {
      5: [],
      25: [
        { labels: { instance: 'bridge-a:8088', job: 'zgb' }, summary: 'Bridge inbox not draining on bridge-a:8088: 250 alerts not decided yet' },
        { labels: { instance: 'bridge-c:8088', job: 'zgb' }, summary: 'Bridge inbox not draining on bridge-c:8088: 500 alerts not decided yet' },
      ],
    },
  },
  {
    alert: 'ZabbixGlpiBridgeZabbixPollFailing',
    series: {
      [`zgb_zabbix_polls_total{result="failure", ${A}}`]: '0+1x40',
      [`zgb_zabbix_polls_total{result="success", ${A}}`]: '3x40',
      [`zgb_zabbix_polls_total{result="failure", ${B}}`]: '0+1x40',
      [`zgb_zabbix_polls_total{result="success", ${B}}`]: '0+1x40',
    },
    at: { 10: [], 20: [{ labels: { instance: 'bridge-a:8088', job: 'zgb' }, summary: 'Bridge on bridge-a:8088: the Zabbix API poller fails' }] },
  },
  {
    alert: 'ZabbixGlpiBridgeGlpiUnreachable',
    // A's circuit opens at minute 4 and stays open; B's opens and closes again (a probe succeeded).
    series: { [`zgb_glpi_circuit_state{${A}}`]: '0x3 2x20', [`zgb_glpi_circuit_state{${B}}`]: '0x3 2x3 1 0x15' },
    at: { 10: [], 15: [{ labels: { instance: 'bridge-a:8088', job: 'zgb' }, summary: 'Bridge on bridge-a:8088: GLPI unreachable for 10 minutes' }] },
  },
  {
    alert: 'ZabbixGlpiBridgeAbsent',
    series: { 'up{job="zgb"}': '0x10' },
    at: { 2: [], 8: [{ labels: {}, summary: 'No zabbix-glpi-bridge metrics for 5 minutes' }] },
  },
];

describe('contrib/prometheus-rules.yaml under promtool', () => {
  it('passes promtool check rules', () => {
    const r = promtool(['check', 'rules', RULES_FILE]);
    expect(r).toEqual({ status: 0, out: expect.stringContaining(`SUCCESS: ${rules.length} rules found`) });
  });

  it('fires the important alerts after their for:, on the right instance only, with their summaries (promtool test rules)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'zgb-promtool-'));
    try {
      const rule = (name: string) => rules.find((r) => r.alert === name)!;
      const tests = CASES.map((c) => ({
        interval: '1m',
        input_series: Object.entries(c.series).map(([series, values]) => ({ series, values })),
        alert_rule_test: Object.entries(c.at).map(([minute, alerts]) => ({
          eval_time: `${minute}m`,
          alertname: c.alert,
          exp_alerts: alerts.map((a) => ({
            exp_labels: { severity: rule(c.alert).labels?.severity, ...a.labels },
            // Description and runbook are plain text, taken as written; the summary's template is checked.
            exp_annotations: { summary: a.summary, description: rule(c.alert).annotations?.description, runbook: rule(c.alert).annotations?.runbook },
          })),
        })),
      }));
      const file = join(dir, 'prometheus-rules.test.yaml');
      writeFileSync(file, stringify({ rule_files: [RULES_FILE], evaluation_interval: '1m', tests }));
      const r = promtool(['test', 'rules', file]);
      expect(r).toEqual({ status: 0, out: expect.stringContaining('SUCCESS') });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
