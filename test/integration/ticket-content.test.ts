import { afterEach, describe, expect, it } from '@jest/globals';
import { decodeHtml, FakeGlpi } from '../../src/glpi-fake/server.js';
import { Daemon, waitFor } from '../helpers/daemon.js';
import { FakeZabbix } from '../helpers/fake-zabbix.js';
import { zabbixBody } from '../helpers/fixtures.js';

/**
 * Issue 14 items 6 and 7 through the built daemon: what a technician reads on
 * the ticket. Real-looking Zabbix 6.0 bodies from our media type, with its
 * trigger_description and item_name parameters; the GLPI fake (10: stores
 * text HTML-encoded; 11: as is) and a fake Zabbix API, whose folder is the
 * frontend the links point to.
 */
let glpi: FakeGlpi | undefined;
let zabbix: FakeZabbix | undefined;
let daemon: Daemon | undefined;

afterEach(async () => {
  await daemon?.stop();
  await glpi?.close();
  await zabbix?.close();
  daemon = undefined;
  glpi = undefined;
  zabbix = undefined;
});

async function setup(version: '10' | '11'): Promise<{ glpi: FakeGlpi; daemon: Daemon; frontend: string }> {
  const g = new FakeGlpi({ version, userTokens: ['user-token'] });
  await g.listen();
  glpi = g;
  const z = new FakeZabbix();
  zabbix = z;
  const api = await z.listen();
  const extra = ['zabbix:', `  url: ${api}`, '  api_token: zbx-token', '  auth: body', '  poll:', '    enabled: false'].join('\n');
  const d = new Daemon({ glpiUrl: version === '11' ? g.urlV1 : g.url, extra });
  daemon = d;
  await d.start();
  return { glpi: g, daemon: d, frontend: api.replace(/api_jsonrpc\.php$/, '') };
}

const DESCRIPTION = 'CPU above 90 % for 5 minutes.\nCheck the top processes: <script>alert("x")</script> & restart "worker".';

/** Our media type's problem body as Zabbix 6.0 sends it, with the parameters issue 14 added. */
const problem = zabbixBody('problem', { trigger_description: DESCRIPTION, item_name: 'CPU utilization' });

function recoveryOf(eventId: string, recoveryId: string, problemTime: string, recoveryTime: string): Record<string, string> {
  return zabbixBody('recovery', { event_id: eventId, event_recovery_id: recoveryId, event_time: problemTime, event_recovery_time: recoveryTime, trigger_description: DESCRIPTION, item_name: 'CPU utilization' });
}

async function accepted(d: Daemon, body: unknown): Promise<void> {
  const res = await d.post(body);
  expect(res.status).toBe(202);
}

describe('ticket content people can act on (issue 14 item 7)', () => {
  it('GLPI 10: the body names host, IP, item, value, description and tags, and links to the event and the graph; hostile text stays text', async () => {
    const { glpi: g, daemon: d, frontend } = await setup('10');
    await accepted(d, problem);
    await waitFor(() => g.tickets.size === 1, 'ticket created');
    const stored = g.tickets.get(1)!.content;
    // GLPI 10 stores the content HTML-encoded: no raw markup at all in the column.
    expect(stored).not.toMatch(/[<>]/);
    const html = decodeHtml(stored);
    expect(html).toContain('Host: bridge-test-01 (bridge-test-01)');
    expect(html).toContain('IP: 127.0.0.1');
    expect(html).toContain('Item: CPU utilization');
    expect(html).toContain('Item key: system.cpu.util');
    expect(html).toContain('Value: 97 %');
    expect(html).toContain('Tags: component:cpu, scope:performance, bridge:test');
    expect(html).toContain('Description: CPU above 90 % for 5 minutes.<br>\nCheck the top processes: &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; restart &quot;worker&quot;.');
    const event = `${frontend}tr_events.php?triggerid=23133&amp;eventid=1`;
    expect(html).toContain(`Event page: <a href="${event}" target="_blank" rel="noopener noreferrer">${event}</a>`);
    expect(html).toContain(`<a href="${frontend}history.php?action=showgraph&amp;itemids[]=44518"`);
    expect(html).not.toMatch(/<script/i);
    expect(new Set([...html.matchAll(/<\/?([a-z]+)/g)].map((m) => m[1]))).toEqual(new Set(['p', 'br', 'a']));
  });

  it('GLPI 11 stores the same HTML as is', async () => {
    const { glpi: g, daemon: d, frontend } = await setup('11');
    await accepted(d, problem);
    await waitFor(() => g.tickets.size === 1, 'ticket created');
    const html = g.tickets.get(1)!.content;
    expect(html).toContain(`<a href="${frontend}tr_events.php?triggerid=23133&amp;eventid=1"`);
    expect(html).toContain('Item: CPU utilization<br>');
    expect(html).toContain('&lt;script&gt;');
  });
});

describe('a timeline people can read (issue 14 item 6)', () => {
  it('each recovery says how long the incident lasted and how many times it occurred; a reopened ticket counts both occurrences', async () => {
    const { glpi: g, daemon: d } = await setup('10');
    await accepted(d, problem);
    await waitFor(() => g.tickets.size === 1, 'ticket created');
    await accepted(d, recoveryOf('1', '2', '06:18:41', '06:18:51'));
    await waitFor(() => g.tickets.get(1)!.status === 5, 'ticket solved');
    expect(decodeHtml(g.solutions[0]!.content)).toContain('Incident lasted 10s (2026-11-23 06:18:41 UTC to 2026-11-23 06:18:51 UTC) and occurred once.');

    // The problem comes back within the reopen window: the same ticket, reopened; then it recovers again.
    await accepted(d, { ...problem, event_id: '3', event_time: '06:30:00' });
    await waitFor(() => g.tickets.get(1)!.status === 2, 'ticket reopened');
    await accepted(d, recoveryOf('3', '4', '06:30:00', '06:45:30'));
    await waitFor(() => g.solutions.length === 2 && g.tickets.get(1)!.status === 5, 'ticket solved again');
    expect(g.tickets.size).toBe(1);
    const last = decodeHtml(g.solutions[1]!.content);
    expect(last).toContain('Problem resolved in Zabbix: High CPU utilization on bridge-test-01 (event 3, recovery event 4).');
    // From the first problem's start to the last recovery, on Zabbix's clock.
    expect(last).toContain('Incident lasted 26m 49s (2026-11-23 06:18:41 UTC to 2026-11-23 06:45:30 UTC) and occurred 2 times.');
  });

  it('a severity change in Zabbix reads old → new', async () => {
    const { glpi: g, daemon: d } = await setup('10');
    await accepted(d, { ...problem, event_tags: '[{"tag":"component","value":"network"}]', item_key: 'net.if.in[eth0]', item_value: '1 bps' });
    await waitFor(() => g.tickets.size === 1, 'ticket created');
    const ack = zabbixBody('update-acknowledged');
    await accepted(d, { ...ack, event_tags: '[{"tag":"component","value":"network"}]', item_key: 'net.if.in[eth0]', item_value: '1 bps', event_update_action: 'changed severity', event_nseverity: '5', event_severity: 'Disaster', event_update_message: '{EVENT.UPDATE.MESSAGE}' });
    await waitFor(() => g.followupsOf(1).length === 1, 'follow-up posted');
    expect(decodeHtml(g.followupsOf(1)[0]!.content)).toContain('Severity: High → Disaster.');
  });
});
