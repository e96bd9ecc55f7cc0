import { describe, expect, it } from '@jest/globals';
import type { Alert, AlertNote } from '../../src/core/alert.js';
import { classify } from '../../src/core/classify.js';
import { decide, type Decision, type EventInfo, type Incident, type Policy } from '../../src/core/decide.js';
import { deliveryKey } from '../../src/core/fingerprint.js';
import { nodeDigests } from '../../src/adapters/digests.js';
import { cpuAlert, exampleRules } from '../helpers/fixtures.js';

// Notes from the poller (issue 14 item 6): a maintenance entered or left, a trigger, host or item disabled while the
// problem's ticket is open. One follow-up per change, or the ticket solved with the reason; never twice.

const rules = exampleRules();
const FP = 'host=srv|trigger=#100';
const NOW = 1_800_000_000_000;
const policy: Policy = { holdDownMs: 0, reopenWindowMs: 3_600_000, recovery: 'solve', followupPrivate: true, writeBackPrefix: '[glpi-bridge]', markerKey: 'test-marker-key-0123456789abcdef0123', digests: nodeDigests };

const open: Incident = {
  fingerprint: FP, cycle: 1, status: 'open', ticketId: 7, marker: '[zbx:m1]', category: 'cpu', severity: 'high', urgency: 4, impact: 4,
  openCount: 1, occurrences: 1, openedAt: NOW - 3_600_000,
};
const ev10: EventInfo = { fingerprint: FP, cycle: 1, open: true };

const entered: AlertNote = { reason: 'maintenance', key: 'maintenance:3:1799996400', text: "Host srv entered maintenance \"Patch night\" (with data collection, until 2027-01-15 02:00:00 UTC): …", solve: false };

function note(n: Partial<AlertNote> = {}, over: Partial<Alert> = {}): Alert {
  return { ...cpuAlert('problem'), source: 'poller', kind: 'note', note: { ...entered, ...n }, ...over };
}

function run(a: Alert, incident: Incident | undefined, event: EventInfo | undefined = ev10, now = NOW): Decision {
  return decide({ alert: a, classification: classify(rules, a), fingerprint: FP, incident, event, now, policy, rules, reclassify: (severity) => classify(rules, { ...a, severity }) });
}

