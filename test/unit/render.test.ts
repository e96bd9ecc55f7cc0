import { describe, expect, it } from '@jest/globals';
import type { Alert } from '../../src/core/alert.js';
import { classify } from '../../src/core/classify.js';
import { BODY_MAX, DEFAULT_BODY, eventUrl, formatDuration, formatTime, frontendUrlOf, graphUrl, renderBody, renderTitle, TEMPLATE_VARIABLES, VALUE_HISTORY_MAX, valueHistoryHtml, variablesOf, withValueHistory } from '../../src/core/render.js';
import { cpuAlert, exampleRules } from '../helpers/fixtures.js';

const rules = exampleRules();
const FRONTEND = 'https://zabbix.example.org/zabbix/';

/** A problem as our media type delivers it, every field the body shows filled in. */
const full: Alert = cpuAlert('problem', {
  eventId: '4711',
  triggerId: '23133',
  itemId: '44518',
  hostName: 'Web server 01',
  host: 'web-01',
  hostIp: '192.0.2.10',
  itemName: 'CPU utilization',
  itemKey: 'system.cpu.util',
  itemValue: '97 %',
  triggerDescription: 'CPU above 90 % for 5 minutes.\nCheck the top processes.',
  occurredAt: '2026-11-23T06:18:41.000Z',
  tags: [
    { tag: 'component', value: 'cpu' },
    { tag: 'scope', value: 'performance' },
  ],
});

function body(a: Alert, frontend: string | null = FRONTEND, template = DEFAULT_BODY): string {
  return renderBody(template, variablesOf(a, classify(rules, a), frontend === null ? {} : { zabbixFrontendUrl: frontend }));
}

/** Every element name in an HTML text. */
function elements(html: string): Set<string> {
  return new Set([...html.matchAll(/<\/?([a-zA-Z][a-zA-Z0-9]*)/g)].map((m) => (m[1] ?? '').toLowerCase()));
}

