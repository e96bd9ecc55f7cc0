import { describe, expect, it } from '@jest/globals';
import type { Alert } from '../../src/core/alert.js';
import { classify } from '../../src/core/classify.js';
import { assessAlert, type DecisionState, type ProcessingSettings } from '../../src/core/assess.js';
import { decide, groupProblemMarker, problemMarker, type Incident, type JobSpec, type Policy } from '../../src/core/decide.js';
import { rulesSchema } from '../../src/config/schema.js';
import { deliveryKey } from '../../src/core/fingerprint.js';
import { rankedAsCauseOf } from '../../src/core/reconcile.js';
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

describe('incidents of one group firing together become one GLPI problem (problems.together)', () => {
  const MIN = 60_000;
  const settingsWith = (together: { fingerprints: number; withinMs: number; by: 'host' | 'category' }, glpi = {}, p: Policy = policy): ProcessingSettings => {
    const r: Rules = { ...base, categories: base.categories.map((c) => ({ ...c, problems: { together }, glpi: { ...c.glpi, ...glpi } })) };
    return { rules: r, policy: p, fingerprintFields: ['host', 'trigger'], coalesceWindowMs: 0 };
  };
  const byHost = settingsWith({ fingerprints: 3, withinMs: 10 * MIN, by: 'host' });

  /** The processor's view in miniature: decisions applied to one map of incidents (the group's record among them). */
  function harness(s: ProcessingSettings) {
    const incidents = new Map<string, Incident>();
    const events = new Map<string, { fingerprint: string; cycle: number; open: boolean }>();
    const state: DecisionState = { incident: (fp) => incidents.get(fp), event: (id) => events.get(id), recoveredEarlier: () => false };
    return {
      incidents,
      fire(a: Alert, now: number) {
        const r = assessAlert(s, a, state, now);
        if (r.decision.incident) incidents.set(r.fingerprint, r.decision.incident);
        for (const e of r.decision.events ?? []) events.set(e.eventId, { fingerprint: r.fingerprint, cycle: e.cycle, open: e.open });
        if (r.decision.group) incidents.set(r.decision.group.fingerprint, r.decision.group.incident);
        return r;
      },
    };
  }
  const onHost = (host: string, trigger: string, eventId: string) => cpuAlert('problem', { host, hostName: host, triggerId: trigger, eventId });
  const groupJobs = (d: { decision: { group?: { jobs: readonly JobSpec[] } } }) => (d.decision.group?.jobs ?? []).filter((j): j is Extract<JobSpec, { type: 'problem_group' }> => j.type === 'problem_group');

  it('the third incident of one host within the window queues the group\'s problem job naming the three tickets; the fourth names four', () => {
    const h = harness(byHost);
    expect(groupJobs(h.fire(onHost('srv', '1', 'e1'), T0))).toHaveLength(0);
    expect(groupJobs(h.fire(onHost('srv', '2', 'e2'), T0 + 2 * MIN))).toHaveLength(0);
    // Another host's incident of the same category is another group.
    expect(groupJobs(h.fire(onHost('other', '3', 'e0'), T0 + 3 * MIN))).toHaveLength(0);
    const third = h.fire(onHost('srv', '3', 'e3'), T0 + 4 * MIN);
    expect(third.decision.action).toBe('open');
    expect(third.decision.jobs.map((j) => j.type)).toEqual(['create_ticket']);
    const job = groupJobs(third)[0]!;
    const key = 'group:by=host|host=srv|category=cpu';
    expect(third.decision.group?.fingerprint).toBe(key);
    expect(job.marker).toBe(groupProblemMarker(nodeDigests, policy.markerKey, key));
    expect(job.marker).not.toBe(problemMarker(nodeDigests, policy.markerKey, key));
    expect(job.problem.name).toBe(`${job.marker} 3 cpu incidents together on srv`);
    expect(job.problem.content).toMatch(/never solves or closes it/);
    expect(job.members).toEqual([
      { fingerprint: 'host=srv|trigger=#1', cycle: 1 },
      { fingerprint: 'host=srv|trigger=#2', cycle: 1 },
      { fingerprint: 'host=srv|trigger=#3', cycle: 1 },
    ]);
    expect(job.required).toBe(3);
    expect(third.decision.reason).toMatch(/fired together \(3 incidents of by=host\|host=srv\|category=cpu within 10m\)/);
    const fourth = h.fire(onHost('srv', '4', 'e4'), T0 + 5 * MIN);
    expect(groupJobs(fourth)[0]!.members.map((m) => m.fingerprint)).toEqual(['host=srv|trigger=#1', 'host=srv|trigger=#2', 'host=srv|trigger=#3', 'host=srv|trigger=#4']);
    // The group's record is no incident anyone lists as open.
    expect(h.incidents.get(key)?.status).toBe('solved');
  });

  it('incidents further apart than the window do not fire together', () => {
    const h = harness(byHost);
    h.fire(onHost('srv', '1', 'e1'), T0);
    h.fire(onHost('srv', '2', 'e2'), T0 + 8 * MIN);
    expect(groupJobs(h.fire(onHost('srv', '3', 'e3'), T0 + 16 * MIN))).toHaveLength(0);
    expect(h.incidents.get('group:by=host|host=srv|category=cpu')?.members?.map((m) => m.fingerprint)).toEqual(['host=srv|trigger=#2', 'host=srv|trigger=#3']);
  });

  it('one incident opening new tickets again and again is one fingerprint, not several', () => {
    const h = harness({ ...byHost, policy: { ...policy, reopenWindowMs: 0 } });
    h.fire(onHost('srv', '1', 'e1'), T0);
    h.fire(cpuAlert('recovery', { triggerId: '1', eventId: 'e1' }), T0 + MIN);
    h.fire(onHost('srv', '1', 'e2'), T0 + 2 * MIN);
    h.fire(cpuAlert('recovery', { triggerId: '1', eventId: 'e2' }), T0 + 3 * MIN);
    expect(groupJobs(h.fire(onHost('srv', '2', 'e3'), T0 + 4 * MIN))).toHaveLength(0);
    const third = h.fire(onHost('srv', '3', 'e4'), T0 + 5 * MIN);
    // Both ticket cycles of trigger 1 are linked.
    expect(groupJobs(third)[0]!.members).toHaveLength(4);
  });

  it('by: category groups the category\'s incidents across hosts (many hosts losing the same uplink)', () => {
    const h = harness(settingsWith({ fingerprints: 3, withinMs: 10 * MIN, by: 'category' }));
    h.fire(onHost('a', '7', 'e1'), T0);
    h.fire(onHost('b', '8', 'e2'), T0 + MIN);
    const third = h.fire(onHost('c', '9', 'e3'), T0 + 2 * MIN);
    const job = groupJobs(third)[0]!;
    expect(third.decision.group?.fingerprint).toBe('group:by=category|category=cpu');
    expect(job.members.map((m) => m.fingerprint)).toEqual(['host=a|trigger=#7', 'host=b|trigger=#8', 'host=c|trigger=#9']);
    expect(job.problem.name).toMatch(/3 cpu incidents together across hosts$/);
  });

  it('a flap suppressed within the hold-down leaves the group; the job waits out the hold-down', () => {
    const held: Policy = { ...policy, holdDownMs: MIN };
    const h = harness({ ...byHost, policy: held });
    h.fire(onHost('srv', '1', 'e1'), T0);
    h.fire(onHost('srv', '2', 'e2'), T0 + 1_000);
    const flap = h.fire(cpuAlert('recovery', { triggerId: '2', eventId: 'e2' }), T0 + 2_000);
    expect(flap.decision.action).toBe('suppress');
    expect(h.incidents.get('group:by=host|host=srv|category=cpu')?.members?.map((m) => m.fingerprint)).toEqual(['host=srv|trigger=#1']);
    expect(groupJobs(h.fire(onHost('srv', '3', 'e3'), T0 + 3_000))).toHaveLength(0);
    const job = groupJobs(h.fire(onHost('srv', '4', 'e4'), T0 + 4_000))[0]!;
    expect(job.members.map((m) => m.fingerprint)).toEqual(['host=srv|trigger=#1', 'host=srv|trigger=#3', 'host=srv|trigger=#4']);
    expect(job.delayMs).toBe(MIN);
  });

  it('names the rules give for the entity and ITIL category go to the problem, to be resolved before its create', () => {
    const named = harness(settingsWith({ fingerprints: 2, withinMs: 10 * MIN, by: 'host' }, { itilcategories_id: { name: 'Monitoring > CPU' }, entities_id: { name: 'Paris' } }));
    named.fire(onHost('srv', '1', 'e1'), T0);
    const job = groupJobs(named.fire(onHost('srv', '2', 'e2'), T0 + MIN))[0]!;
    expect(job.problem.names).toEqual({ itilcategories_id: 'Monitoring > CPU', entities_id: 'Paris' });
    expect(job.problem.itilcategories_id).toBe(0);
    // The recurrence trigger carries them too.
    const r: Rules = { ...base, categories: base.categories.map((c) => ({ ...c, problems: { afterCycles: 2, withinMs: DAY }, glpi: { ...c.glpi, itilcategories_id: { name: 'Monitoring > CPU' } } })) };
    const first = cycle(undefined, T0, '1', r);
    const second = cycle(first.incident, T0 + DAY, '2', r);
    expect(problemJobs(second.jobs)[0]!.problem.names).toEqual({ itilcategories_id: 'Monitoring > CPU' });
  });
});

