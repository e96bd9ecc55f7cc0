import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { FakeGlpi, type FakeTicket } from '../../src/glpi-fake/server.js';
import { Daemon, TOKEN, waitFor } from '../helpers/daemon.js';
import { ROOT } from '../helpers/fixtures.js';
import { ZabbixAdmin } from './zabbix-api.js';

/**
 * End to end with a real Zabbix 6.0 (started by test/e2e/zabbix/up.sh), and the same scenarios
 * with 7.0 (test/e2e/zabbix7/: up.sh runs it in a trixie root, zabbix.test.ts points this file at it):
 * our media type imported through the API, a host with trapper items and
 * triggers for five categories, an action and a user; values pushed with
 * zabbix_sender; the bridge between Zabbix and the GLPI fake server.
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
const started = Date.now();
const timings: string[] = [];
const mark = (what: string) => timings.push(`${what}: +${((Date.now() - started) / 1000).toFixed(1)} s`);

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
let mediatypeid = '';
let apiToken = '';
/** The bridge's port, once it listens (0: not started yet). */
let bridgePort = 0;
const triggerOf = new Map<string, string>();

/** zabbix_sender's summary ("processed: 1; failed: 0; …"); it exits 2 while the item is not in the server's cache yet. */
function send(key: string, value: number): string {
  const r = spawnSync('zabbix_sender', ['-z', '127.0.0.1', '-p', serverPort(), '-s', HOST, '-k', key, '-o', String(value)], { encoding: 'utf8' });
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
  const port = Number(new URL(daemon.url).port);
  if (port !== bridgePort) {
    bridgePort = port;
    await setBridgeUrl(`http://127.0.0.1:${port}/zabbix/webhook`);
  }
}

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
  // Their actions go first: Zabbix 7.0 refuses to delete a host that an action's condition names.
  const oldActions = await zbx.call<{ actionid: string }[]>('action.get', { search: { name: 'bridge-' }, output: ['actionid'] });
  if (oldActions.length > 0) await zbx.call('action.delete', oldActions.map((a) => a.actionid));
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
  await zbx.call('action.create', {
    name: `bridge-${RUN}`,
    eventsource: 0,
    status: 0,
    esc_period: '1h',
    filter: { evaltype: 0, conditions: [{ conditiontype: 1, operator: 0, value: hostid }] },
    operations: [message],
    recovery_operations: [message],
    update_operations: [message],
  });
  glpi = new FakeGlpi({ userTokens: ['user-token'] });
  await glpi.listen();
  await startBridge();
  if (CHROOT) execFileSync('chroot', [CHROOT, 'zabbix_server', '-c', join('/', relative(CHROOT, STATE), 'zabbix_server.conf'), '-R', 'config_cache_reload']);
  else execFileSync('zabbix_server', ['-c', join(STATE, 'zabbix_server.conf'), '-R', 'config_cache_reload']);
  await waitFor(() => ITEMS.every((it) => /processed: 1/.test(send(it.key, it.ok))), 'items in the server configuration cache', 60_000);
  mark(`Zabbix ${version} provisioned (${mediaTypeFile}); bridge on port ${bridgePort}`);
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
});
