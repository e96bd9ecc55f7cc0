import { afterEach, describe, expect, it } from '@jest/globals';
import { FakeGlpi, type FakeGlpiOptions } from '../../src/glpi-fake/server.js';
import { Daemon, runCli, waitFor } from '../helpers/daemon.js';
import { zabbixBody } from '../helpers/fixtures.js';

/**
 * Issue 14 items 2-4 through the built daemon: rules naming GLPI items, the
 * host's asset on the ticket, and a solution GLPI's workflow refuses.
 */
let glpi: FakeGlpi | undefined;
let daemon: Daemon | undefined;

afterEach(async () => {
  await daemon?.stop();
  await glpi?.close();
  daemon = undefined;
  glpi = undefined;
});

const DIRECTORY: FakeGlpiOptions['directory'] = {
  categories: [{ id: 20, name: 'Monitoring' }, { id: 21, name: 'CPU', parent: 20 }, { id: 30, name: 'Hardware' }, { id: 31, name: 'CPU', parent: 30 }],
  groups: [{ id: 5, name: 'Linux admins' }],
  entities: [{ id: 3, name: 'Paris' }],
  users: [{ id: 41, name: 'noc', realname: 'Martin', firstname: 'Alice' }],
  assets: [
    { itemtype: 'Computer', id: 101, name: 'web-01', ips: ['10.0.0.11'] },
    { itemtype: 'NetworkEquipment', id: 201, name: 'core-switch', ips: ['10.0.0.254', '192.0.2.254'] },
  ],
};

const RULES = `
defaults:
  urgency: 3
  impact: 3
categories:
  - name: cpu
    match:
      tags: [{ tag: component, value: cpu }]
    glpi:
      itilcategory: "Monitoring > CPU"
      group_assign: "Linux admins"
      entity: "Root entity > Paris"
      users: { observer: ["Alice Martin"] }
`;

async function start(opt: { rules?: string; extra?: string; glpi?: FakeGlpiOptions } = {}): Promise<{ glpi: FakeGlpi; daemon: Daemon }> {
  const g = new FakeGlpi({ userTokens: ['user-token'], directory: DIRECTORY, ...opt.glpi });
  await g.listen();
  const d = new Daemon({ glpiUrl: g.url, rulesYaml: opt.rules ?? RULES, ...(opt.extra !== undefined ? { extra: opt.extra } : {}) });
  glpi = g;
  daemon = d;
  await d.start();
  return { glpi: g, daemon: d };
}

const cpuProblem = (eventId: string, host: string, ip: string) => zabbixBody('problem', { event_id: eventId, host_host: host, host_name: host, host_ip: ip, trigger_id: `7${eventId}` });

async function metrics(d: Daemon): Promise<string> {
  return (await d.get('/metrics')).text();
}

describe('routing by name and the host\'s asset', () => {
  it('a rule by complete name routes the ticket; the asset is attached by name, by IP, or not at all (counted)', async () => {
    const { glpi: g, daemon: d } = await start();
    await waitFor(() => d.logs.some((l) => l.msg === 'rules\' names resolved against GLPI'), 'names resolved at start');
    expect((await d.post(cpuProblem('1', 'web-01', '10.9.9.9'))).status).toBe(202);
    expect((await d.post(cpuProblem('2', 'sw-core-01', '192.0.2.254'))).status).toBe(202);
    expect((await d.post(cpuProblem('3', 'unknown-host', '198.51.100.7'))).status).toBe(202);
    await waitFor(() => g.tickets.size === 3, 'three tickets');
    const tickets = [...g.tickets.values()].sort((a, b) => a.id - b.id);
    for (const t of tickets) {
      expect(t.itilcategories_id).toBe(21); // "Monitoring > CPU", not "Hardware > CPU"
      expect(t.groups_id_assign).toEqual([5]);
      expect(t.entities_id).toBe(3);
      expect(t.users?.observer).toEqual([41]);
    }
    const items = tickets.map((t) => t.items ?? []);
    expect(items).toEqual(expect.arrayContaining([[{ itemtype: 'Computer', items_id: 101 }], [{ itemtype: 'NetworkEquipment', items_id: 201 }], []]));
    const m = await metrics(d);
    expect(m).toContain('zgb_glpi_assets_total{result="name"} 1');
    expect(m).toContain('zgb_glpi_assets_total{result="ip"} 1');
    expect(m).toContain('zgb_glpi_assets_total{result="none"} 1');
    expect(m).toContain('zgb_queue_depth{state="dead"} 0');
  });

  it('a reload while GLPI is unreachable keeps the last resolution: tickets still route once GLPI answers again', async () => {
    const { glpi: g, daemon: d } = await start();
    await waitFor(() => d.logs.some((l) => l.msg === 'rules\' names resolved against GLPI'), 'names resolved at start');
    g.setFaults({ mode: 'unavailable' });
    process.kill(d.pid, 'SIGHUP');
    await waitFor(() => d.logs.some((l) => l.code === 'GLPI_NAMES_KEPT'), 'the last resolution kept at reload');
    const searchesBefore = g.count('GET', 'ITILCategory');
    g.setFaults({ mode: 'up' });
    expect((await d.post(cpuProblem('11', 'web-01', '10.0.0.11'))).status).toBe(202);
    await waitFor(() => g.tickets.size === 1, 'a ticket');
    expect([...g.tickets.values()][0]!.itilcategories_id).toBe(21);
    // Routed from the kept resolution: GLPI was not asked for the category again.
    expect(g.count('GET', 'ITILCategory')).toBe(searchesBefore);
  });

  it('check-config --online lists an unknown and an ambiguous name with their YAML paths', async () => {
    const rules = `
categories:
  - name: cpu
    match: { tags: [{ tag: component, value: cpu }] }
    glpi: { itilcategory: "CPU", group_assign: "DBA team" }
`;
    const { daemon: d } = await start({ rules });
    await d.stop();
    const r = await runCli(['check-config', '--config', d.configFile, '--online']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/categories\[0\]\.glpi\.itilcategory "CPU": ambiguous: 2 ITILCategory items have this name \(ids 21, 31\)/);
    expect(r.stderr).toMatch(/categories\[0\]\.glpi\.group_assign "DBA team": unknown/);
  });
});