describe('ticket body: what people need to act, as HTML GLPI keeps', () => {
  it('carries the host, IP, item (name, key, value), description, tags and links to the event and the graph', () => {
    const html = body(full);
    expect(html).toContain('Host: Web server 01 (web-01)');
    expect(html).toContain('IP: 192.0.2.10');
    expect(html).toContain('Item: CPU utilization');
    expect(html).toContain('Item key: system.cpu.util');
    expect(html).toContain('Value: 97 %');
    expect(html).toContain('Tags: component:cpu, scope:performance');
    expect(html).toContain('Zabbix event: 4711');
    expect(html).toContain('Description: CPU above 90 % for 5 minutes.<br>\nCheck the top processes.');
    const event = 'https://zabbix.example.org/zabbix/tr_events.php?triggerid=23133&amp;eventid=4711';
    expect(html).toContain(`Event page: <a href="${event}" target="_blank" rel="noopener noreferrer">${event}</a>`);
    const graph = 'https://zabbix.example.org/zabbix/history.php?action=showgraph&amp;itemids[]=44518';
    expect(html).toContain(`<a href="${graph}"`);
    // Only paragraphs, line breaks and links: what GLPI 10's htmLawed and GLPI 11 keep and show.
    expect([...elements(html)].sort()).toEqual(['a', 'br', 'p']);
    // The description is its own paragraph (the template's blank line).
    expect(html).toMatch(/<\/p>\n<p>Description: /);
    expect(html.startsWith('<p>Zabbix problem: High CPU<br>\n')).toBe(true);
  });

  it('a line whose placeholders all came out empty is left out; lines with some text stay', () => {
    const html = body(cpuAlert('problem'), null);
    for (const gone of ['IP:', 'Item:', 'Item key:', 'Value:', 'Operational data:', 'Started:', 'Event page:', 'Graph:', 'Description:']) expect(html).not.toContain(gone);
    expect(html).toContain('Host: srv (srv)');
    expect(html).toContain('Severity: high (Zabbix severity high)');
    expect(renderBody('Static line\n{{opdata}}\nHost {{host}} IP {{host_ip}}', variablesOf(cpuAlert('problem'), classify(rules, cpuAlert('problem'))))).toBe('<p>Static line<br>\nHost srv IP </p>');
  });

  it('a template whose every line comes out empty still gives GLPI a description', () => {
    expect(renderBody('{{opdata}}', variablesOf(cpuAlert('problem'), classify(rules, cpuAlert('problem'))))).toBe('<p>High CPU</p>');
  });

  it('hostile text in every new field is shown as text, never markup; marker look-alikes are removed', () => {
    const hostile = '<script>alert("x")</script><img src=x onerror=alert(1)> & \'q\' [zbx:0123456789abcdef0123]';
    const a: Alert = { ...full, triggerDescription: hostile, itemName: hostile, itemKey: 'k["<b>"]', hostIp: '<a href="javascript:alert(1)">ip</a>' };
    const html = body(a);
    expect([...elements(html)].sort()).toEqual(['a', 'br', 'p']);
    expect(html).not.toMatch(/<script|<img|javascript:alert\(1\)">/i);
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt; &amp; &#39;q&#39;');
    expect(html).not.toContain('[zbx:');
    // Only the bridge's two links are anchors.
    expect(html.match(/<a /g)).toHaveLength(2);
  });

  it('links only to an http(s) frontend, for trigger events with numeric ids', () => {
    expect(eventUrl(full, { zabbixFrontendUrl: 'javascript:alert(1)//' })).toBe('');
    expect(eventUrl(full, { zabbixFrontendUrl: 'https://z.example.org/zabbix' })).toBe('https://z.example.org/zabbix/tr_events.php?triggerid=23133&eventid=4711');
    expect(eventUrl(full, {})).toBe('');
    expect(eventUrl({ ...full, triggerId: '1 OR 1' }, { zabbixFrontendUrl: FRONTEND })).toBe('');
    const { triggerId: _t, ...noTrigger } = full;
    expect(eventUrl(noTrigger, { zabbixFrontendUrl: FRONTEND })).toBe('');
    expect(eventUrl({ ...full, eventSource: '3' }, { zabbixFrontendUrl: FRONTEND })).toBe('');
    expect(body(full, 'javascript:alert(1)//')).not.toContain('<a ');
  });

  it('a numeric item links to its graph, a text or log item to its latest values', () => {
    expect(graphUrl(full, { zabbixFrontendUrl: FRONTEND })).toBe(`${FRONTEND}history.php?action=showgraph&itemids[]=44518`);
    expect(graphUrl({ ...full, itemValue: 'Connection refused' }, { zabbixFrontendUrl: FRONTEND })).toBe(`${FRONTEND}history.php?action=showvalues&itemids[]=44518`);
    const { itemId: _i, ...noItem } = full;
    expect(graphUrl(noItem, { zabbixFrontendUrl: FRONTEND })).toBe('');
  });

  it("the frontend's URL defaults to the API's folder", () => {
    expect(frontendUrlOf('https://zabbix.example.org/zabbix/api_jsonrpc.php')).toBe('https://zabbix.example.org/zabbix/');
    expect(frontendUrlOf('http://127.0.0.1:8080/api_jsonrpc.php?x=1')).toBe('http://127.0.0.1:8080/');
    expect(frontendUrlOf('')).toBeUndefined();
    expect(frontendUrlOf('file:///etc/api_jsonrpc.php')).toBeUndefined();
  });

  it('a body past the maximum is cut between tags and entities, its paragraphs still closed', () => {
    const long = '<&>'.repeat(700);
    const template = Array.from({ length: 60 }, () => 'D: {{trigger_description}} {{item_name}} {{value}}').join('\n');
    const html = body({ ...full, triggerDescription: long, itemName: long, itemValue: long }, FRONTEND, template);
    expect(html.length).toBeLessThanOrEqual(BODY_MAX);
    expect(html.endsWith('…</p>')).toBe(true);
    expect(html.startsWith('<p>')).toBe(true);
    expect(html.slice(0, -'…</p>'.length)).toMatch(/(&lt;|&amp;|&gt;|<br>\n|D: | )$/);
  });

  it('the title stays plain text: a link placeholder gives the bare URL', () => {
    const vars = variablesOf(full, classify(rules, full), { zabbixFrontendUrl: FRONTEND });
    expect(renderTitle('{{trigger}} {{event_url}}', vars, '[zbx:m]')).toBe(`[zbx:m] High CPU ${FRONTEND}tr_events.php?triggerid=23133&eventid=4711`);
    expect(renderTitle(rules.templates.title, vars, '[zbx:m]')).toBe('[zbx:m] [cpu] High CPU');
  });

  it('every placeholder has a value, and the default body uses only known ones', () => {
    const vars = variablesOf(full, classify(rules, full), { zabbixFrontendUrl: FRONTEND });
    expect(Object.keys(vars).sort()).toEqual([...TEMPLATE_VARIABLES].sort());
    for (const v of DEFAULT_BODY.matchAll(/\{\{\s*([a-z_]+)\s*\}\}/g)) expect(TEMPLATE_VARIABLES).toContain(v[1]);
    // The example rules ship the default body.
    expect(rules.templates.body.trimEnd()).toBe(DEFAULT_BODY);
  });
});

describe('durations and times, for people', () => {
  it.each([
    [0, '0s'],
    [45_400, '45s'],
    [5 * 60_000 + 3_000, '5m 3s'],
    [3_600_000 + 2 * 60_000 + 59_000, '1h 2m'],
    [2 * 86_400_000 + 3 * 3_600_000 + 4 * 60_000, '2d 3h 4m'],
    [-5_000, '0s'],
  ])('%d ms → %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('a moment in UTC, to the second', () => {
    expect(formatTime(Date.UTC(2026, 10, 23, 6, 18, 41, 900))).toBe('2026-11-23 06:18:41 UTC');
  });
});