describe('problems rule in the YAML', () => {
  const parse = (problems: unknown) => rulesSchema.safeParse({ categories: [{ name: 'net', problems }] });

  it('together alone, recurrence alone, or both; by defaults to host', () => {
    const both = parse({ after_cycles: 3, within: '7d', together: { fingerprints: 3, within: '10m' } });
    expect(both.success).toBe(true);
    expect(both.data?.categories[0]?.problems).toEqual({ afterCycles: 3, withinMs: 7 * DAY, together: { fingerprints: 3, withinMs: 600_000, by: 'host' } });
    expect(parse({ together: { fingerprints: 5, within: '5m', by: 'category' } }).data?.categories[0]?.problems).toEqual({ together: { fingerprints: 5, withinMs: 300_000, by: 'category' } });
  });

  it('refuses half a recurrence, an empty rule, one fingerprint "together", an unknown grouping', () => {
    expect(parse({ after_cycles: 3 }).error?.issues[0]?.path).toEqual(['categories', 0, 'problems', 'within']);
    expect(parse({}).success).toBe(false);
    expect(parse({ together: { fingerprints: 1, within: '5m' } }).success).toBe(false);
    expect(parse({ together: { fingerprints: 3, within: '5m', by: 'site' } }).success).toBe(false);
  });
});

