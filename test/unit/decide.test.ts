import { describe, expect, it } from '@jest/globals';
import type { Alert, AlertUpdate } from '../../src/core/alert.js';
import { classify } from '../../src/core/classify.js';
import { decide, decideTicketClosed, type EventInfo, type Incident, type Policy } from '../../src/core/decide.js';
import { cpuAlert, exampleRules } from '../helpers/fixtures.js';
import { nodeDigests } from '../../src/adapters/digests.js';

const rules = exampleRules();
const FP = 'host=srv|trigger=#100';
const NOW = 1_800_000_000_000;
const policy: Policy = { holdDownMs: 0, reopenWindowMs: 3_600_000, recovery: 'solve', followupPrivate: false, writeBackPrefix: '[glpi-bridge]', markerKey: 'test-marker-key-0123456789abcdef0123', digests: nodeDigests };

const alert = cpuAlert;

function update(u: Partial<AlertUpdate>, over: Partial<Alert> = {}): Alert {
  return alert('update', { update: { action: 'commented', acknowledged: false, severityChanged: false, closed: false, ...u }, ...over });
}

const open: Incident = {
  fingerprint: FP,
  cycle: 1,
  status: 'open',
  ticketId: 7,
  marker: '[zbx:m1]',
  category: 'cpu',
  severity: 'high',
  urgency: 4,
  impact: 4,
  openCount: 1,
  occurrences: 1,
  openedAt: NOW - 60_000,
};

/** The event index entry the store would hold for event 10 of the open incident. */
const ev10: EventInfo = { fingerprint: FP, cycle: 1, open: true };

function run(a: Alert, incident: Incident | undefined, p: Partial<Policy> = {}, now = NOW, event?: EventInfo, recoveredEarlier = false) {
  return decide({
    alert: a,
    classification: classify(rules, a),
    fingerprint: FP,
    incident,
    event,
    recoveredEarlier,
    now,
    policy: { ...policy, ...p },
    rules,
    reclassify: (severity) => classify(rules, { ...a, severity }),
  });
}

