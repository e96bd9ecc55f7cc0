import { afterEach, describe, expect, it } from '@jest/globals';
import { FakeGlpi } from '../../src/glpi-fake/server.js';
import { currentTestFailed, Daemon, waitFor } from '../helpers/daemon.js';
import { FakeZabbix } from '../helpers/fake-zabbix.js';
import { zabbixBody } from '../helpers/fixtures.js';

/**
 * Issue 14 item 5 through the built daemon, the GLPI fake and the fake Zabbix API: a technician solves the
 * ticket while the Zabbix problem is still open → one message on the event (and, with close_problem and a
 * trigger that allows manual close, the problem closed); never repeated by later sweeps; the update webhook
 * Zabbix sends for that message adds nothing to the ticket (no loop).
 */
let glpi: FakeGlpi | undefined;
let zabbix: FakeZabbix | undefined;
let daemon: Daemon | undefined;

afterEach(async () => {
  await daemon?.stop();
  await glpi?.close();
  if (zabbix && currentTestFailed() !== false) process.stderr.write(`\n===== fake Zabbix calls =====\n${zabbix.calls.map((c) => JSON.stringify(c)).join('\n')}\n`);
  await zabbix?.close();
  glpi = zabbix = daemon = undefined;
});

async function start(closeProblem: boolean, manualClose: boolean, mirror = false): Promise<{ g: FakeGlpi; z: FakeZabbix; d: Daemon }> {
  const g = new FakeGlpi({ userTokens: ['user-token'] });
  await g.listen();
  const z = new FakeZabbix();
  const url = await z.listen();
  z.problems.set('801', { trigger: '301', host: 'app-01', manualClose });
  const extra = [
    'zabbix:', `  url: ${url}`, '  api_token: zbx-token', '  auth: body',
    '  poll:', '    enabled: false', "    schedule: '*/1 * * * * *'",
    '  write_back:', '    glpi_status: true', `    close_problem: ${closeProblem}`, `    mirror_followups: ${mirror}`,
  ].join('\n');
  const d = new Daemon({ glpiUrl: g.url, extra });
  glpi = g;
  zabbix = z;
  daemon = d;
  await d.start();
  return { g, z, d };
}

const common = { host_host: 'app-01', host_name: 'app-01', trigger_id: '301', event_id: '801' };
const readBacks = (z: FakeZabbix) => z.calls.filter((c) => c.method === 'event.acknowledge' && String(c.params.message).includes('in GLPI while the problem is still open'));

/** Wait for `n` more GLPI searches of the bridge's modified tickets (watch sweeps). */
async function watchSweeps(g: FakeGlpi, n: number): Promise<void> {
  const seen = g.count('GET', 'search/Ticket');
  await waitFor(() => g.count('GET', 'search/Ticket') >= seen + n, `${n} more GLPI watch sweeps`);
}

/** `n` tickets written in GLPI by the bridge's own user (what the read-back searches), straight through the legacy API. */
async function ticketsByTheBridgeUser(g: FakeGlpi, n: number): Promise<number> {
  const session = (await (await fetch(`${g.url}/initSession`, { headers: { Authorization: 'user_token user-token' } })).json()) as { session_token: string };
  const input = Array.from({ length: n }, (_v, i) => ({ name: `other ticket ${i}`, content: 'not from Zabbix' }));
  const res = await fetch(`${g.url}/Ticket`, { method: 'POST', headers: { 'Session-Token': session.session_token, 'Content-Type': 'application/json' }, body: JSON.stringify({ input }) });
  expect(res.status).toBe(201);
  return ((await res.json()) as unknown[]).length;
}