describe('a symptom ranked as cause again (Zabbix 6.4+ "ranked as cause")', () => {
  const CAUSE_FP = 'host=core|trigger=#1';
  const cause = { fingerprint: CAUSE_FP, cycle: 2, open: true };
  const rank = (action: string, over: Partial<Alert> = {}) =>
    cpuAlert('update', { eventId: '20', update: { action, user: 'Admin', acknowledged: false, severityChanged: false, closed: false }, ...over });
  const decideWith = (a: Alert, incident: Incident | undefined, extra: Partial<Parameters<typeof decide>[0]> = {}, r: Rules = base) =>
    decide({ alert: a, classification: classify(r, a), fingerprint: FP, incident, now: T0 + 60_000, policy, rules: r, reclassify: (s) => classify(r, { ...a, severity: s }), ...extra });

  it('the ticket linked to its cause\'s is unlinked, and the incident forgets the link', () => {
    const opened = decideWith(cpuAlert('problem', { eventId: '20', causeEventId: '19' }), undefined, { cause });
    expect(opened.incident?.linkedTo).toEqual({ fingerprint: CAUSE_FP, cycle: 2, eventId: '19' });
    const ranked = decideWith(rank('ranked as cause'), opened.incident, { event: { fingerprint: FP, cycle: 1, open: true } });
    expect(ranked.jobs.map((j) => j.type)).toEqual(['followup', 'unlink_ticket']);
    expect(ranked.jobs[1]).toEqual({ type: 'unlink_ticket', cause: { fingerprint: CAUSE_FP, cycle: 2, eventId: '19' } });
    expect(ranked.incident?.linkedTo).toBeUndefined();
    expect(ranked.reason).toMatch(/ranked as cause: no longer a symptom of event 19/);
    // Nothing linked, nothing to unlink: a plain follow-up.
    expect(decideWith(rank('ranked as cause'), ranked.incident, { event: { fingerprint: FP, cycle: 1, open: true } }).jobs.map((j) => j.type)).toEqual(['followup']);
  });

  it('ranked as the symptom of another cause: the old link goes, the new one comes', () => {
    const opened = decideWith(cpuAlert('problem', { eventId: '20', causeEventId: '19' }), undefined, { cause });
    const other = { fingerprint: 'host=edge|trigger=#7', cycle: 1, open: true };
    const moved = decideWith(rank('ranked as symptom', { causeEventId: '55' }), opened.incident, { event: { fingerprint: FP, cycle: 1, open: true }, cause: other });
    expect(moved.jobs.map((j) => j.type)).toEqual(['followup', 'unlink_ticket', 'link_ticket']);
    expect(moved.incident?.linkedTo).toEqual({ fingerprint: 'host=edge|trigger=#7', cycle: 1, eventId: '55' });
  });

  it('a symptom skipped (symptoms: skip) gets its ticket when ranked as cause, from its problem as delivered', () => {
    const skip: Rules = { ...base, fallback: { ...base.fallback, symptoms: 'skip' }, categories: base.categories.map((c) => ({ ...c, symptoms: 'skip' })) };
    const problem = cpuAlert('problem', { eventId: '20', causeEventId: '19', itemValue: '99 %' });
    expect(decideWith(problem, undefined, { cause }, skip).action).toBe('ignore');
    const d = decideWith(rank('ranked as cause'), undefined, { skippedSymptom: problem }, skip);
    expect(d.action).toBe('open');
    expect(d.jobs.map((j) => j.type)).toEqual(['create_ticket']);
    expect(d.events).toEqual([{ eventId: '20', cycle: 1, open: true }]);
    expect(d.reason).toMatch(/^ranked as cause in Zabbix \(was a symptom of event 19, skipped\): new fingerprint/);
    // Its recovery received already: nothing to open.
    expect(decideWith(rank('ranked as cause'), undefined, { skippedSymptom: problem, recoveredEarlier: true }, skip).action).toBe('ignore');
    // Under symptoms: link (the symptom had its ticket) or without the problem delivered: nothing opens from an update.
    expect(decideWith(rank('ranked as cause'), undefined, { skippedSymptom: problem }).action).toBe('ignore');
    expect(decideWith(rank('ranked as cause'), undefined, {}, skip).action).toBe('ignore');
  });
});