describe('decide: named scenarios', () => {
  it.each([
    ['new fingerprint → open a ticket', alert('problem'), undefined, undefined, 'open', ['create_ticket'], /new fingerprint/],
    ['information severity → no ticket', alert('problem', { severity: 'information' }), undefined, undefined, 'ignore', [], /no ticket for severity information/],
    ['recurrence of an open incident → follow-up', alert('problem', { eventId: '11' }), open, undefined, 'follow_up', ['followup'], /occurrence 2/],
    ['same event seen again (poller) → nothing', alert('problem'), open, ev10, 'ignore', [], /already taken in/],
    ['recurrence at higher severity → urgency update', alert('problem', { eventId: '11', severity: 'disaster' }), open, undefined, 'update_severity', ['update_ticket'], /high → disaster/],
    ['recovery → solution', alert('recovery'), open, ev10, 'solve', ['solve'], /recovery: solve/],
    ['recovery of an unknown event → nothing (remembered as a tombstone)', alert('recovery'), undefined, undefined, 'ignore', [], /never took in/],
    ['recovery of an event already recovered → nothing', alert('recovery'), open, { ...ev10, open: false }, 'ignore', [], /already recovered/],
    ['recovery of one of two open events → follow-up', alert('recovery'), { ...open, openCount: 2 }, ev10, 'follow_up', ['followup'], /1 other problem/],
    ['acknowledge → follow-up with who and what', update({ action: 'acknowledged and commented', message: 'on it', user: 'Ann', acknowledged: true }), open, ev10, 'follow_up', ['followup'], /update in Zabbix/],
    ['our own write-back → ignored', update({ message: '[glpi-bridge] GLPI ticket #7' }), open, ev10, 'ignore', [], /own write-back/],
    ['update without a ticket → ignored', update({ message: 'x' }), undefined, undefined, 'ignore', [], /without a ticket/],
    ['update of an event of an earlier cycle → follow-up on that cycle\'s ticket', update({ message: 'x' }), { ...open, cycle: 2 }, ev10, 'follow_up', ['followup'], /earlier ticket cycle 1/],
    ['severity change → urgency update', update({ action: 'changed severity from High to Disaster', severityChanged: true }, { severity: 'disaster' }), open, ev10, 'update_severity', ['update_ticket'], /high → disaster/],
  ] as const)('%s', (_name, a, incident, event, action, jobs, reason) => {
    const d = run(a, incident, {}, NOW, event);
    expect(d.action).toBe(action);
    expect(d.jobs.map((j) => j.type)).toEqual(jobs);
    expect(d.reason).toMatch(reason);
  });

  it('a new ticket carries the rule fields, a capped title with the marker, and the hold-down delay', () => {
    const d = run(alert('problem', { itemValue: '97 %' }), undefined, { holdDownMs: 30_000 });
    const job = d.jobs[0];
    expect(job?.type).toBe('create_ticket');
    if (job?.type !== 'create_ticket') return;
    expect(job.delayMs).toBe(30_000);
    expect(job.ticket).toMatchObject({ urgency: 5, impact: 5, itilcategories_id: 11, groups_id_assign: 3, type: 1 });
    expect(job.ticket.name).toMatch(/^\[zbx:[0-9a-f]{20}\] \[cpu\] High CPU$/);
    expect(d.incident).toMatchObject({ status: 'open', cycle: 1, holdUntil: NOW + 30_000, severity: 'disaster' });
  });

  it('hold-down: a recovery before the create runs suppresses the ticket', () => {
    const opened = run(alert('problem'), undefined, { holdDownMs: 30_000 });
    const d = run(alert('recovery'), opened.incident, { holdDownMs: 30_000 }, NOW + 10_000, ev10);
    expect(d).toMatchObject({ action: 'suppress', cancelCycle: true, jobs: [] });
    expect(d.incident?.status).toBe('suppressed');
  });

  it('hold-down elapsed: the recovery solves as usual', () => {
    const opened = run(alert('problem'), undefined, { holdDownMs: 30_000 });
    const d = run(alert('recovery'), opened.incident, { holdDownMs: 30_000 }, NOW + 31_000, ev10);
    expect(d.action).toBe('solve');
  });

  it('reopen window: a problem soon after the bridge solved the ticket reopens it', () => {
    const solved: Incident = { ...open, status: 'solved', openCount: 0, solvedAt: NOW - 600_000 };
    const d = run(alert('problem', { eventId: '20' }), solved);
    expect(d.action).toBe('reopen');
    expect(d.jobs.map((j) => j.type)).toEqual(['reopen']);
    expect(d.incident).toMatchObject({ status: 'open', cycle: 1, openCount: 1 });
    expect(d.events).toEqual([{ eventId: '20', cycle: 1, open: true }]);
    expect(d.incident?.solvedAt).toBeUndefined();
  });

  it('outside the reopen window: a new ticket with a new marker', () => {
    const solved: Incident = { ...open, status: 'solved', openCount: 0, solvedAt: NOW - 7_200_000 };
    const d = run(alert('problem', { eventId: '20' }), solved);
    expect(d.action).toBe('open');
    expect(d.incident?.cycle).toBe(2);
    expect(d.incident?.marker).not.toBe(open.marker);
  });

  it('an incident state stays the same size however many events it has (events live in the store index)', () => {
    let incident: Incident | undefined = open;
    for (let i = 0; i < 500; i++) incident = run(alert('problem', { eventId: String(1000 + i) }), incident).incident ?? incident;
    expect(incident?.openCount).toBe(501);
    expect(incident?.occurrences).toBe(501);
    expect(JSON.stringify(incident).length).toBeLessThan(JSON.stringify(open).length + 20);
  });

  it.each([
    ['solve', 'solved'],
    ['close', 'solved'],
    // Item 6: with recovery: followup the cycle still ends once nothing is open.
    ['followup', 'solved'],
  ] as const)('recovery mode %s leaves the incident %s', (mode, status) => {
    const d = run(alert('recovery'), open, { recovery: mode }, NOW, ev10);
    expect(d.incident?.status).toBe(status);
    expect(d.jobs[0]).toMatchObject({ type: 'solve', mode });
  });
});