describe('decide: poller notes', () => {
  it('a maintenance entered → one follow-up with the note\'s text, remembered on the incident', () => {
    const d = run(note(), open);
    expect(d.action).toBe('follow_up');
    expect(d.jobs).toEqual([{ type: 'followup', lines: [entered.text], isPrivate: true }]);
    expect(d.incident?.announced).toEqual(['10:maintenance:3:1799996400']);
    expect(d.incident?.status).toBe('open');
    // The same change again (the next sweep after the inbox forgot it, a redelivery): nothing.
    const again = run(note(), d.incident);
    expect(again.action).toBe('ignore');
    expect(again.jobs).toEqual([]);
    expect(again.reason).toMatch(/already announced/);
  });

  it('on_maintenance: solve → the ticket solved, saying why and for how long; the cycle ends like a recovery', () => {
    const d = run(note({ solve: true }), open);
    expect(d.action).toBe('solve');
    expect(d.reason).toMatch(/zabbix\.poll\.on_maintenance: solve/);
    const job = d.jobs[0];
    expect(job?.type).toBe('solve');
    if (job?.type !== 'solve') return;
    expect(job.mode).toBe('solve');
    expect(job.lines[0]).toBe(entered.text);
    expect(job.lines[1]).toMatch(/on_maintenance is solve/);
    expect(job.lines[2]).toMatch(/^Incident lasted 1h 0m/);
    expect(d.incident).toMatchObject({ status: 'solved', openCount: 0, solvedAt: NOW });
    expect(d.events).toEqual([{ eventId: '10', cycle: 1, open: false }]);
  });

  it('on_disabled: solve with recovery: close → the ticket is closed, as a recovery would', () => {
    const d = decide({
      alert: note({ reason: 'disabled', key: 'disabled:trigger', text: 'Trigger "CPU" was disabled in Zabbix', solve: true }),
      classification: classify(rules, cpuAlert('problem')), fingerprint: FP, incident: open, event: ev10, now: NOW,
      policy: { ...policy, recovery: 'close' }, rules, reclassify: (s) => classify(rules, { ...cpuAlert('problem'), severity: s }),
    });
    expect(d.action).toBe('solve');
    expect(d.reason).toMatch(/on_disabled: solve/);
    expect(d.jobs[0]).toMatchObject({ type: 'solve', mode: 'close' });
  });

  it('recovery: followup does not stop a solve asked for by on_disabled (the operator asked for a solved ticket)', () => {
    const d = decide({
      alert: note({ reason: 'disabled', key: 'disabled:trigger', text: 't', solve: true }),
      classification: classify(rules, cpuAlert('problem')), fingerprint: FP, incident: open, event: ev10, now: NOW,
      policy: { ...policy, recovery: 'followup' }, rules, reclassify: (s) => classify(rules, { ...cpuAlert('problem'), severity: s }),
    });
    expect(d.jobs[0]).toMatchObject({ type: 'solve', mode: 'solve' });
  });

  it('a trigger disabled → a follow-up; a maintenance and a disabling of the same event are two notes', () => {
    const first = run(note(), open);
    const d = run(note({ reason: 'disabled', key: 'disabled:trigger', text: 'Trigger "CPU" was disabled in Zabbix' }), first.incident);
    expect(d.action).toBe('follow_up');
    expect(d.jobs).toEqual([{ type: 'followup', lines: ['Trigger "CPU" was disabled in Zabbix'], isPrivate: true }]);
    expect(d.incident?.announced).toEqual(['10:maintenance:3:1799996400', '10:disabled:trigger']);
  });

  it('leaving a maintenance is noted only after its entry was, and never solves', () => {
    const left = note({ reason: 'maintenance_end', key: 'maintenance_end:3:1799996400', after: 'maintenance:3:1799996400', text: 'Host srv left maintenance "Patch night"', solve: true });
    expect(run(left, open).reason).toMatch(/never announced/);
    const inMaintenance = run(note(), open).incident;
    const d = run(left, inMaintenance);
    expect(d.action).toBe('follow_up');
    expect(d.jobs).toEqual([{ type: 'followup', lines: ['Host srv left maintenance "Patch night"'], isPrivate: true }]);
  });

  it.each([
    ['no ticket for the event', undefined, undefined, /without a ticket/],
    ['the event already recovered', open, { ...ev10, open: false }, /already recovered/],
    ['an ended cycle', { ...open, status: 'solved' as const, solvedAt: NOW - 1 }, ev10, /ended ticket cycle/],
    ['an event of an earlier cycle', { ...open, cycle: 2 }, ev10, /ended ticket cycle/],
  ])('%s → nothing', (_name, incident, event, reason) => {
    const d = run(note({ solve: true }), incident, event);
    expect(d.action).toBe('ignore');
    expect(d.jobs).toEqual([]);
    expect(d.reason).toMatch(reason);
  });

  it('a ticket still held back (hold-down) when on_maintenance solves: no ticket at all, the create cancelled', () => {
    const held: Incident = { ...open, ticketId: undefined, holdUntil: NOW + 60_000 };
    const d = run(note({ solve: true }), held);
    expect(d.action).toBe('suppress');
    expect(d.cancelCycle).toBe(true);
    expect(d.incident?.status).toBe('suppressed');
  });

  it('the incident remembers a bounded number of announcements', () => {
    let incident: Incident | undefined = open;
    for (let i = 0; i < 100; i++) incident = run(note({ key: `disabled:item:${i}`, reason: 'disabled' }), incident).incident ?? incident;
    expect(incident?.announced).toHaveLength(64);
    expect(incident?.announced?.at(-1)).toBe('10:disabled:item:99');
  });

  it('each change of an event has its own delivery key; the same change has the same one', () => {
    const a = deliveryKey(note(), nodeDigests);
    expect(a).toBe('zbx:0:10:note:maintenance:3:1799996400');
    expect(deliveryKey(note({ text: 'other words' }), nodeDigests)).toBe(a);
    expect(deliveryKey(note({ key: 'disabled:trigger' }), nodeDigests)).not.toBe(a);
  });
});
