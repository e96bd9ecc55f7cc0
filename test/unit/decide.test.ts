import { describe, expect, it } from '@jest/globals';
import type { Alert, AlertUpdate } from '../../src/core/alert.js';
import { classify } from '../../src/core/classify.js';
import { decide, EVENTS_KEPT, type Incident, type Policy } from '../../src/core/decide.js';
import { exampleRules } from '../helpers/fixtures.js';

const rules = exampleRules();
const FP = 'host=srv|trigger=#100';
const NOW = 1_800_000_000_000;
const policy: Policy = { holdDownMs: 0, reopenWindowMs: 3_600_000, recovery: 'solve', followupPrivate: false, writeBackPrefix: '[glpi-bridge]' };

function alert(kind: Alert['kind'], over: Partial<Alert> = {}): Alert {
  return {
    source: 'webhook',
    eventSource: '0',
    eventId: '10',
    kind,
    severity: 'high',
    eventName: 'High CPU',
    host: 'srv',
    hostName: 'srv',
    triggerId: '100',
    triggerName: 'High CPU',
    tags: [{ tag: 'component', value: 'cpu' }],
    ...over,
  };
}

function update(u: Partial<AlertUpdate>, over: Partial<Alert> = {}): Alert {
  return alert('update', { update: { action: 'commented', acknowledged: false, severityChanged: false, closed: false, ...u }, ...over });
}

const open: Incident = {
  fingerprint: FP,
  seq: 1,
  status: 'open',
  ticketId: 7,
  marker: '[zbx:m1]',
  category: 'cpu',
  severity: 'high',
  urgency: 4,
  impact: 4,
  openEvents: ['10'],
  events: ['10'],
  occurrences: 1,
  openedAt: NOW - 60_000,
};

function run(a: Alert, incident: Incident | undefined, p: Partial<Policy> = {}, now = NOW) {
  return decide({
    alert: a,
    classification: classify(rules, a),
    fingerprint: FP,
    incident,
    now,
    policy: { ...policy, ...p },
    rules,
    reclassify: (severity) => classify(rules, { ...a, severity }),
  });
}

describe('decide: named scenarios', () => {
  it.each([
    ['new fingerprint → open a ticket', alert('problem'), undefined, {}, 'open', ['create_ticket'], /new fingerprint/],
    ['information severity → no ticket', alert('problem', { severity: 'information' }), undefined, {}, 'ignore', [], /no ticket for severity information/],
    ['recurrence of an open incident → follow-up', alert('problem', { eventId: '11' }), open, {}, 'follow_up', ['followup'], /occurrence 2/],
    ['same event seen again (poller) → nothing', alert('problem'), open, {}, 'ignore', [], /already part/],
    ['recurrence at higher severity → urgency update', alert('problem', { eventId: '11', severity: 'disaster' }), open, {}, 'update_severity', ['update_ticket'], /high → disaster/],
    ['recovery → solution', alert('recovery'), open, {}, 'solve', ['solve'], /recovery: solve/],
    ['recovery of an unknown incident → nothing', alert('recovery'), undefined, {}, 'ignore', [], /without an open incident/],
    ['recovery of one of two open events → follow-up', alert('recovery'), { ...open, openEvents: ['10', '12'], events: ['10', '12'] }, {}, 'follow_up', ['followup'], /1 other problem/],
    ['acknowledge → follow-up with who and what', update({ action: 'acknowledged and commented', message: 'on it', user: 'Ann', acknowledged: true }), open, {}, 'follow_up', ['followup'], /update in Zabbix/],
    ['our own write-back → ignored', update({ message: '[glpi-bridge] GLPI ticket #7' }), open, {}, 'ignore', [], /own write-back/],
    ['update without a ticket → ignored', update({ message: 'x' }), undefined, {}, 'ignore', [], /without a ticket/],
    ['severity change → urgency update', update({ action: 'changed severity from High to Disaster', severityChanged: true }, { severity: 'disaster' }), open, {}, 'update_severity', ['update_ticket'], /high → disaster/],
  ] as const)('%s', (_name, a, incident, p, action, jobs, reason) => {
    const d = run(a, incident, p);
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
    expect(job.ticket.name).toMatch(/^\[cpu\] High CPU \[zbx:[0-9a-f]{16}\]$/);
    expect(d.incident).toMatchObject({ status: 'open', seq: 1, holdUntil: NOW + 30_000, severity: 'disaster' });
  });

  it('hold-down: a recovery before the create runs suppresses the ticket', () => {
    const opened = run(alert('problem'), undefined, { holdDownMs: 30_000 });
    const d = run(alert('recovery'), opened.incident, { holdDownMs: 30_000 }, NOW + 10_000);
    expect(d).toMatchObject({ action: 'suppress', cancelCreate: true, jobs: [] });
    expect(d.incident?.status).toBe('suppressed');
  });

  it('hold-down elapsed: the recovery solves as usual', () => {
    const opened = run(alert('problem'), undefined, { holdDownMs: 30_000 });
    const d = run(alert('recovery'), opened.incident, { holdDownMs: 30_000 }, NOW + 31_000);
    expect(d.action).toBe('solve');
  });

  it('reopen window: a problem soon after the bridge solved the ticket reopens it', () => {
    const solved: Incident = { ...open, status: 'solved', openEvents: [], solvedAt: NOW - 600_000 };
    const d = run(alert('problem', { eventId: '20' }), solved);
    expect(d.action).toBe('reopen');
    expect(d.jobs.map((j) => j.type)).toEqual(['reopen']);
    expect(d.incident).toMatchObject({ status: 'open', seq: 1, openEvents: ['20'] });
    expect(d.incident?.solvedAt).toBeUndefined();
  });

  it('outside the reopen window: a new ticket with a new marker', () => {
    const solved: Incident = { ...open, status: 'solved', openEvents: [], solvedAt: NOW - 7_200_000 };
    const d = run(alert('problem', { eventId: '20' }), solved);
    expect(d.action).toBe('open');
    expect(d.incident?.seq).toBe(2);
    expect(d.incident?.marker).not.toBe(open.marker);
  });

  it('remembers a bounded number of event ids per incident (storms stay cheap)', () => {
    let incident: Incident | undefined = open;
    for (let i = 0; i < EVENTS_KEPT + 50; i++) incident = run(alert('problem', { eventId: String(1000 + i) }), incident).incident ?? incident;
    expect(incident?.events).toHaveLength(EVENTS_KEPT);
    expect(incident?.events.at(-1)).toBe(String(1000 + EVENTS_KEPT + 49));
    expect(incident?.occurrences).toBe(EVENTS_KEPT + 51);
  });

  it.each([
    ['solve', 'solved'],
    ['close', 'solved'],
    ['followup', 'open'],
  ] as const)('recovery mode %s leaves the incident %s', (mode, status) => {
    const d = run(alert('recovery'), open, { recovery: mode });
    expect(d.incident?.status).toBe(status);
    expect(d.jobs[0]).toMatchObject({ type: 'solve', mode });
  });
});
