import { afterEach, describe, expect, it } from '@jest/globals';
import { FakeGlpi, type FakeGlpiOptions } from '../../src/glpi-fake/server.js';
import { Daemon, runCli, waitFor } from '../helpers/daemon.js';
import { zabbixBody } from '../helpers/fixtures.js';

/**
 * Issue 14 item 1 through the built daemon and the GLPI fake: a fingerprint
 * that opens three ticket cycles within a week becomes one GLPI Problem with
 * the three tickets linked; later cycles are linked with a follow-up on the
 * problem; a crash around the problem's create never makes a second; a
 * problem a human solved stops collecting and the next recurrence opens another.
 */
let glpi: FakeGlpi;
let daemon: Daemon;

afterEach(async () => {
  await daemon?.stop();
  await glpi?.close();
});

const RULES = `
categories:
  - name: cpu
    match:
      tags: [{ tag: component, value: cpu }]
    problems: { after_cycles: 3, within: 7d }
`;

async function start(rules = RULES, options: Omit<FakeGlpiOptions, 'userTokens'> = {}): Promise<void> {
  glpi = new FakeGlpi({ userTokens: ['user-token'], ...options });
  await glpi.listen();
  // reopen_window 0: each problem after a recovery opens a new ticket cycle (a recurrence), not a reopening.
  daemon = new Daemon({ glpiUrl: glpi.url, correlation: '  coalesce_window: 0\n  reopen_window: 0', rulesYaml: rules });
  await daemon.start();
}

const common = { host_host: 'db-01', host_name: 'db-01', trigger_id: '5150' };

async function post(body: Record<string, string>): Promise<void> {
  const res = await daemon.post(body);
  expect(res.status).toBe(202);
}

/** One ticket cycle: the problem opens ticket n, its recovery solves it. */
async function cycle(n: number): Promise<void> {
  const id = String(600 + n);
  await post(zabbixBody('problem', { ...common, event_id: id }));
  await waitFor(() => glpi.tickets.size === n, `ticket ${n}`);
  await post(zabbixBody('recovery', { ...common, event_id: id, event_recovery_id: `9${id}` }));
  await waitFor(() => glpi.tickets.get(n)?.status === 5, `ticket ${n} solved`);
}

const problems = () => [...glpi.itil.problems.values()];

