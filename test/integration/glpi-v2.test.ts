import { afterEach, describe, expect, it } from '@jest/globals';
import { FakeGlpi, STATUS, type FakeGlpiOptions } from '../../src/glpi-fake/server.js';
import { CONFIG_ENV, currentTestFailed, Daemon, runCli, waitFor } from '../helpers/daemon.js';
import { FakeZabbix } from '../helpers/fake-zabbix.js';
import { zabbixBody } from '../helpers/fixtures.js';

/**
 * The built daemon on GLPI 11's high-level API (`glpi.api: v2`): OAuth2 password grant at
 * /api.php/token, tickets and their timeline under /api.php/v2/Assistance/Ticket, the marker in
 * external_id. The fake serves v2 over the same store as the legacy API (src/glpi-fake/v2/).
 */
let glpi: FakeGlpi | undefined;
let daemon: Daemon | undefined;

let zabbix: FakeZabbix | undefined;

afterEach(async () => {
  await daemon?.stop();
  await glpi?.close();
  if (zabbix && currentTestFailed() !== false) process.stderr.write(`\n===== fake Zabbix calls =====\n${zabbix.calls.map((c) => JSON.stringify(c)).join('\n')}\n`);
  await zabbix?.close();
  daemon = undefined;
  glpi = undefined;
  zabbix = undefined;
});

const CLIENT = { id: 'zgb-client-id', secret: 'zgb-client-secret-0123' };
const BRIDGE_USER = { id: 21, name: 'glpi-bridge', password: 'bridge-password' };

async function glpi11(): Promise<FakeGlpi> {
  glpi = new FakeGlpi({ version: '11', oauthClients: [{ id: CLIENT.id, secret: CLIENT.secret }], accounts: [{ ...BRIDGE_USER }] });
  await glpi.listen();
  return glpi;
}

/** GLPI's root address: what an operator writes in glpi.url with api: v2. */
const rootOf = (g: FakeGlpi) => g.url.replace(/\/apirest\.php$/, '');

function v2Daemon(g: FakeGlpi, secret = CLIENT.secret, extra = ''): Daemon {
  return new Daemon({
    glpiUrl: `${rootOf(g)}/api.php/v2`,
    glpiAuth: ['  api: v2', '  client_id: ${GLPI_CLIENT_ID}', '  client_secret: ${GLPI_CLIENT_SECRET}', `  username: ${BRIDGE_USER.name}`, '  password: ${GLPI_PASSWORD}'].join('\n'),
    env: { GLPI_CLIENT_ID: CLIENT.id, GLPI_CLIENT_SECRET: secret, GLPI_PASSWORD: BRIDGE_USER.password },
    ...(extra ? { extra } : {}),
  });
}

const ENV = { ...CONFIG_ENV, GLPI_CLIENT_ID: CLIENT.id, GLPI_PASSWORD: BRIDGE_USER.password };
const host = { host_host: 'v2-db-01', host_name: 'v2-db-01', trigger_id: '7201' };

