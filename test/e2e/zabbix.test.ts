import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { FakeGlpi, type FakeTicket } from '../../src/glpi-fake/server.js';
import { Daemon, TOKEN, waitFor } from '../helpers/daemon.js';
import { ROOT } from '../helpers/fixtures.js';
import { createMaintenance, endMaintenance, inMaintenance, openProblem, type Maintenance, type ProblemState } from './maintenance.js';
import { ZabbixAdmin } from './zabbix-api.js';

/**
 * End to end with a real Zabbix 6.0 (started by test/e2e/zabbix/up.sh), and the same scenarios
 * with 7.0 (test/e2e/zabbix7/: up.sh runs it in a trixie root, zabbix.test.ts points this file at it):
 * our media type imported through the API, a host with trapper items and
 * triggers for five categories, a second host in a maintenance (maintenance.ts),
 * an action and a user; values pushed with zabbix_sender; the bridge between
 * Zabbix and the GLPI fake server.
 * No fixed port: the bridge listens on a free port, then the media type is
 * pointed at it; up.sh chose the server's trapper port (read from its config).
 * A failing test prints the bridge's whole log (test/helpers/daemon.ts).
 */
const API = process.env.ZABBIX_E2E_URL ?? '';
/** Set when the Zabbix runs in a chroot (test/e2e/zabbix7/up.sh: 7.0 in a Debian trixie root); its state folder is then inside it. */
const CHROOT = process.env.ZBX_E2E_CHROOT ?? '';
const STATE = process.env.ZBX_STATE ?? (CHROOT ? join(CHROOT, 'tmp', 'zgb-zbx7') : '/tmp/zgb-zbx');
/** The port zabbix_server's trapper listens on (up.sh writes it into the server's config). */
function serverPort(): string {
  const conf = join(STATE, 'zabbix_server.conf');
  return (existsSync(conf) ? /^ListenPort=(\d+)$/m.exec(readFileSync(conf, 'utf8'))?.[1] : undefined) ?? '10051';
}
const RUN = Date.now().toString(36);
const HOST = `bridge-e2e-${RUN}`;
/** A second host of the same action and poll scope, in a maintenance from the start (test/e2e/maintenance.ts). */
const MAINT_HOST = `${HOST}-maint`;
const started = Date.now();
const timings: string[] = [];
const mark = (what: string) => timings.push(`${what}: +${((Date.now() - started) / 1000).toFixed(1)} s`);
/** The second of the minute now (Zabbix's timer and escalator work in whole minutes: see maintenance.ts). */
const second = (ms = Date.now()) => `:${String(new Date(ms).getUTCSeconds()).padStart(2, '0')}`;

const ITEMS = [
  { key: 'system.cpu.util', units: '%', component: 'cpu', problem: 97, ok: 10, expr: '>90', priority: 3 },
  { key: 'vm.memory.utilization', units: '%', component: 'memory', problem: 96, ok: 40, expr: '>90', priority: 3 },
  { key: 'vfs.fs.size[/,pused]', units: '%', component: 'storage', problem: 95, ok: 50, expr: '>90', priority: 2 },
  { key: 'net.if.in[eth0]', units: 'bps', component: 'network', problem: 0, ok: 900000, expr: '<1000', priority: 4 },
  { key: 'sensor.temp[cpu]', units: '°C', component: 'temperature', problem: 90, ok: 45, expr: '>80', priority: 3 },
] as const;

const zbx = new ZabbixAdmin(API);
let glpi: FakeGlpi;
let daemon: Daemon;
/** Every bridge process of this run (the poller scenario restarts it), for their logs. */
const bridges: Daemon[] = [];
let mediatypeid = '';
let maintenance: Maintenance;
let maintHostid = '';
let maintTriggerid = '';
let actionid = '';
let apiToken = '';
/** The bridge's port, once it listens (0: not started yet). */
let bridgePort = 0;
const triggerOf = new Map<string, string>();

/** zabbix_sender's summary ("processed: 1; failed: 0; …"); it exits 2 while the item is not in the server's cache yet. */
function send(key: string, value: number, host = HOST): string {
  const r = spawnSync('zabbix_sender', ['-z', '127.0.0.1', '-p', serverPort(), '-s', host, '-k', key, '-o', String(value)], { encoding: 'utf8' });
  if (r.error) throw r.error;
  return r.stdout;
}

