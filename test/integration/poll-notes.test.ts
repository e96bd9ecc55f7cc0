import { afterEach, describe, expect, it } from '@jest/globals';
import { FakeGlpi } from '../../src/glpi-fake/server.js';
import { currentTestFailed, Daemon, waitFor } from '../helpers/daemon.js';
import { FakeZabbix } from '../helpers/fake-zabbix.js';

// Issue 14 item 6, the Zabbix side: a host put in maintenance, or a trigger disabled, while its problem's ticket is
// open gets one follow-up saying so (or, per zabbix.poll.on_maintenance / on_disabled, the ticket solved with that
// reason), through the built daemon, its poller and the fake Zabbix API; never repeated by later sweeps or a restart.

let glpi: FakeGlpi | undefined;
let zabbix: FakeZabbix | undefined;
let daemon: Daemon | undefined;

afterEach(async () => {
  await daemon?.stop();
  await glpi?.close();
  // The fake's whole record for a failing test (the daemon's log is printed by the helper).
  if (zabbix && currentTestFailed() !== false) process.stderr.write(`\n===== fake Zabbix calls =====\n${zabbix.calls.map((c) => JSON.stringify(c)).join('\n')}\n`);
  await zabbix?.close();
  glpi = zabbix = daemon = undefined;
});

async function sweeps(n: number): Promise<void> {
  const z = zabbix!;
  const seen = z.sweeps();
  await waitFor(() => z.sweeps() >= seen + n, `${n} more sweeps`);
}

async function start(pollExtra: string[] = [], dataDir?: string): Promise<Daemon> {
  const url = zabbix!.url ?? (await zabbix!.listen());
  const extra = ['zabbix:', `  url: ${url}`, '  api_token: zbx-token', '  auth: body', '  poll:', "    schedule: '*/1 * * * * *'", ...pollExtra.map((l) => `    ${l}`)].join('\n');
  const d = new Daemon({ glpiUrl: glpi!.url, extra, ...(dataDir ? { dataDir } : {}) });
  await d.start();
  return d;
}

/** A ticket for problem 52 on db-01, opened by the poller after the first (empty) sweep. */
async function ticketFor52(pollExtra: string[] = []): Promise<number> {
  glpi = new FakeGlpi({ userTokens: ['user-token'] });
  await glpi.listen();
  zabbix = new FakeZabbix();
  await zabbix.listen();
  daemon = await start(pollExtra);
  await waitFor(() => daemon!.logs.some((l) => /^first sweep of this poll scope/.test(l.msg)), 'the baseline');
  zabbix.problems.set('52', { trigger: '102', host: 'db-01', description: 'MySQL is down on db-01' });
  await waitFor(() => glpi!.tickets.size === 1, 'a ticket for problem 52');
  return [...glpi.tickets.keys()][0]!;
}

/** db-01 in maintenance "Patch night" (id 3, with data collection), problem 52 suppressed by it until 1800003600 (2027-01-15 09:00 UTC). */
function enterMaintenance(z: FakeZabbix): void {
  z.maintenances.set('3', { name: 'Patch night', maintenance_type: '0' });
  z.hosts.set('db-01', { maintenance: { maintenanceid: '3', type: '0', from: '1799996400' } });
  z.problems.set('52', { ...z.problems.get('52')!, suppressedBy: { maintenanceid: '3', suppress_until: '1800003600' } });
}

function contents(ticketId: number, pattern: RegExp): string[] {
  return glpi!.followupsOf(ticketId).map((f) => f.content).filter((c) => pattern.test(c));
}