describe('GLPI 11 high-level API (glpi.api: v2) through the daemon', () => {
  it('problem → ticket with the marker in external_id; update → follow-up; recovery → solved; one OAuth login for all of it, none on the legacy API', async () => {
    const g = await glpi11();
    daemon = v2Daemon(g);
    await daemon.start();
    const d = daemon;
    expect((await d.post(zabbixBody('problem', { ...host, event_id: '72001', event_name: 'Disk < 10% & "rising" on v2-db-01', trigger_name: 'Disk < 10% & "rising" on v2-db-01' }))).status).toBe(202);
    await waitFor(() => g.tickets.size === 1, 'ticket created through v2');
    await waitFor(() => d.logs.some((l) => l.msg === 'GLPI job done' && l.operation === 'opened'), 'create recorded');
    const ticket = [...g.tickets.values()][0]!;
    expect(ticket.externalid).toMatch(/^\[zbx:[0-9a-f]+\]$/);
    expect(ticket.name).toContain('Disk < 10% & "rising"');
    expect(ticket.users_id_recipient).toBe(BRIDGE_USER.id);

    expect((await d.post(zabbixBody('update-acknowledged', { ...host, event_id: '72001', event_update_message: 'on it', user_fullname: 'Alice' }))).status).toBe(202);
    await waitFor(() => g.followupsOf(ticket.id).length === 1, 'follow-up added through the timeline');
    expect(g.followupsOf(ticket.id)[0]!.content).toContain('on it');

    expect((await d.post(zabbixBody('recovery', { ...host, event_id: '72001', event_recovery_id: '72002' }))).status).toBe(202);
    await waitFor(() => g.tickets.get(ticket.id)?.status === STATUS.SOLVED, 'ticket solved');
    expect(g.solutions.filter((s) => s.items_id === ticket.id)).toHaveLength(1);

    expect(g.v2.passwordLogins).toBe(1);
    expect(g.sessionsOpened).toBe(0);
    expect(g.requests.some((r) => /^\/api\.php\/v2\/Assistance\/Ticket\/\d+\/Timeline\/Solution$/.test(r.path) && r.method === 'POST')).toBe(true);
    expect(g.requests.filter((r) => r.path === 'initSession')).toHaveLength(0);
    expect((await d.get('/readyz')).status).toBe(200);
    expect(d.output.join('\n')).not.toContain(BRIDGE_USER.password);
    expect(d.output.join('\n')).not.toContain(CLIENT.secret);
  }, 30_000);

  it('an access token that expired (the hour passed) is renewed once and the job goes on; no dead letter', async () => {
    const g = await glpi11();
    daemon = v2Daemon(g);
    await daemon.start();
    const d = daemon;
    expect((await d.post(zabbixBody('problem', { ...host, event_id: '72101' }))).status).toBe(202);
    await waitFor(() => d.logs.some((l) => l.msg === 'GLPI job done' && l.operation === 'opened'), 'ticket created');
    const issued = g.v2.tokensIssued;
    g.v2.expireTokens();
    expect((await d.post(zabbixBody('recovery', { ...host, event_id: '72101', event_recovery_id: '72102' }))).status).toBe(202);
    await waitFor(() => [...g.tickets.values()][0]?.status === STATUS.SOLVED, 'solved with a renewed token');
    expect(g.v2.tokensIssued).toBe(issued + 1);
    expect(g.requests.some((r) => r.status === 400 && r.path.startsWith('/api.php/v2/'))).toBe(true);
    const stats = await runCli(['queue', '--config', d.configFile], { ...ENV, GLPI_CLIENT_SECRET: CLIENT.secret });
    expect(stats.stdout).toMatch(/^dead letters: 0$/m);
  }, 30_000);

  it('a create whose answer is lost is found again by external_id: one ticket', async () => {
    const g = await glpi11();
    daemon = v2Daemon(g);
    await daemon.start();
    const d = daemon;
    g.setFaults({ dropAfterCommitNext: 1 });
    expect((await d.post(zabbixBody('problem', { ...host, event_id: '72201' }))).status).toBe(202);
    await waitFor(() => d.logs.some((l) => l.msg === 'GLPI job done' && l.operation === 'adopted'), 'the lost create found by its marker');
    expect(g.tickets.size).toBe(1);
    expect(g.requests.some((r) => r.method === 'GET' && r.path === '/api.php/v2/Assistance/Ticket')).toBe(true);
  }, 30_000);

  it('a wrong client secret: /readyz 503 GLPI_LOGIN_FAILED with the OAuth error, no ticket; check-config --online says the same, and succeeds once fixed', async () => {
    const g = await glpi11();
    daemon = v2Daemon(g, 'not-the-client-secret');
    await daemon.start();
    const d = daemon;
    expect((await d.post(zabbixBody('problem', { ...host, event_id: '72301' }))).status).toBe(202);
    await waitFor(() => d.logs.some((l) => l.code === 'GLPI_LOGIN_FAILED'), 'login failure logged');
    await waitFor(async () => (await d.get('/readyz')).status === 503, '/readyz 503');
    const failure = d.logs.find((l) => l.code === 'GLPI_LOGIN_FAILED')!;
    expect(String(failure.err)).toContain('invalid_client');
    expect(g.tickets.size).toBe(0);

    const bad = await runCli(['check-config', '--config', d.configFile, '--online'], { ...ENV, GLPI_CLIENT_SECRET: 'not-the-client-secret' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('invalid_client');
    const good = await runCli(['check-config', '--config', d.configFile, '--online'], { ...ENV, GLPI_CLIENT_SECRET: CLIENT.secret });
    expect(good.stderr).toBe('');
    expect(good.code).toBe(0);
    expect(good.stdout).toContain('GLPI: high-level API (v2): OAuth2 token obtained');
    expect(good.stdout).toContain('GLPI 11');
  }, 30_000);

  it('issue 14 on v2: names in the rules resolved, the rules\' users on the ticket as team members, the host\'s asset not linked (said once, counted); three cycles open a Problem that names each ticket; no dead letter', async () => {
    const DIRECTORY: FakeGlpiOptions['directory'] = {
      categories: [{ id: 20, name: 'Monitoring' }, { id: 21, name: 'CPU', parent: 20 }, { id: 30, name: 'Hardware' }, { id: 31, name: 'CPU', parent: 30 }],
      groups: [{ id: 5, name: 'Linux admins' }],
      users: [{ id: 41, name: 'noc', realname: 'Martin', firstname: 'Alice' }],
      assets: [{ itemtype: 'Computer', id: 101, name: 'v2-web-01', ips: ['10.0.0.11'] }],
    };
    const g = new FakeGlpi({ version: '11', oauthClients: [{ id: CLIENT.id, secret: CLIENT.secret }], accounts: [{ ...BRIDGE_USER }], directory: DIRECTORY });
    glpi = g;
    await g.listen();
    daemon = new Daemon({
      glpiUrl: `${rootOf(g)}/api.php/v2`,
      glpiAuth: ['  api: v2', '  client_id: ${GLPI_CLIENT_ID}', '  client_secret: ${GLPI_CLIENT_SECRET}', `  username: ${BRIDGE_USER.name}`, '  password: ${GLPI_PASSWORD}'].join('\n'),
      env: { GLPI_CLIENT_ID: CLIENT.id, GLPI_CLIENT_SECRET: CLIENT.secret, GLPI_PASSWORD: BRIDGE_USER.password },
      // reopen_window 0: each problem after a recovery is a new ticket cycle (a recurrence).
      correlation: '  coalesce_window: 0\n  reopen_window: 0',
      rulesYaml: [
        'categories:',
        '  - name: cpu',
        '    match:',
        '      tags: [{ tag: component, value: cpu }]',
        '    glpi:',
        '      itilcategory: "Monitoring > CPU"',
        '      group_assign: "Linux admins"',
        '      users: { observer: ["Alice Martin"] }',
        '    problems: { after_cycles: 3, within: 7d }',
        '',
      ].join('\n'),
    });
    const d = daemon;
    await d.start();
    const web = { host_host: 'v2-web-01', host_name: 'v2-web-01', host_ip: '10.0.0.11', trigger_id: '7401' };
    for (const n of [1, 2, 3]) {
      const id = String(74000 + n);
      expect((await d.post(zabbixBody('problem', { ...web, event_id: id }))).status).toBe(202);
      await waitFor(() => g.tickets.size === n, `ticket ${n}`);
      expect((await d.post(zabbixBody('recovery', { ...web, event_id: id, event_recovery_id: `9${id}` }))).status).toBe(202);
      await waitFor(() => [...g.tickets.values()][n - 1]?.status === STATUS.SOLVED, `ticket ${n} solved`);
    }
    for (const t of g.tickets.values()) {
      expect(t.itilcategories_id).toBe(21); // "Monitoring > CPU", not "Hardware > CPU"
      expect(t.groups_id_assign).toEqual([5]);
      expect(t.users?.observer).toEqual([41]);
      expect(t.items).toBeUndefined();
    }
    await waitFor(() => g.itil.problems.size === 1 && g.followups.filter((f) => f.itemtype === 'Problem').length === 3, 'a problem naming the three tickets');
    const problem = [...g.itil.problems.values()][0]!;
    expect(problem.name).toMatch(/^\[zbx:p[0-9a-f]{20}\] Recurring: /);
    expect(problem.users_id_recipient).toBe(BRIDGE_USER.id);
    const notes = g.followups.filter((f) => f.itemtype === 'Problem').map((f) => f.content).join('\n');
    for (const t of g.tickets.keys()) expect(notes).toContain(`[zbx-link:ticket:${t}]`);
    expect(g.itil.problemTickets).toHaveLength(0); // no v2 route links them: the follow-ups say which to link
    await waitFor(() => d.logs.some((l) => l.code === 'GLPI_PROBLEMS_UNSUPPORTED'), 'links said unsupported');
    expect(d.logs.filter((l) => l.code === 'GLPI_PROBLEMS_UNSUPPORTED')).toHaveLength(1);
    expect(d.logs.filter((l) => l.code === 'GLPI_LOOKUP_UNSUPPORTED')).toHaveLength(1);
    const m = await (await d.get('/metrics')).text();
    expect(m).toMatch(/zgb_glpi_assets_total\{result="unsupported"\} 3/);
    expect(m).toMatch(/zgb_glpi_problems_total\{operation="created"[^}]*\} 1\n/);
    expect(m).toMatch(/zgb_glpi_problems_total\{operation="unsupported"\} 3\n/);
    expect(g.sessionsOpened).toBe(0);
    expect(g.v2.passwordLogins).toBe(1);
    const stats = await runCli(['queue', '--config', d.configFile], { ...ENV, GLPI_CLIENT_SECRET: CLIENT.secret });
    expect(stats.stdout).toMatch(/^dead letters: 0$/m);
  }, 60_000);

  it('read-back on v2: a technician\'s public follow-up and solve reach the open Zabbix event once each, with one GLPI search per sweep; the bridge\'s own follow-ups and private notes do not', async () => {
    const TECH = { id: 22, name: 'tech', password: 'tech-password' };
    const g = new FakeGlpi({ version: '11', oauthClients: [{ id: CLIENT.id, secret: CLIENT.secret }], accounts: [{ ...BRIDGE_USER }, TECH] });
    glpi = g;
    await g.listen();
    const z = new FakeZabbix();
    zabbix = z;
    const url = await z.listen();
    z.problems.set('75001', { trigger: '7501', host: 'v2-app-01', manualClose: false });
    const extra = [
      'zabbix:', `  url: ${url}`, '  api_token: zbx-token', '  auth: body',
      '  poll:', '    enabled: false', "    schedule: '*/1 * * * * *'",
      '  write_back:', '    glpi_status: true', '    close_problem: false', '    mirror_followups: true',
    ].join('\n');
    daemon = v2Daemon(g, CLIENT.secret, extra);
    const d = daemon;
    await d.start();
    const common = { host_host: 'v2-app-01', host_name: 'v2-app-01', trigger_id: '7501', event_id: '75001' };
    expect((await d.post(zabbixBody('problem', common))).status).toBe(202);
    await waitFor(() => g.tickets.size === 1 && z.count('event.acknowledge') === 1, 'the ticket and its link written back');
    const id = [...g.tickets.keys()][0]!;
    // The bridge's own follow-up (the problem again) is not mirrored.
    expect((await d.post(zabbixBody('problem', { ...common, event_id: '75002' }))).status).toBe(202);
    await waitFor(() => g.followupsOf(id).length === 1, 'the bridge\'s follow-up');
    g.addTechnicianFollowup(id, TECH.id, '<p>Rebooted the <b>switch</b>, watching.</p>');
    g.addTechnicianFollowup(id, TECH.id, '<p>internal note</p>', true);
    const acks = (text: string) => z.calls.filter((c) => c.method === 'event.acknowledge' && String(c.params.message).includes(text));
    await waitFor(() => acks('follow-up:').length === 1, 'the follow-up mirrored');
    expect(acks('follow-up:')[0]!.params).toMatchObject({ action: 4, message: `[glpi-bridge] GLPI ticket #${id}, follow-up: Rebooted the switch, watching.` });
    g.setTicketStatus(id, STATUS.SOLVED);
    await waitFor(() => acks('in GLPI while the problem is still open').length === 1, 'the solve said on the event');
    const sweeps = g.requests.filter((r) => r.method === 'GET' && r.path === '/api.php/v2/Assistance/Ticket').length;
    await waitFor(() => g.requests.filter((r) => r.method === 'GET' && r.path === '/api.php/v2/Assistance/Ticket').length >= sweeps + 3, 'three more sweeps');
    expect(acks('follow-up:')).toHaveLength(1);
    expect(acks('in GLPI while the problem is still open')).toHaveLength(1);
    expect(acks('internal note')).toHaveLength(0);
    expect(g.followupsOf(id).filter((f) => f.users_id === BRIDGE_USER.id)).toHaveLength(1);
    expect(g.requests.some((r) => r.path === '/apirest.php/search/Ticket' || r.path === 'search/Ticket')).toBe(false);
  }, 60_000);
});