describe('recurring incidents become GLPI problems', () => {
  it('the third cycle within the window opens one problem linking the three tickets; the fourth is linked with a follow-up on it', async () => {
    await start();
    await cycle(1);
    await cycle(2);
    expect(problems()).toHaveLength(0);
    await cycle(3);
    await waitFor(() => glpi.itil.ticketsOfProblem(1).length === 3, 'three tickets linked to the problem');
    expect(problems()).toHaveLength(1);
    const p = problems()[0]!;
    expect(p.name).toMatch(/^\[zbx:p[0-9a-f]{20}\] Recurring: /);
    expect(p.status).toBe(1);
    expect(glpi.itil.ticketsOfProblem(1).sort()).toEqual([1, 2, 3]);
    await cycle(4);
    await waitFor(() => glpi.itil.ticketsOfProblem(1).length === 4, 'the fourth ticket linked');
    await waitFor(() => glpi.followups.filter((f) => f.itemtype === 'Problem' && f.items_id === 1).length === 1, 'a follow-up on the problem');
    expect(glpi.followups.find((f) => f.itemtype === 'Problem')!.content).toMatch(/Ticket #4/);
    // The bridge never solves or closes it.
    expect(problems()).toHaveLength(1);
    expect(p.status).toBe(1);
    const metrics = await (await daemon.get('/metrics')).text();
    expect(metrics).toMatch(/zgb_glpi_problems_total\{operation="created",trigger="recurrence"\} 1/);
    expect(metrics).toMatch(/zgb_glpi_problems_total\{operation="linked",trigger="recurrence"\} 4/);
    // explain says what recurrence would link.
    const explained = await runCli(['explain', '--config', daemon.configFile, '-'], undefined, JSON.stringify(zabbixBody('problem', { ...common, event_id: '699' })));
    expect(explained.code).toBe(0);
    expect((JSON.parse(explained.stdout) as { problem: string }).problem).toMatch(/^after 3 ticket cycles of this fingerprint within 7d, its tickets are linked to one GLPI problem/);
  });

  it('a connection dropped after GLPI committed the ticket and the problem does not create either twice', async () => {
    await start();
    await cycle(1);
    await cycle(2);
    // The next two POSTs that GLPI commits (the third ticket, then the problem) lose their answer.
    glpi.setFaults({ dropAfterCommitNext: 2 });
    await post(zabbixBody('problem', { ...common, event_id: '603' }));
    await waitFor(() => glpi.itil.ticketsOfProblem(1).length === 3, 'three tickets linked to the problem', 20_000);
    expect(glpi.faults.dropAfterCommitNext).toBe(0);
    expect(glpi.tickets.size).toBe(3);
    expect(problems()).toHaveLength(1);
    expect(glpi.count('POST', 'Problem', 0)).toBe(1); // the create whose answer was lost
    const queue = await runCli(['queue', '--config', daemon.configFile]);
    expect(queue.stdout).toMatch(/dead letters: 0/);
  });

  it('a problem a human solved stops collecting: the next recurrence opens a new one', async () => {
    await start();
    await cycle(1);
    await cycle(2);
    await cycle(3);
    await waitFor(() => glpi.itil.ticketsOfProblem(1).length === 3, 'the first problem');
    glpi.itil.problems.get(1)!.status = 5; // a technician solved it (root cause found)
    await cycle(4);
    await waitFor(() => problems().length === 2, 'a second problem');
    await waitFor(() => glpi.itil.ticketsOfProblem(2).includes(4), 'the new ticket linked to the new problem');
    expect(glpi.itil.ticketsOfProblem(1).sort()).toEqual([1, 2, 3]);
    expect(glpi.itil.problems.get(1)!.status).toBe(5);
    expect(glpi.followups.filter((f) => f.itemtype === 'Problem')).toHaveLength(0);
  });
});

/*
 * problems.together: incidents of one host and category opening their tickets within the window of each
 * other (here 3 within 10 minutes) become one GLPI Problem of the group, named and routed by the rules' names.
 */
const TOGETHER = `
categories:
  - name: cpu
    match:
      tags: [{ tag: component, value: cpu }]
    glpi:
      itilcategory: "Monitoring > CPU"
    problems: { together: { fingerprints: 3, within: 10m, by: host } }
`;
const DIRECTORY: FakeGlpiOptions['directory'] = { categories: [{ id: 20, name: 'Monitoring' }, { id: 21, name: 'CPU', parent: 20 }] };

const onHost = (host: string, trigger: string, eventId: string) => zabbixBody('problem', { host_host: host, host_name: host, trigger_id: trigger, event_id: eventId, trigger_name: `Check ${trigger} on ${host}` });
const groupProblems = () => problems().filter((p) => /^\[zbx:g[0-9a-f]{20}\] /.test(p.name));

describe('incidents of one host firing together become one GLPI problem', () => {
  it('the third incident within the window opens one problem linking the three tickets; a fourth is linked with a follow-up; other hosts are not', async () => {
    await start(TOGETHER, { directory: DIRECTORY });
    await post(onHost('sw-01', '1', '701'));
    await post(onHost('sw-01', '2', '702'));
    await post(onHost('sw-02', '3', '703')); // another host: another group
    await waitFor(() => glpi.tickets.size === 3, 'three tickets');
    expect(problems()).toHaveLength(0);
    await post(onHost('sw-01', '3', '704'));
    await waitFor(() => glpi.tickets.size === 4, 'the fourth ticket');
    await waitFor(() => glpi.itil.ticketsOfProblem(1).length === 3, 'three tickets linked to the group\'s problem');
    const p = groupProblems()[0]!;
    expect(p.name).toMatch(/ 3 cpu incidents together on sw-01$/);
    // Named in the rules, resolved in GLPI like the tickets' category.
    expect(p.itilcategories_id).toBe(21);
    const ticketOf = (host: string, trigger: string) => [...glpi.tickets.values()].find((t) => t.name.endsWith(`Check ${trigger} on ${host}`))!.id;
    expect(glpi.itil.ticketsOfProblem(1).sort()).toEqual([ticketOf('sw-01', '1'), ticketOf('sw-01', '2'), ticketOf('sw-01', '3')].sort());
    expect(glpi.itil.ticketsOfProblem(1)).not.toContain(ticketOf('sw-02', '3'));
    await post(onHost('sw-01', '4', '705'));
    await waitFor(() => glpi.itil.ticketsOfProblem(1).length === 4, 'the fourth ticket of the host linked');
    await waitFor(() => glpi.followups.filter((f) => f.itemtype === 'Problem' && f.items_id === 1).length === 1, 'a follow-up on the problem');
    expect(glpi.followups.find((f) => f.itemtype === 'Problem')!.content).toMatch(new RegExp(`Fired together: .*Ticket #${ticketOf('sw-01', '4')}`, 's'));
    expect(problems()).toHaveLength(1);
    expect(glpi.itil.problems.get(1)!.status).toBe(1);
    const metrics = await (await daemon.get('/metrics')).text();
    expect(metrics).toMatch(/zgb_glpi_problems_total\{operation="created",trigger="together"\} 1/);
    expect(metrics).toMatch(/zgb_glpi_problems_total\{operation="linked",trigger="together"\} 4/);
    const explained = await runCli(['explain', '--config', daemon.configFile, '-'], undefined, JSON.stringify(onHost('sw-09', '1', '799')));
    expect(explained.code).toBe(0);
    expect((JSON.parse(explained.stdout) as { problem: string }).problem).toMatch(/^when 3 incidents of host sw-09 in category cpu open tickets within 10m of each other \(group group:by=host\|host=sw-09\|category=cpu\), all their tickets are linked to one GLPI problem of the group/);
  });

  it('a connection dropped after GLPI committed the problem, then kill -9: one problem, every ticket linked, no dead letter', async () => {
    await start(TOGETHER, { directory: DIRECTORY });
    await post(onHost('sw-01', '1', '711'));
    await post(onHost('sw-01', '2', '712'));
    await waitFor(() => glpi.tickets.size === 2, 'two tickets');
    glpi.setFaults({ dropAfterCommitNext: 2 }); // the third ticket's create and the problem's lose their answer
    await post(onHost('sw-01', '3', '713'));
    await waitFor(() => glpi.count('POST', 'Problem', 0) === 1, 'the problem created (its answer lost)', 20_000);
    await daemon.stop('SIGKILL');
    await daemon.start();
    await waitFor(() => glpi.itil.ticketsOfProblem(1).length === 3, 'three tickets linked to the one problem', 20_000);
    expect(glpi.tickets.size).toBe(3);
    expect(problems()).toHaveLength(1);
    expect(glpi.count('POST', 'Problem', 0)).toBe(1);
    const queue = await runCli(['queue', '--config', daemon.configFile]);
    expect(queue.stdout).toMatch(/dead letters: 0/);
  });

  it('a problem a human closed stops collecting: the group firing together again opens a new one', async () => {
    await start(TOGETHER, { directory: DIRECTORY });
    for (const [t, e] of [['1', '721'], ['2', '722'], ['3', '723']] as const) await post(onHost('sw-01', t, e));
    await waitFor(() => glpi.itil.ticketsOfProblem(1).length === 3, 'the first problem');
    glpi.itil.problems.get(1)!.status = 6; // closed by a technician
    await post(onHost('sw-01', '4', '724'));
    await waitFor(() => problems().length === 2, 'a second problem');
    await waitFor(() => glpi.itil.ticketsOfProblem(2).length === 4, 'the group\'s tickets linked to the new problem');
    expect(glpi.itil.ticketsOfProblem(1)).toHaveLength(3);
    expect(glpi.itil.problems.get(1)!.status).toBe(6);
  });
});