describe('explain', () => {
  it('shows the names a ticket would carry and, with --online, their ids and the host\'s asset', async () => {
    const { daemon: d } = await start();
    await d.stop();
    const body = JSON.stringify(cpuProblem('5', 'web-01', '10.0.0.11'));
    const offline = await runCli(['explain', '--config', d.configFile, '-'], undefined, body);
    expect(offline.code).toBe(0);
    expect(JSON.parse(offline.stdout).ticket.names).toMatchObject({ itilcategories_id: 'Monitoring > CPU', users: { observer: ['Alice Martin'] } });
    const online = await runCli(['explain', '--config', d.configFile, '--online', '-'], undefined, body);
    expect(online.code).toBe(0);
    const ticket = JSON.parse(online.stdout).ticket;
    expect(ticket.names).toMatchObject({ itilcategory: '"Monitoring > CPU" → id 21', entity: '"Root entity > Paris" → id 3', 'users.observer': '"Alice Martin" → id 41' });
    expect(ticket.asset).toBe('Computer 101');
  });
});

describe('recovery through GLPI workflows', () => {
  it('a solution a ticket template refuses falls back to the status, then a follow-up: no dead letter, the reason logged and counted', async () => {
    const { glpi: g, daemon: d } = await start({ glpi: { workflow: { mandatoryOnSolve: ['Location'] } } });
    const common = { host_host: 'web-01', host_name: 'web-01', trigger_id: '990' };
    expect((await d.post(zabbixBody('problem', { ...common, event_id: '21' }))).status).toBe(202);
    await waitFor(() => g.tickets.size === 1, 'a ticket');
    expect((await d.post(zabbixBody('recovery', { ...common, event_id: '21', event_recovery_id: '921' }))).status).toBe(202);
    await waitFor(() => g.followupsOf(1).some((f) => f.content.includes('GLPI refused the solution')), 'the follow-up saying Zabbix recovered');
    expect(g.tickets.get(1)!.status).toBeLessThan(5);
    await waitFor(() => d.logs.some((l) => l.code === 'GLPI_SOLUTION_REFUSED'), 'the refusal logged');
    const refused = d.logs.find((l) => l.code === 'GLPI_SOLUTION_REFUSED');
    expect(refused).toMatchObject({ reason: 'status_unchanged', fallback: 'followup' });
    expect(String(refused?.glpi_reason)).toContain('Mandatory fields are not filled. Please correct: Location');
    const m = await metrics(d);
    expect(m).toContain('zgb_glpi_solution_refused_total{reason="status_unchanged",fallback="followup"} 1');
    expect(m).toContain('zgb_queue_depth{state="dead"} 0');
  });

  it('a status matrix without Solved: the solution is refused, the status change is dropped, a follow-up says Zabbix recovered', async () => {
    const { glpi: g, daemon: d } = await start({ glpi: { workflow: { solveAllowed: false } } });
    const common = { host_host: 'web-01', host_name: 'web-01', trigger_id: '991' };
    expect((await d.post(zabbixBody('problem', { ...common, event_id: '31' }))).status).toBe(202);
    await waitFor(() => g.tickets.size === 1, 'a ticket');
    expect((await d.post(zabbixBody('recovery', { ...common, event_id: '31', event_recovery_id: '931' }))).status).toBe(202);
    await waitFor(() => g.followupsOf(1).length === 1, 'the follow-up');
    await waitFor(() => d.logs.some((l) => l.code === 'GLPI_SOLUTION_REFUSED'), 'the refusal logged');
    expect(g.tickets.get(1)!.status).toBeLessThan(5);
    expect(d.logs.find((l) => l.code === 'GLPI_SOLUTION_REFUSED')).toMatchObject({ reason: 'refused', fallback: 'followup' });
    expect(await metrics(d)).toContain('zgb_queue_depth{state="dead"} 0');
  });
});