/** Tickets of this run's host (the Zabbix server host may have problems of its own). */
function ours(): FakeTicket[] {
  return [...glpi.tickets.values()].filter((t) => t.content.includes(`(${HOST})`));
}

function ticketFor(component: string): FakeTicket | undefined {
  return ours().find((t) => t.content.includes(`component:${component}`));
}

/** Make zabbix_server read its configuration (hosts, items, maintenances) from the database now, not at its next CacheUpdateFrequency. */
function reloadConfigCache(): void {
  if (CHROOT) execFileSync('chroot', [CHROOT, 'zabbix_server', '-c', join('/', relative(CHROOT, STATE), 'zabbix_server.conf'), '-R', 'config_cache_reload']);
  else execFileSync('zabbix_server', ['-c', join(STATE, 'zabbix_server.conf'), '-R', 'config_cache_reload']);
}

/** The bridge's counter (Prometheus text from /metrics) with exactly these labels; 0 before its first increment. */
async function counter(name: string, labels: string): Promise<number> {
  const text = await (await daemon.get('/metrics')).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

/** Poller sweeps that have completed (zgb_zabbix_polls_total{result="success"}). */
const sweeps = () => counter('zgb_zabbix_polls_total', 'result="success"');

/** Point the media type at the bridge (Zabbix reads media types from its database for each alert). */
async function setBridgeUrl(url: string): Promise<void> {
  const [mt] = await zbx.call<{ parameters: { name: string; value: string }[] }[]>('mediatype.get', { mediatypeids: [mediatypeid], output: 'extend' });
  const parameters = mt!.parameters.map((p) => (p.name === 'bridge_url' ? { name: p.name, value: url } : { name: p.name, value: p.value }));
  await zbx.call('mediatype.update', { mediatypeid, parameters });
}

/**
 * The bridge on a free port (the port of its previous run on a restart, since Zabbix
 * has it; another one if that was taken meanwhile), then the media type pointed at it.
 */
async function startBridge(dataDir?: string): Promise<void> {
  const bridge = (port: number) =>
    new Daemon({
      glpiUrl: glpi.url,
      listen: `127.0.0.1:${port}`,
      ...(dataDir ? { dataDir } : {}),
      extra: ['zabbix:', `  url: ${API}`, '  api_token: ${ZABBIX_API_TOKEN}', '  poll:', "    schedule: '*/3 * * * * *'", '    host_groups: [bridge-e2e]', '  write_back:', '    acknowledge: false'].join('\n'),
      env: { ZABBIX_API_TOKEN: apiToken },
    });
  daemon = bridge(bridgePort);
  try {
    await daemon.start();
  } catch (e) {
    const taken = daemon.logs.some((l) => l.msg === 'cannot start' && String(l.err).includes('EADDRINUSE'));
    if (bridgePort === 0 || !taken) throw e;
    daemon = bridge(0);
    await daemon.start();
  }
  bridges.push(daemon);
  const port = Number(new URL(daemon.url).port);
  if (port !== bridgePort) {
    bridgePort = port;
    await setBridgeUrl(`http://127.0.0.1:${port}/zabbix/webhook`);
  }
}

/**
 * The maintenance scenario's problem, raised as soon as the timer has put its host into maintenance
 * (6.0: at the first full minute after beforeAll; 7.0: at once). Started by beforeAll and awaited by the
 * scenario, so that Zabbix's once-a-minute look at the paused escalation comes while the other scenarios run.
 */
async function fireInMaintenance(): Promise<{ problem: ProblemState; fired: number }> {
  await waitFor(() => inMaintenance(zbx, maintHostid), 'the host in maintenance (6.0: at the first full minute after its creation)', 90_000);
  mark(`host in maintenance at ${second()}`);
  send('system.cpu.util', 97, MAINT_HOST);
  const fired = Date.now();
  let problem: ProblemState | undefined;
  await waitFor(async () => (problem = await openProblem(zbx, maintTriggerid)) !== undefined, 'the problem in Zabbix', 30_000);
  return { problem: problem!, fired };
}
let maintenanceProblem: ReturnType<typeof fireInMaintenance>;

beforeAll(async () => {
  await zbx.login();
  const [tokenid] = (await zbx.call<{ tokenids: string[] }>('token.create', { name: `bridge-${RUN}`, userid: '1' })).tokenids;
  apiToken = (await zbx.call<{ token: string }[]>('token.generate', [tokenid]))[0]!.token;

  // The bridge URL is set once the bridge listens (startBridge).
  const version = await zbx.call<string>('apiinfo.version', []);
  const mediaTypeFile = version.startsWith('6.') ? 'zabbix-media-type-6.0.yaml' : 'zabbix-media-type-7.0.yaml';
  const source = readFileSync(join(ROOT, 'config', mediaTypeFile), 'utf8').replace('<BRIDGE WEBHOOK TOKEN>', TOKEN);
  await zbx.call('configuration.import', { format: 'yaml', source, rules: { mediaTypes: { createMissing: true, updateExisting: true } } });
  mediatypeid = (await zbx.call<{ mediatypeid: string }[]>('mediatype.get', { filter: { name: 'GLPI bridge' }, output: ['mediatypeid'] }))[0]!.mediatypeid;
  await zbx.call('mediatype.update', { mediatypeid, attempt_interval: '5s', maxattempts: '3' });

  const groups = await zbx.call<{ groupid: string }[]>('hostgroup.get', { filter: { name: ['bridge-e2e'] } });
  const groupid = groups[0]?.groupid ?? (await zbx.call<{ groupids: string[] }>('hostgroup.create', { name: 'bridge-e2e' })).groupids[0]!;
  // Hosts of earlier runs against the same Zabbix would still have open problems for the poller to find.
  // Their actions go first: Zabbix 7.0 refuses to delete a host that an action's condition names; and
  // their maintenances (both versions refuse to delete a maintenance's last host).
  const oldActions = await zbx.call<{ actionid: string }[]>('action.get', { search: { name: 'bridge-' }, output: ['actionid'] });
  if (oldActions.length > 0) await zbx.call('action.delete', oldActions.map((a) => a.actionid));
  const oldMaintenances = await zbx.call<{ maintenanceid: string }[]>('maintenance.get', { search: { name: 'bridge-' }, output: ['maintenanceid'] });
  if (oldMaintenances.length > 0) await zbx.call('maintenance.delete', oldMaintenances.map((m) => m.maintenanceid));
  const old = await zbx.call<{ hostid: string }[]>('host.get', { groupids: [groupid], output: ['hostid'] });
  if (old.length > 0) await zbx.call('host.delete', old.map((h) => h.hostid));
  const hostid = (await zbx.call<{ hostids: string[] }>('host.create', { host: HOST, groups: [{ groupid }], tags: [{ tag: 'bridge', value: 'e2e' }] })).hostids[0]!;
  for (const it of ITEMS) {
    await zbx.call('item.create', { hostid, name: it.key, key_: it.key, type: 2, value_type: 0, units: it.units });
    const { triggerids } = await zbx.call<{ triggerids: string[] }>('trigger.create', {
      description: `${it.component} problem on {HOST.NAME}`,
      expression: `last(/${HOST}/${it.key})${it.expr}`,
      priority: it.priority,
      manual_close: 1,
      tags: [{ tag: 'component', value: it.component }],
    });
    triggerOf.set(it.component, triggerids[0]!);
  }
  // The maintenance scenario's host, put into maintenance now: 6.0 starts a maintenance only at the next
  // full minute, which passes while the other scenarios run.
  maintHostid = (await zbx.call<{ hostids: string[] }>('host.create', { host: MAINT_HOST, groups: [{ groupid }], tags: [{ tag: 'bridge', value: 'e2e' }] })).hostids[0]!;
  await zbx.call('item.create', { hostid: maintHostid, name: 'system.cpu.util', key_: 'system.cpu.util', type: 2, value_type: 0, units: '%' });
  maintTriggerid = (
    await zbx.call<{ triggerids: string[] }>('trigger.create', {
      description: 'cpu problem on {HOST.NAME}',
      expression: `last(/${MAINT_HOST}/system.cpu.util)>90`,
      priority: 3,
      manual_close: 1,
      tags: [{ tag: 'component', value: 'cpu' }],
    })
  ).triggerids[0]!;
  maintenance = await createMaintenance(zbx, `bridge-${RUN}`, maintHostid);
  const userid = (
    await zbx.call<{ userids: string[] }>('user.create', {
      username: `bridge-${RUN}`,
      passwd: `Br1dge-${RUN}-pass!`,
      roleid: '3',
      usrgrps: [{ usrgrpid: '7' }],
      medias: [{ mediatypeid, sendto: 'glpi', active: 0, severity: 63, period: '1-7,00:00-24:00' }],
    })
  ).userids[0]!;
  const message = { operationtype: 0, opmessage: { default_msg: 1, mediatypeid }, opmessage_usr: [{ userid }] };
  // pause_suppressed left to its default (1: "Pause operations for suppressed problems"), as an operator would.
  actionid = (
    await zbx.call<{ actionids: string[] }>('action.create', {
      name: `bridge-${RUN}`,
      eventsource: 0,
      status: 0,
      esc_period: '1h',
      filter: { evaltype: 0, conditions: [hostid, maintHostid].map((value) => ({ conditiontype: 1, operator: 0, value })) },
      operations: [message],
      recovery_operations: [message],
      update_operations: [message],
    })
  ).actionids[0]!;
  glpi = new FakeGlpi({ userTokens: ['user-token'] });
  await glpi.listen();
  await startBridge();
  reloadConfigCache();
  await waitFor(() => ITEMS.every((it) => /processed: 1/.test(send(it.key, it.ok))) && /processed: 1/.test(send('system.cpu.util', 10, MAINT_HOST)), 'items in the server configuration cache', 60_000);
  mark(`Zabbix ${version} provisioned (${mediaTypeFile}); bridge on port ${bridgePort}`);
  maintenanceProblem = fireInMaintenance();
  maintenanceProblem.catch(() => undefined); // its failure is the maintenance scenario's, when it awaits it
}, 120_000);

afterAll(async () => {
  await daemon?.stop();
  await glpi?.close();
  process.stdout.write(`zabbix e2e timings:\n  ${timings.join('\n  ')}\n`);
});

async function problemEvent(component: string): Promise<{ eventid: string; acknowledges: { message: string }[] }> {
  const events = await zbx.call<{ eventid: string; acknowledges: { message: string }[] }[]>('problem.get', {
    objectids: [triggerOf.get(component)],
    selectAcknowledges: ['message'],
    recent: true,
    sortfield: ['eventid'],
    sortorder: 'DESC',
  });
  return events[0]!;
}

describe(`with a real Zabbix ${CHROOT ? '7.0' : '6.0'}`, () => {
  it('one ticket per problem with the right category and urgency; the ticket link is written back to the event', async () => {
    for (const it of ITEMS) send(it.key, it.problem);
    await waitFor(() => ours().length === ITEMS.length, 'five tickets', 60_000);
    mark('five problems → five tickets');
    const expected: Record<string, { cat: number; urgency: number }> = {
      cpu: { cat: 11, urgency: 5 }, // 97 % above 95 → disaster
      memory: { cat: 12, urgency: 4 }, // 96 % above 95 → high
      storage: { cat: 13, urgency: 4 }, // 95 % above 90 → high
      network: { cat: 14, urgency: 4 }, // Zabbix severity high
      temperature: { cat: 15, urgency: 5 }, // 90 °C above 85 → disaster
    };
    for (const [component, e] of Object.entries(expected)) {
      const t = ticketFor(component);
      expect(t).toBeDefined();
      expect({ component, cat: t!.itilcategories_id, urgency: t!.urgency }).toEqual({ component, cat: e.cat, urgency: e.urgency });
    }
    await waitFor(async () => (await problemEvent('cpu')).acknowledges.some((a) => a.message.startsWith('[glpi-bridge] GLPI ticket #')), 'write-back on the Zabbix event', 30_000);
    const cpu = ticketFor('cpu')!;
    expect((await problemEvent('cpu')).acknowledges.map((a) => a.message)).toContain(`[glpi-bridge] GLPI ticket #${cpu.id}: ${glpi.url.replace('/apirest.php', '')}/front/ticket.form.php?id=${cpu.id}`);
    mark('ticket link written back');
    await waitFor(() => daemon.decisions().some((d) => d.reason === 'our own write-back message'), 'the write-back update webhook recognised and ignored', 30_000);
    expect(glpi.followupsOf(cpu.id).filter((f) => f.content.includes('[glpi-bridge]'))).toHaveLength(0);
  }, 120_000);

  it('an acknowledge in Zabbix becomes a follow-up; a recovery solves the ticket', async () => {
    const cpu = ticketFor('cpu')!;
    const event = await problemEvent('cpu');
    await zbx.call('event.acknowledge', { eventids: [event.eventid], action: 6, message: 'Looking into it' });
    await waitFor(() => glpi.followupsOf(cpu.id).some((f) => f.content.includes('Message: Looking into it')), 'follow-up for the acknowledge', 40_000);
    mark('acknowledge → follow-up');
    send('system.cpu.util', 10);
    await waitFor(() => glpi.tickets.get(cpu.id)!.status === 5, 'cpu ticket solved', 40_000);
    expect(glpi.solutions.some((s) => s.items_id === cpu.id)).toBe(true);
    mark('recovery → solved');
  }, 120_000);

  it('webhooks missed while the bridge was stopped are caught up by the poller after restart', async () => {
    await zbx.call('mediatype.update', { mediatypeid, maxattempts: '1' });
    const memory = ticketFor('memory')!;
    const cpu = ticketFor('cpu')!;
    const dataDir = daemon.dataDir;
    expect(await daemon.stop()).toBe(0);
    send('vm.memory.utilization', 40); // memory recovers
    send('system.cpu.util', 98); // cpu, solved earlier, fails again
    const failed = async (component: string) => {
      const alerts = await zbx.call<{ status: string }[]>('alert.get', { mediatypeids: [mediatypeid], objectids: [triggerOf.get(component)], output: ['status'], sortfield: 'alertid', sortorder: 'DESC', limit: 1 });
      return alerts[0]?.status === '2';
    };
    await waitFor(async () => (await failed('memory')) && (await failed('cpu')), 'Zabbix gave up delivering both', 40_000);
    mark('two webhooks failed while the bridge was down');
    await startBridge(dataDir);
    await waitFor(() => glpi.tickets.get(memory.id)!.status === 5, 'memory ticket solved by the poller', 30_000);
    await waitFor(() => glpi.tickets.get(cpu.id)!.status === 2, 'cpu ticket reopened by the poller', 30_000);
    const caught = daemon.logs.filter((l) => l.msg === 'alert caught up by the poller').map((l) => l.kind);
    expect(caught).toEqual(expect.arrayContaining(['recovery', 'problem']));
    expect(daemon.decisions().find((d) => d.source === 'poller' && d.kind === 'problem')).toMatchObject({ action: 'reopen' });
    mark('poller caught the missed recovery and problem');
    expect(glpi.tickets.size).toBe(ITEMS.length);
  }, 120_000);

  // What Zabbix does with a host in maintenance, and the sources: test/e2e/maintenance.ts. The problem was
  // raised in the background as soon as the host was in maintenance (fireInMaintenance, from beforeAll).
  it('a problem on a host in maintenance becomes no ticket; when the maintenance ends, exactly one ticket, solved by the recovery', async () => {
    const [action] = await zbx.call<{ pause_suppressed: string }[]>('action.get', { actionids: [actionid], output: ['pause_suppressed'] });
    expect(action!.pause_suppressed).toBe('1');
    const { problem, fired } = await maintenanceProblem;
    // Zabbix suppressed it when it was created, for our maintenance, and it still is.
    expect(problem).toMatchObject({ suppressed: '1', suppression_data: [expect.objectContaining({ maintenanceid: maintenance.maintenanceid })] });
    const { eventid } = problem;
    expect(await openProblem(zbx, maintTriggerid)).toMatchObject({ eventid, suppressed: '1' });
    // Two more completed sweeps of the running bridge: the second one started after the problem existed.
    const before = await sweeps();
    await waitFor(async () => (await sweeps()) >= before + 2, 'two poller sweeps', 30_000);
    expect(await inMaintenance(zbx, maintHostid)).toBe(true);
    const maintTickets = () => [...glpi.tickets.values()].filter((t) => t.content.includes(`(${MAINT_HOST})`));
    expect(maintTickets()).toHaveLength(0);
    // Not a line about the event in any bridge's log (the problem may be older than the bridge's restart).
    expect(bridges.flatMap((b) => b.logs).filter((l) => l.event_id === eventid)).toEqual([]);
    // The action sent nothing: its escalation is paused (no alert at all for the event).
    expect(await zbx.call('alert.get', { eventids: [eventid], output: ['alertid', 'status'] })).toEqual([]);
    mark(`problem raised at ${second(fired)}: no ticket, no webhook, the poller swept twice`);

    // Counted before the end: on 6.0 the webhook may come a second after the problem is unsuppressed.
    const webhookDuplicates = () => counter('zgb_alerts_received_total', 'source="webhook",kind="problem",outcome="duplicate"');
    const duplicatesBefore = await webhookDuplicates();
    await endMaintenance(zbx, maintenance);
    reloadConfigCache();
    await waitFor(async () => (await openProblem(zbx, maintTriggerid))?.suppressed === '0', 'the problem unsuppressed (6.0: at the next full minute)', 90_000);
    mark(`maintenance ended, problem unsuppressed at ${second()}`);
    await waitFor(() => maintTickets().length > 0, 'a ticket for the problem', 30_000);
    // (its decision line may still be on its way through the daemon's stdout)
    const decided = () => daemon.decisions().find((d) => d.event_id === eventid && d.kind === 'problem');
    await waitFor(() => decided() !== undefined, 'the decision that opened it in the log', 10_000);
    const opened = decided();
    expect(opened).toMatchObject({ action: 'open' });
    mark(`ticket opened from the ${String(opened?.source)}`);
    // Zabbix resumes the escalation at its next once-a-minute look (escalator.c) and sends the problem
    // webhook: the same event's problem delivery as the poller's, whichever came first.
    // The problem operation's alert: acknowledgeid 0 (the write-back's update operation has one, same eventid).
    const problemAlerts = () => zbx.call<{ status: string; clock: string }[]>('alert.get', { eventids: [eventid], mediatypeids: [mediatypeid], filter: { acknowledgeid: '0' }, output: ['status', 'clock'] });
    await waitFor(async () => (await problemAlerts()).some((a) => a.status === '1'), "Zabbix's problem webhook once operations resume", 90_000);
    mark(`problem webhook sent (alert clock ${second(Number((await problemAlerts())[0]!.clock) * 1000)})`);
    if (opened?.source === 'poller') {
      // Its delivery key is the poller's (same event, same kind): answered as a duplicate, never decided.
      await waitFor(async () => (await webhookDuplicates()) > duplicatesBefore, 'the webhook answered as a duplicate', 10_000);
    } else {
      // The webhook came first (the escalator looked just after the end); the poller skips an event the bridge has.
      expect(opened).toMatchObject({ source: 'webhook' });
    }
    // Two more sweeps: had the poller or the webhook made a second delivery of the problem, it would be decided by now.
    const after = await sweeps();
    await waitFor(async () => (await sweeps()) >= after + 2, 'two more poller sweeps', 30_000);
    expect(daemon.decisions().filter((d) => d.event_id === eventid && d.kind === 'problem')).toHaveLength(1);
    expect(maintTickets()).toHaveLength(1);
    const ticket = maintTickets()[0]!;
    expect({ cat: ticket.itilcategories_id, urgency: ticket.urgency }).toEqual({ cat: 11, urgency: 5 });

    send('system.cpu.util', 10, MAINT_HOST);
    await waitFor(() => glpi.tickets.get(ticket.id)!.status === 5, 'the ticket solved by the recovery', 40_000);
    expect(maintTickets()).toHaveLength(1);
    mark('recovery → solved');
  }, 240_000);
});