describe('decide: edges of issue 10', () => {
  it('a problem whose recovery arrived first opens nothing (item 2)', () => {
    const d = run(alert('problem'), undefined, {}, NOW, undefined, true);
    expect(d).toMatchObject({ action: 'ignore', jobs: [] });
    expect(d.reason).toMatch(/received before its problem/);
    expect(d.incident).toBeUndefined();
  });

  it('with recovery: followup, a problem months later opens a new ticket, not a follow-up on the first (item 6)', () => {
    const ended = run(alert('recovery'), open, { recovery: 'followup' }, NOW, ev10).incident;
    expect(ended?.status).toBe('solved');
    const later = run(alert('problem', { eventId: '99' }), ended, { recovery: 'followup' }, NOW + 90 * 86_400_000);
    expect(later.action).toBe('open');
    expect(later.incident?.cycle).toBe(2);
    const soon = run(alert('problem', { eventId: '98' }), ended, { recovery: 'followup' }, NOW + 60_000);
    expect(soon.action).toBe('reopen');
  });

  it('markers are keyed: another install (key) gives another marker for the same incident, and the opening event changes it too (item 8)', () => {
    const marker = (key: string, eventId = '10') => run(alert('problem', { eventId }), undefined, { markerKey: key }).incident?.marker;
    expect(marker('key-a-0123456789abcdef0123456789')).not.toBe(marker('key-b-0123456789abcdef0123456789'));
    expect(marker('key-a-0123456789abcdef0123456789')).toBe(marker('key-a-0123456789abcdef0123456789'));
    expect(marker('key-a-0123456789abcdef0123456789', '10')).not.toBe(marker('key-a-0123456789abcdef0123456789', '11'));
  });

  it('a title keeps its marker first and its "<" text; a Zabbix-supplied marker look-alike is removed (items 7, 8)', () => {
    const d = run(alert('problem', { triggerName: 'Free disk space < 20% on /var [zbx:0123456789abcdef0123]' }), undefined);
    const job = d.jobs[0];
    if (job?.type !== 'create_ticket') throw new Error('expected a create');
    expect(job.ticket.name.startsWith(`${job.ticket.marker} `)).toBe(true);
    expect(job.ticket.name).toContain('Free disk space < 20% on /var');
    expect(job.ticket.name.match(/\[zbx:/g)).toHaveLength(1);
  });

  it('a ticket closed in GLPI while problems are open starts a new cycle carrying them; an ended cycle changes nothing (item 10)', () => {
    const base = { alert: alert('problem', { eventId: '12' }), classification: classify(rules, alert('problem')), fingerprint: FP, now: NOW, policy, rules, reclassify: (s: Alert['severity']) => classify(rules, alert('problem', { severity: s })) };
    const d = decideTicketClosed({ ...base, incident: { ...open, openCount: 2 } }, 1, 7);
    expect(d.action).toBe('open');
    expect(d.incident).toMatchObject({ cycle: 2, status: 'open', openCount: 2 });
    expect(d.incident?.ticketId).toBeUndefined();
    expect(d.moveOpenEventsFrom).toBe(1);
    expect(d.jobs.map((j) => j.type)).toEqual(['create_ticket']);
    expect(decideTicketClosed({ ...base, incident: { ...open, status: 'solved' } }, 1, 7).action).toBe('ignore');
    expect(decideTicketClosed({ ...base, incident: { ...open, cycle: 3 } }, 1, 7).action).toBe('ignore');
  });
});

describe('decide: a timeline people can read on the ticket (issue 14 item 6)', () => {
  const solveLines = (d: ReturnType<typeof run>): readonly string[] => {
    const job = d.jobs[0];
    if (job?.type !== 'solve') throw new Error(`expected a solve, got ${job?.type}`);
    return job.lines;
  };

  it('a new incident records when its problem started in Zabbix; without a Zabbix time, nothing', () => {
    expect(run(alert('problem', { occurredAt: '2026-11-23T06:18:41.000Z' }), undefined).incident?.startedAt).toBe(Date.UTC(2026, 10, 23, 6, 18, 41));
    expect(run(alert('problem'), undefined).incident).not.toHaveProperty('startedAt');
  });

  it('the recovery says how long the incident lasted, on Zabbix clock, and how many times it occurred', () => {
    const started = Date.UTC(2026, 10, 23, 6, 18, 41);
    const incident: Incident = { ...open, occurrences: 2, startedAt: started };
    const d = run(alert('recovery', { recoveryEventId: '12', recoveredAt: '2026-11-23T07:21:40.000Z' }), incident, {}, NOW, ev10);
    expect(d.action).toBe('solve');
    expect(solveLines(d)).toContain('Incident lasted 1h 2m (2026-11-23 06:18:41 UTC to 2026-11-23 07:21:40 UTC) and occurred 2 times.');
  });

  it('an incident stored before the start was recorded counts from when the bridge received it, to now', () => {
    const d = run(alert('recovery', { recoveredAt: '2026-11-23T07:21:40.000Z' }), open, {}, NOW, ev10);
    expect(solveLines(d)).toContain(`Incident lasted 1m 0s (${new Date(NOW - 60_000).toISOString().slice(0, 19).replace('T', ' ')} UTC to ${new Date(NOW).toISOString().slice(0, 19).replace('T', ' ')} UTC) and occurred once.`);
  });

  it('a second problem keeps the earliest start (deliveries out of order) and counts two occurrences', () => {
    const started = Date.UTC(2026, 10, 23, 6, 18, 41);
    const incident: Incident = { ...open, startedAt: started };
    const later = run(alert('problem', { eventId: '11', occurredAt: '2026-11-23T06:30:00.000Z' }), incident);
    expect(later.incident).toMatchObject({ startedAt: started, occurrences: 2 });
    const earlier = run(alert('problem', { eventId: '11', occurredAt: '2026-11-23T06:00:00.000Z' }), incident);
    expect(earlier.incident?.startedAt).toBe(Date.UTC(2026, 10, 23, 6, 0, 0));
    // An old incident without a start does not get one from a later problem (it would hide the first one's start).
    expect(run(alert('problem', { eventId: '11', occurredAt: '2026-11-23T06:00:00.000Z' }), open).incident).not.toHaveProperty('startedAt');
  });

  it('one of several open problems recovering says how long that one lasted', () => {
    const d = run(alert('recovery', { occurredAt: '2026-11-23T06:18:41.000Z', recoveredAt: '2026-11-23T06:23:44.000Z' }), { ...open, openCount: 2 }, {}, NOW, ev10);
    expect(d.jobs[0]).toMatchObject({ type: 'followup', lines: ['Event 10 recovered after 5m 3s; 1 problem(s) still open.'] });
  });

  it('a severity change says old → new, in Zabbix words', () => {
    const byZabbix = run(update({ action: 'changed severity', severityChanged: true }, { severity: 'disaster' }), open, {}, NOW, ev10);
    expect(byZabbix.action).toBe('update_severity');
    expect(byZabbix.jobs[0]).toMatchObject({ type: 'update_ticket', lines: expect.arrayContaining(['Severity: High → Disaster.']) });
    const byRecurrence = run(alert('problem', { eventId: '11', severity: 'disaster' }), open);
    expect(byRecurrence.jobs[0]).toMatchObject({ type: 'update_ticket', lines: expect.arrayContaining(['Severity: High → Disaster.']) });
    const earlierCycle = run(update({ action: 'changed severity', severityChanged: true }, { severity: 'average' }), { ...open, cycle: 2 }, {}, NOW, ev10);
    expect(earlierCycle.jobs[0]).toMatchObject({ type: 'followup', lines: expect.arrayContaining(['Severity changed to Average.']) });
  });

  it("a new ticket's body links into Zabbix when the frontend's URL is known", () => {
    const d = run(alert('problem', { eventId: '4711', triggerId: '23133' }), undefined, { zabbixFrontendUrl: 'https://zabbix.example.org/zabbix/' });
    const job = d.jobs[0];
    if (job?.type !== 'create_ticket') throw new Error('expected a create');
    expect(job.ticket.content).toContain('<a href="https://zabbix.example.org/zabbix/tr_events.php?triggerid=23133&amp;eventid=4711"');
    const without = run(alert('problem'), undefined).jobs[0];
    if (without?.type !== 'create_ticket') throw new Error('expected a create');
    expect(without.ticket.content).not.toContain('<a ');
  });
});