describe('GLPI → Zabbix: a ticket solved by a technician', () => {
  it('one message on the open event, the problem closed (manual close allowed); no repeat, no loop', async () => {
    const { g, z, d } = await start(true, true);
    expect((await d.post(zabbixBody('problem', common))).status).toBe(202);
    await waitFor(() => g.tickets.size === 1 && z.count('event.acknowledge') === 1, 'the ticket and its link written back');
    g.setTicketStatus(1, 5); // a technician solves it while Zabbix still has the problem open
    await waitFor(() => readBacks(z).length === 1, 'the message on the Zabbix event');
    const call = readBacks(z)[0]!;
    expect(call.params).toMatchObject({ eventids: ['801'], action: 5 });
    expect(String(call.params.message)).toBe('[glpi-bridge] GLPI ticket #1 was solved in GLPI while the problem is still open in Zabbix. Closing the problem.');
    expect(z.closed).toEqual(['801']);
    // Zabbix's update webhook for that message: the bridge's own write-back, nothing added to the ticket.
    const update = zabbixBody('update-acknowledged', { ...common, event_update_action: 'closed problem, commented', event_update_message: String(call.params.message) });
    expect((await d.post(update)).status).toBe(202);
    await waitFor(() => d.decisions().some((l) => l.reason === 'our own write-back message'), 'the update ignored');
    await watchSweeps(g, 3);
    expect(readBacks(z)).toHaveLength(1);
    expect(g.followupsOf(1)).toHaveLength(0);
    const metrics = await (await d.get('/metrics')).text();
    expect(metrics).toMatch(/zgb_glpi_read_back_total\{status="solved",close="yes"\} 1/);
  });

  it('a ticket solved while the bridge is down (kill -9) is read after the restart, from where the last sweep stopped: one message', async () => {
    const { g, z, d } = await start(false, false);
    expect((await d.post(zabbixBody('problem', common))).status).toBe(202);
    await waitFor(() => g.tickets.size === 1 && z.count('event.acknowledge') === 1, 'the ticket and its link written back');
    await watchSweeps(g, 2); // the cursor is past ticket #1's creation
    expect(await d.stop('SIGKILL')).toBeNull();
    g.setTicketStatus(1, 5); // solved by a technician while the bridge is down
    // Then more than the 200 most recent tickets of the bridge's user change (GLPI's date_mod has seconds):
    // a read-back that forgot where it stopped would not see ticket #1 among them.
    const solvedAt = g.tickets.get(1)!.date_mod;
    await waitFor(() => new Date().toISOString().slice(0, 19).replace('T', ' ') > solvedAt, 'a second later in GLPI');
    expect(await ticketsByTheBridgeUser(g, 201)).toBe(201);
    await d.start();
    await waitFor(() => readBacks(z).length === 1, 'the message on the Zabbix event after the restart');
    expect(readBacks(z)[0]!.params).toMatchObject({ eventids: ['801'], action: 4 });
    expect(String(readBacks(z)[0]!.params.message)).toBe('[glpi-bridge] GLPI ticket #1 was solved in GLPI while the problem is still open in Zabbix.');
    await watchSweeps(g, 2);
    // A clean restart now: nothing said twice.
    expect(await d.stop()).toBe(0);
    await d.start();
    await watchSweeps(g, 3);
    expect(readBacks(z)).toHaveLength(1);
    // Three daemon starts, 201 tickets and at least seven one-second sweeps: jest's 30 s default ran out once under load.
  }, 90_000);

  it('a ticket the bridge itself solves on recovery says nothing back to Zabbix', async () => {
    const { g, z, d } = await start(true, true);
    expect((await d.post(zabbixBody('problem', common))).status).toBe(202);
    await waitFor(() => g.tickets.size === 1 && z.count('event.acknowledge') === 1, 'the ticket and its link written back');
    expect((await d.post(zabbixBody('recovery', { ...common, event_recovery_id: '9801' }))).status).toBe(202);
    await waitFor(() => g.tickets.get(1)?.status === 5, 'the ticket solved by the bridge');
    await watchSweeps(g, 3);
    expect(readBacks(z)).toHaveLength(0);
    expect(z.closed).toEqual([]);
  });

  it('a trigger without manual close gets the message only; the problem stays open', async () => {
    const { g, z, d } = await start(true, false);
    expect((await d.post(zabbixBody('problem', common))).status).toBe(202);
    await waitFor(() => g.tickets.size === 1 && z.count('event.acknowledge') === 1, 'the ticket and its link written back');
    g.setTicketStatus(1, 6); // closed by a technician
    await waitFor(() => readBacks(z).length === 1, 'the message on the Zabbix event');
    expect(readBacks(z)[0]!.params).toMatchObject({ eventids: ['801'], action: 4 });
    expect(String(readBacks(z)[0]!.params.message)).toMatch(/was closed in GLPI/);
    expect(z.closed).toEqual([]);
    expect(z.problems.has('801')).toBe(true);
    await watchSweeps(g, 2);
    expect(readBacks(z)).toHaveLength(1);
  });

  it('mirror_followups: a technician\'s public follow-up becomes one message on the event; private ones and the bridge\'s own do not', async () => {
    const { g, z, d } = await start(false, false, true);
    expect((await d.post(zabbixBody('problem', common))).status).toBe(202);
    await waitFor(() => g.tickets.size === 1 && z.count('event.acknowledge') === 1, 'the ticket and its link written back');
    // The bridge's own follow-up (a recurrence of the problem) is not mirrored.
    expect((await d.post(zabbixBody('problem', { ...common, event_id: '802' }))).status).toBe(202);
    await waitFor(() => g.followupsOf(1).length === 1, 'the bridge\'s follow-up');
    g.addTechnicianFollowup(1, 2, '<p>Rebooted the <b>switch</b>, watching.</p>');
    g.addTechnicianFollowup(1, 2, '<p>internal note</p>', true);
    const mirrored = () => z.calls.filter((c) => c.method === 'event.acknowledge' && String(c.params.message).includes('follow-up:'));
    await waitFor(() => mirrored().length === 1, 'the follow-up mirrored');
    expect(mirrored()[0]!.params).toMatchObject({ action: 4, message: '[glpi-bridge] GLPI ticket #1, follow-up: Rebooted the switch, watching.' });
    expect((mirrored()[0]!.params.eventids as string[]).sort()).toEqual(['801', '802']);
    await watchSweeps(g, 3);
    expect(mirrored()).toHaveLength(1);
    expect(z.calls.filter((c) => c.method === 'event.acknowledge' && String(c.params.message).includes('internal note'))).toHaveLength(0);
  });
});
