import { describe, expect, it } from '@jest/globals';
import type { Alert } from '../../src/core/alert.js';
import { classify } from '../../src/core/classify.js';
import { decide, problemMarker, type Incident, type JobSpec, type Policy } from '../../src/core/decide.js';
import type { Rules } from '../../src/core/rules.js';
import { cpuAlert, exampleRules } from '../helpers/fixtures.js';
import { nodeDigests } from '../../src/adapters/digests.js';

/**
 * Issue 14 item 1: a fingerprint that opens `problems.after_cycles` ticket cycles within `problems.within`
 * (its category's rule) queues a GLPI Problem job behind the cycle's create, naming every cycle to link.
 */
const base = exampleRules();
const DAY = 86_400_000;
const rules: Rules = { ...base, fallback: { ...base.fallback, problems: { afterCycles: 3, withinMs: 7 * DAY } }, categories: base.categories.map((c) => ({ ...c, problems: { afterCycles: 3, withinMs: 7 * DAY } })) };
const FP = 'host=srv|trigger=#100';
const T0 = 1_800_000_000_000;
const policy: Policy = { holdDownMs: 0, reopenWindowMs: 60_000, recovery: 'solve', followupPrivate: false, writeBackPrefix: '[glpi-bridge]', markerKey: 'test-marker-key-0123456789abcdef0123', digests: nodeDigests };

function run(a: Alert, incident: Incident | undefined, now: number, r: Rules = rules, p: Policy = policy) {
  return decide({ alert: a, classification: classify(r, a), fingerprint: FP, incident, now, policy: p, rules: r, reclassify: (s) => classify(r, { ...a, severity: s }) });
}

/** Open a cycle at `at` and solve it an hour later (outside the reopen window for the next one). */
function cycle(incident: Incident | undefined, at: number, eventId: string, r: Rules = rules, p: Policy = policy): { incident: Incident; jobs: readonly JobSpec[]; reason: string } {
  const opened = run(cpuAlert('problem', { eventId }), incident, at, r, p);
  expect(opened.action).toBe('open');
  const solved: Incident = { ...opened.incident!, status: 'solved', openCount: 0, solvedAt: at + 3_600_000 };
  return { incident: solved, jobs: opened.jobs, reason: opened.reason };
}

const problemJobs = (jobs: readonly JobSpec[]) => jobs.filter((j): j is Extract<JobSpec, { type: 'problem' }> => j.type === 'problem');