describe('value history, for the dispatcher to append when the Zabbix API is configured', () => {
  const at = (s: number): number => Date.UTC(2026, 10, 23, 6, 18, s);

  it('the last values, newest first, at most ten, with the unit; nothing without values', () => {
    const points = Array.from({ length: 12 }, (_, i) => ({ at: at(i), value: String(80 + i) }));
    const html = valueHistoryHtml(points, '%');
    expect(html.startsWith('<p>Last values:<br>\n2026-11-23 06:18:11 UTC: 91 %<br>\n2026-11-23 06:18:10 UTC: 90 %')).toBe(true);
    expect(html.match(/UTC: /g)).toHaveLength(VALUE_HISTORY_MAX);
    expect(html).not.toContain('06:18:01 UTC');
    expect(valueHistoryHtml([])).toBe('');
    expect(withValueHistory('<p>body</p>', [])).toBe('<p>body</p>');
  });

  it('a hostile or huge log value stays short text', () => {
    const html = valueHistoryHtml([{ at: at(0), value: `<script>x</script> [zbx:0123456789abcdef0123] ${'L'.repeat(10_000)}` }]);
    expect(html).not.toMatch(/<script|\[zbx:/);
    expect(html.length).toBeLessThan(400);
    expect([...elements(html)].sort()).toEqual(['br', 'p']);
  });

  it('goes after the body only when both fit the maximum', () => {
    const points = [{ at: at(0), value: '97' }];
    expect(withValueHistory('<p>body</p>', points, '%')).toBe('<p>body</p>\n<p>Last values:<br>\n2026-11-23 06:18:00 UTC: 97 %</p>');
    const full = `<p>${'x'.repeat(BODY_MAX - 7)}</p>`;
    expect(withValueHistory(full, points)).toBe(full);
  });
});