describe('a rank change the poller sees (problem.get cause_eventid "0")', () => {
  it('is the webhook\'s "ranked as cause": the link goes; seen again (or after the webhook), nothing more', () => {
    const CAUSE_FP = 'host=core|trigger=#1';
    const problem = cpuAlert('problem', { eventId: '20', causeEventId: '19' });
    const opened = decide({ alert: problem, classification: classify(base, problem), fingerprint: FP, incident: undefined, cause: { fingerprint: CAUSE_FP, cycle: 1, open: true }, now: T0, policy, rules: base, reclassify: (s) => classify(base, { ...problem, severity: s }) });
    const polled = rankedAsCauseOf(problem);
    expect(polled).toMatchObject({ kind: 'update', source: 'poller', update: { action: 'ranked as cause' } });
    expect(polled.causeEventId).toBeUndefined();
    // The same change at every sweep is one delivery.
    expect(deliveryKey(rankedAsCauseOf(problem), nodeDigests)).toBe(deliveryKey(polled, nodeDigests));
    const event = { fingerprint: FP, cycle: 1, open: true };
    const first = decide({ alert: polled, classification: classify(base, polled), fingerprint: FP, incident: opened.incident, event, now: T0 + 1, policy, rules: base, reclassify: (s) => classify(base, { ...polled, severity: s }) });
    expect(first.jobs.map((j) => j.type)).toEqual(['followup', 'unlink_ticket']);
    const again = decide({ alert: polled, classification: classify(base, polled), fingerprint: FP, incident: first.incident, event, now: T0 + 2, policy, rules: base, reclassify: (s) => classify(base, { ...polled, severity: s }) });
    expect(again.action).toBe('ignore');
  });
});