describe('recurring incidents become GLPI problems', () => {
  it('the third ticket cycle within the window queues one problem job after the create, naming the three cycles', () => {
    const first = cycle(undefined, T0, '1');
    const second = cycle(first.incident, T0 + DAY, '2');
    expect(problemJobs(first.jobs)).toHaveLength(0);
    expect(problemJobs(second.jobs)).toHaveLength(0);
    const third = cycle(second.incident, T0 + 2 * DAY, '3');
    expect(third.jobs.map((j) => j.type)).toEqual(['create_ticket', 'problem']);
    const job = problemJobs(third.jobs)[0]!;
    expect(job.cycles).toEqual([1, 2, 3]);
    expect(job.marker).toBe(problemMarker(nodeDigests, policy.markerKey, FP));
    expect(job.problem.name.startsWith(job.marker)).toBe(true);
    expect(job.problem.content).toMatch(/never solves or closes it/);
    expect(third.reason).toMatch(/recurring \(3 ticket cycles within 7d\)/);
    // The fourth keeps collecting: every new ticket is linked (the runner adds only the missing links).
    const fourth = cycle(third.incident, T0 + 3 * DAY, '4');
    expect(problemJobs(fourth.jobs)[0]!.cycles).toEqual([1, 2, 3, 4]);
  });

  it('cycles older than the window do not count', () => {
    const first = cycle(undefined, T0, '1');
    const second = cycle(first.incident, T0 + 6 * DAY, '2');
    const third = cycle(second.incident, T0 + 8 * DAY, '3');
    expect(problemJobs(third.jobs)).toHaveLength(0);
    expect(third.incident.recent?.map((r) => r.cycle)).toEqual([2, 3]);
    const fourth = cycle(third.incident, T0 + 9 * DAY, '4');
    expect(problemJobs(fourth.jobs)[0]!.cycles).toEqual([2, 3, 4]);
  });

  it('a category without a problems rule never queues a problem and keeps no recurrence record', () => {
    let inc: Incident | undefined;
    for (let i = 0; i < 4; i++) {
      const c = cycle(inc, T0 + i * DAY, String(i + 1), base);
      expect(problemJobs(c.jobs)).toHaveLength(0);
      inc = c.incident;
    }
    expect(inc?.recent).toBeUndefined();
  });

  it('a cycle suppressed within the hold-down is not a recurrence', () => {
    const held: Policy = { ...policy, holdDownMs: 60_000 };
    const first = cycle(undefined, T0, '1', rules, held);
    const second = cycle(first.incident, T0 + DAY, '2', rules, held);
    const flap = run(cpuAlert('problem', { eventId: '3' }), second.incident, T0 + 2 * DAY, rules, held);
    const suppressed = decide({
      alert: cpuAlert('recovery', { eventId: '3' }),
      classification: classify(rules, cpuAlert('recovery', { eventId: '3' })),
      fingerprint: FP,
      incident: flap.incident,
      event: { fingerprint: FP, cycle: 3, open: true },
      now: T0 + 2 * DAY + 1_000,
      policy: held,
      rules,
      reclassify: (s) => classify(rules, cpuAlert('recovery', { severity: s })),
    });
    expect(suppressed.action).toBe('suppress');
    expect(suppressed.incident?.recent?.map((r) => r.cycle)).toEqual([1, 2]);
    const fourth = cycle(suppressed.incident, T0 + 3 * DAY, '4', rules, held);
    expect(problemJobs(fourth.jobs)[0]!.cycles).toEqual([1, 2, 4]);
  });
});

describe('cause and symptom events (Zabbix 6.4+)', () => {
  const CAUSE_FP = 'host=core|trigger=#1';
  const cause = { fingerprint: CAUSE_FP, cycle: 2, open: true };
  const symptom = cpuAlert('problem', { eventId: '20', causeEventId: '19' });
  const withMode = (mode: 'link' | 'skip' | 'ticket'): Rules => ({ ...base, fallback: { ...base.fallback, symptoms: mode }, categories: base.categories.map((c) => ({ ...c, symptoms: mode })) });
  const decideSymptom = (r: Rules, known: typeof cause | undefined = cause, a: Alert = symptom) =>
    decide({ alert: a, classification: classify(r, a), fingerprint: FP, incident: undefined, cause: known, now: T0, policy, rules: r, reclassify: (s) => classify(r, { ...a, severity: s }) });

  it('link (the default): the ticket opens, then is linked to the cause\'s ticket of its cycle', () => {
    const d = decideSymptom(base);
    expect(d.action).toBe('open');
    expect(d.jobs.map((j) => j.type)).toEqual(['create_ticket', 'link_ticket']);
    expect(d.jobs[1]).toEqual({ type: 'link_ticket', cause: { fingerprint: CAUSE_FP, cycle: 2, eventId: '19' } });
    expect(d.reason).toMatch(/symptom of event 19/);
  });

  it('skip: no ticket; ticket: a ticket of its own, unlinked', () => {
    expect(decideSymptom(withMode('skip')).action).toBe('ignore');
    expect(decideSymptom(withMode('skip')).reason).toMatch(/symptoms: skip/);
    expect(decideSymptom(withMode('ticket')).jobs.map((j) => j.type)).toEqual(['create_ticket']);
  });

  it('a cause the bridge never took in, or one of the same incident: a plain ticket', () => {
    const unknown = decide({ alert: symptom, classification: classify(base, symptom), fingerprint: FP, incident: undefined, now: T0, policy, rules: base, reclassify: (s) => classify(base, { ...symptom, severity: s }) });
    expect(unknown.jobs.map((j) => j.type)).toEqual(['create_ticket']);
    expect(decideSymptom(withMode('skip'), { ...cause, fingerprint: FP }).jobs.map((j) => j.type)).toEqual(['create_ticket']);
  });
});