describe('poller notes on open tickets', () => {
  it('a host entering maintenance gets exactly one follow-up, through several sweeps and a restart; leaving it, one more; a disabled trigger, one more', async () => {
    const ticketId = await ticketFor52();
    enterMaintenance(zabbix!);
    await waitFor(() => contents(ticketId, /entered maintenance/).length === 1, 'the maintenance follow-up');
    const [text] = contents(ticketId, /entered maintenance/);
    expect(text).toContain('Host db-01 entered maintenance');
    expect(text).toContain('Patch night');
    expect(text).toContain('with data collection');
    expect(text).toContain('until 2027-01-15 09:00:00 UTC');
    await sweeps(3);
    expect(contents(ticketId, /entered maintenance/)).toHaveLength(1);
    // The ticket stays open: a note, not a recovery (on_maintenance defaults to note).
    expect(glpi!.tickets.get(ticketId)!.status).not.toBe(5);
    expect(glpi!.solutions).toEqual([]);
    const metrics = await (await daemon!.get('/metrics')).text();
    expect(metrics).toMatch(/^zgb_zabbix_poll_notes_total\{reason="maintenance"\} 1$/m);

    // Restart while the host is still in maintenance: nothing announced again.
    expect(await daemon!.stop()).toBe(0);
    daemon = await start([], daemon!.dataDir);
    await sweeps(3);
    expect(contents(ticketId, /entered maintenance/)).toHaveLength(1);

    // The maintenance ends; the problem is still open.
    zabbix!.hosts.delete('db-01');
    const { suppressedBy: _s, ...unsuppressed } = zabbix!.problems.get('52')!;
    zabbix!.problems.set('52', unsuppressed);
    await waitFor(() => contents(ticketId, /left maintenance/).length === 1, 'the end-of-maintenance follow-up');
    // GLPI stores follow-ups HTML-encoded (quotes included): the words, not the quotes, are compared.
    expect(contents(ticketId, /left maintenance/)[0]).toMatch(/^Host db-01 left maintenance .*Patch night.*; the problem is still open in Zabbix\./);

    // The trigger is disabled: Zabbix keeps the problem open (and never recovers it); the ticket says so once.
    zabbix!.disabledTriggers.add('102');
    zabbix!.audit.set('trigger:102', { username: 'ops-anna', clock: 1800000000 });
    await waitFor(() => contents(ticketId, /was disabled in Zabbix/).length === 1, 'the disabled-trigger follow-up');
    expect(contents(ticketId, /was disabled in Zabbix/)[0]).toMatch(/^Trigger .*MySQL is down on db-01.* was disabled in Zabbix by ops-anna at 2027-01-15 08:00:00 UTC: it is no longer evaluated/);
    await sweeps(3);
    expect(contents(ticketId, /was disabled in Zabbix/)).toHaveLength(1);
    expect(contents(ticketId, /entered maintenance/)).toHaveLength(1);
    expect(contents(ticketId, /left maintenance/)).toHaveLength(1);
    expect(glpi!.tickets.get(ticketId)!.status).not.toBe(5);
  });

  it('a maintenance that ends while the bridge is down (kill -9): the ticket is told it ended, once', async () => {
    const ticketId = await ticketFor52();
    enterMaintenance(zabbix!);
    await waitFor(() => contents(ticketId, /entered maintenance/).length === 1, 'the maintenance follow-up');
    expect(await daemon!.stop('SIGKILL')).toBeNull();
    // While the bridge is down, the maintenance ends; the problem stays open.
    zabbix!.hosts.delete('db-01');
    const { suppressedBy: _s, ...unsuppressed } = zabbix!.problems.get('52')!;
    zabbix!.problems.set('52', unsuppressed);
    daemon = await start([], daemon!.dataDir);
    await waitFor(() => contents(ticketId, /left maintenance/).length === 1, 'the end-of-maintenance follow-up after the restart');
    expect(contents(ticketId, /left maintenance/)[0]).toMatch(/^Host db-01 left maintenance .*Patch night.*; the problem is still open in Zabbix\./);
    await sweeps(3);
    expect(contents(ticketId, /left maintenance/)).toHaveLength(1);
    expect(contents(ticketId, /entered maintenance/)).toHaveLength(1);
    // And a second restart (clean this time) says nothing more.
    expect(await daemon!.stop()).toBe(0);
    daemon = await start([], daemon!.dataDir);
    await sweeps(3);
    expect(contents(ticketId, /left maintenance/)).toHaveLength(1);
  });

  it('on_maintenance: solve → the ticket is solved with the maintenance as the reason', async () => {
    const ticketId = await ticketFor52(['on_maintenance: solve']);
    enterMaintenance(zabbix!);
    await waitFor(() => glpi!.tickets.get(ticketId)!.status === 5, 'the ticket solved');
    expect(glpi!.solutions).toHaveLength(1);
    expect(glpi!.solutions[0]!.content).toContain('Host db-01 entered maintenance');
    expect(glpi!.solutions[0]!.content).toContain('zabbix.poll.on_maintenance is solve');
    await sweeps(3);
    expect(glpi!.solutions).toHaveLength(1);
    expect(contents(ticketId, /entered maintenance/)).toEqual([]);
  });

  it('on_disabled: solve → a disabled host solves the ticket; a maintenance is still only noted (maintenance.get refused: named by id)', async () => {
    const ticketId = await ticketFor52(['on_disabled: solve']);
    zabbix!.maintenanceGetRefused = true;
    enterMaintenance(zabbix!);
    await waitFor(() => contents(ticketId, /entered maintenance/).length === 1, 'the maintenance follow-up');
    expect(contents(ticketId, /entered maintenance/)[0]).toContain('Host db-01 entered maintenance #3');
    expect(glpi!.tickets.get(ticketId)!.status).not.toBe(5);
    expect(daemon!.logs.filter((l) => /maintenance\.get failed/.test(l.msg))).toHaveLength(1);

    // The API user may not read the audit log: the note says what happened, not who did it.
    zabbix!.auditGetRefused = true;
    zabbix!.hosts.set('db-01', { ...zabbix!.hosts.get('db-01'), status: '1' });
    await waitFor(() => glpi!.tickets.get(ticketId)!.status === 5, 'the ticket solved');
    expect(glpi!.solutions[0]!.content).toContain('Host db-01 was disabled in Zabbix (not monitored)');
    expect(daemon!.logs.filter((l) => /auditlog\.get failed/.test(l.msg))).toHaveLength(1);
    expect(glpi!.solutions[0]!.content).toContain('zabbix.poll.on_disabled is solve');
  });
});
