import { describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import type { JobSpec, ProblemSpec } from '../../src/core/decide.js';
import type { GlpiDirectory, Job, ProblemDesk, ProblemRef, TicketDesk } from '../../src/core/ports.js';
import { RemoteError } from '../../src/core/remote-error.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { JobRunner, LINK_LOOK_MIN_MS, LINK_WAIT_RUNS, NotYet } from '../../src/services/job-runner.js';
import { NameResolver, problemRoutingDesk } from '../../src/services/glpi-names.js';

/**
 * A problem job on a GLPI API without Problem routes (the v2 adapter, glpi.api: v2: docs/glpi-api-v2.md
 * lists none): skipped, never a dead letter, logged once per process and counted every time.
 */
const desk: TicketDesk = {
  findTicketByMarker: async () => undefined,
  createTicket: async () => 1,
  addFollowup: async () => 1,
  followupContents: async () => [],
  addSolution: async () => 'added',
  updateTicket: async () => undefined,
  ticketStatus: async () => 1,
  ticketUrl: (id) => `#${id}`,
};

const spec: JobSpec = {
  type: 'problem',
  marker: '[zbx:p0123]',
  problem: { name: '[zbx:p0123] Recurring: cpu', content: 'x', urgency: 3, impact: 3, entities_id: 0, itilcategories_id: 0 },
  cycles: [1, 2, 3],
  lines: ['again'],
};
const job = (id: number): Job => ({ id, fingerprint: 'fp', key: 'k', lane: 'glpi:k', cycle: 3, type: 'problem', spec, status: 'running', attempts: 1, nextAttemptAt: 0, createdAt: 0 });

describe('problem jobs without Problem routes', () => {
  it('complete as skipped, logged once, counted each time', async () => {
    const lines: { code?: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as { code?: string }) });
    const metrics = createMetrics({ processMetrics: false });
    const runner = new JobRunner(desk, { ticketId: (_j, c) => c * 10 }, { solutionTypeId: 0, logger, metrics });
    expect(await runner.run(job(1), { uncertain: false })).toEqual({ operation: 'problem_unsupported', ticketId: 30 });
    expect(await runner.run(job(2), { uncertain: false })).toEqual({ operation: 'problem_unsupported', ticketId: 30 });
    expect(lines.filter((l) => l.code === 'GLPI_PROBLEMS_UNSUPPORTED')).toHaveLength(1);
    const counted = (await metrics.registry.getSingleMetric('zgb_glpi_problems_total')!.get()).values;
    expect(counted).toEqual([{ labels: { operation: 'unsupported', trigger: 'recurrence' }, value: 2 }]);
  });
});

/** A ProblemDesk in memory, as strict as GLPI where the runner relies on it (a link twice is refused). */
class MemoryProblems implements ProblemDesk {
  readonly problems: { id: number; status: number; draft: ProblemSpec }[] = [];
  readonly links = new Map<number, number[]>();
  readonly followups = new Map<number, string[]>();
  readonly calls: string[] = [];
  async findProblemsByMarker(marker: string): Promise<ProblemRef[]> {
    this.calls.push('find');
    return this.problems.filter((p) => p.draft.name.includes(marker)).map(({ id, status }) => ({ id, status }));
  }
  async createProblem(p: ProblemSpec): Promise<number> {
    this.calls.push('create');
    const id = this.problems.length + 1;
    this.problems.push({ id, status: 1, draft: p });
    return id;
  }
  async problemTickets(problemId: number): Promise<number[]> {
    return [...(this.links.get(problemId) ?? [])];
  }
  async linkProblemTicket(problemId: number, ticketId: number): Promise<void> {
    const l = this.links.get(problemId) ?? [];
    if (l.includes(ticketId)) throw new RemoteError('permanent', 'ERROR_GLPI_ADD', 'link exists');
    this.links.set(problemId, [...l, ticketId]);
  }
  async addProblemFollowup(problemId: number, content: string): Promise<void> {
    this.followups.set(problemId, [...(this.followups.get(problemId) ?? []), content]);
  }
  async problemFollowupContents(problemId: number): Promise<string[]> {
    return [...(this.followups.get(problemId) ?? [])];
  }
  async linkedTickets(): Promise<number[]> {
    return [];
  }
  async linkTickets(): Promise<void> {}
  unlinkTickets?: (ticketId: number, otherId: number) => Promise<boolean>;
}

describe('a problem group\'s job (problems.together)', () => {
  const marker = '[zbx:g0123]';
  const members = [
    { fingerprint: 'host=srv|trigger=#1', cycle: 1 },
    { fingerprint: 'host=srv|trigger=#2', cycle: 1 },
    { fingerprint: 'host=srv|trigger=#3', cycle: 2 },
  ];
  const groupSpec = (m = members): JobSpec => ({
    type: 'problem_group',
    marker,
    problem: { name: `${marker} 3 cpu incidents together on srv`, content: 'x', urgency: 3, impact: 3, entities_id: 0, itilcategories_id: 0 },
    members: m,
    required: 3,
    lines: ['Fired together: High CPU'],
    delayMs: 0,
  });
  const groupJob = (id: number, spec: JobSpec, attempts = 1): Job => ({ id, fingerprint: 'group:by=host|host=srv|category=cpu', key: 'g', lane: 'glpi:g', cycle: 0, type: 'problem_group', spec, status: 'running', attempts, nextAttemptAt: 0, createdAt: 0 });
  /** Tickets of the members: trigger n's cycle c has ticket n*10+c; `pending` ones have a create still queued. */
  const tickets = (missing: string[] = [], pending: string[] = []) => ({
    ticketId: (ref: string | { key: string }, c: number) => {
      const fp = typeof ref === 'string' ? ref : ref.key;
      return missing.includes(fp) || pending.includes(fp) ? undefined : Number(fp.slice(-1)) * 10 + c;
    },
    cycleHasTicket: (ref: string | { key: string }) => pending.includes(typeof ref === 'string' ? ref : ref.key),
  });

  it('creates one problem with every member\'s ticket; a later job links the new one and says so once on the problem; by trigger in the metrics', async () => {
    const glpi = new MemoryProblems();
    const metrics = createMetrics({ processMetrics: false });
    const runner = new JobRunner(desk, tickets(), { solutionTypeId: 0, problems: glpi, metrics });
    expect(await runner.run(groupJob(1, groupSpec()), { uncertain: false })).toEqual({ operation: 'problem_opened', ticketId: 32 });
    expect(glpi.problems).toHaveLength(1);
    expect(glpi.links.get(1)).toEqual([11, 21, 32]);
    expect(glpi.followups.get(1)).toBeUndefined();
    const later = groupJob(2, groupSpec([...members, { fingerprint: 'host=srv|trigger=#4', cycle: 1 }]));
    expect(await runner.run(later, { uncertain: false })).toEqual({ operation: 'problem_linked', ticketId: 41 });
    // Run again (a claim lost to a crash): nothing twice.
    await runner.run(later, { uncertain: true });
    expect(glpi.problems).toHaveLength(1);
    expect(glpi.links.get(1)).toEqual([11, 21, 32, 41]);
    expect(glpi.followups.get(1)).toHaveLength(1);
    expect(glpi.followups.get(1)![0]).toMatch(/Fired together: High CPU<br>\nTicket #41: #41<br>\n<small>\[zbx-job:2\]<\/small>/);
    const counted = (await metrics.registry.getSingleMetric('zgb_glpi_problems_total')!.get()).values;
    expect(counted).toEqual(
      expect.arrayContaining([
        { labels: { operation: 'created', trigger: 'together' }, value: 1 },
        { labels: { operation: 'linked', trigger: 'together' }, value: 4 },
      ]),
    );
  });

  it('a burst merged into one job (two firings) names both new tickets in its one follow-up', async () => {
    const glpi = new MemoryProblems();
    const runner = new JobRunner(desk, tickets(), { solutionTypeId: 0, problems: glpi });
    await runner.run(groupJob(1, groupSpec()), { uncertain: false });
    const burst = { ...groupSpec([...members, { fingerprint: 'host=srv|trigger=#4', cycle: 1 }, { fingerprint: 'host=srv|trigger=#5', cycle: 1 }]), lines: ['Fired together: 4', 'Fired together: 5'] } as JobSpec;
    await runner.run(groupJob(2, burst), { uncertain: false });
    expect(glpi.links.get(1)).toEqual([11, 21, 32, 41, 51]);
    expect(glpi.followups.get(1)).toHaveLength(1);
    expect(glpi.followups.get(1)![0]).toMatch(/Fired together: 4<br>\nFired together: 5<br>\nTicket #41: #41<br>\nTicket #51: #51/);
  });

  it('a problem a human solved or closed collects no more: the group opens a new one', async () => {
    const glpi = new MemoryProblems();
    const runner = new JobRunner(desk, tickets(), { solutionTypeId: 0, problems: glpi });
    await runner.run(groupJob(1, groupSpec()), { uncertain: false });
    glpi.problems[0]!.status = 6;
    expect((await runner.run(groupJob(2, groupSpec()), { uncertain: false })).operation).toBe('problem_opened');
    expect(glpi.problems.map((p) => p.id)).toEqual([1, 2]);
    expect(glpi.links.get(2)).toEqual([11, 21, 32]);
  });

  it('a member\'s create under way: the job goes back to the queue having sent nothing (NotYet, not a GLPI failure), and links every ticket once it exists', async () => {
    const glpi = new MemoryProblems();
    const pending = ['host=srv|trigger=#2'];
    const runner = new JobRunner(desk, tickets([], pending), { solutionTypeId: 0, problems: glpi });
    const waiting = runner.run(groupJob(1, groupSpec()), { uncertain: false });
    await expect(waiting).rejects.toBeInstanceOf(NotYet);
    await expect(runner.run(groupJob(1, groupSpec(), 3), { uncertain: false })).rejects.toMatchObject({ retryInMs: 4 * LINK_LOOK_MIN_MS, message: expect.stringMatching(/waiting for the ticket of host=srv\|trigger=#2 #1/) });
    expect(glpi.calls).toEqual([]);
    pending.splice(0); // its create lands
    expect((await runner.run(groupJob(1, groupSpec(), 4), { uncertain: false })).operation).toBe('problem_opened');
    expect(glpi.links.get(1)).toEqual([11, 21, 32]);
  });

  it('the wait is bounded: after LINK_WAIT_RUNS looks, what exists is linked (logged as a warning)', async () => {
    const glpi = new MemoryProblems();
    const lines: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as { level: number; msg: string }) });
    const runner = new JobRunner(desk, tickets([], ['host=srv|trigger=#2']), { solutionTypeId: 0, problems: glpi, logger });
    const relaxed = { ...groupSpec(), required: 2 } as JobSpec;
    expect((await runner.run(groupJob(1, relaxed, LINK_WAIT_RUNS), { uncertain: false })).operation).toBe('problem_opened');
    expect(glpi.links.get(1)).toEqual([11, 32]);
    expect(lines.filter((l) => l.level === 40).map((l) => l.msg)).toEqual([`problem group: a member's create is still not done after ${LINK_WAIT_RUNS} looks; the problem goes without it`]);
  });

  it('a member whose create is dead (its lane holds nothing more of the cycle) is left out at once, not waited for', async () => {
    const glpi = new MemoryProblems();
    // The store says the cycle had a create (cycleHasTicket counts a dead one) and its lane is empty.
    const store = { ...tickets([], ['host=srv|trigger=#2']), lastQueued: () => undefined };
    const runner = new JobRunner(desk, store, { solutionTypeId: 0, problems: glpi });
    const relaxed = { ...groupSpec(), required: 2 } as JobSpec;
    expect((await runner.run(groupJob(1, relaxed), { uncertain: false })).operation).toBe('problem_opened');
    expect(glpi.links.get(1)).toEqual([11, 32]);
  });

  it('creates no problem while fewer members than the rule asks have a ticket (a flap suppressed, a dead create)', async () => {
    const glpi = new MemoryProblems();
    const runner = new JobRunner(desk, tickets(['host=srv|trigger=#2']), { solutionTypeId: 0, problems: glpi });
    expect((await runner.run(groupJob(1, groupSpec()), { uncertain: false })).operation).toBe('problem_group_below');
    expect(glpi.problems).toHaveLength(0);
  });
});

describe('a problem\'s names (issue 14 item 3 for problems)', () => {
  it('resolved through the same resolver as tickets; an unknown one is left out and said, never a dead letter', async () => {
    const directory: GlpiDirectory = {
      findByName: async (itemtype, name) => (itemtype === 'ITILCategory' && name === 'Monitoring > CPU' ? [14] : []),
      findAssets: async () => [],
    };
    const lines: { code?: string; name?: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as { code?: string }) });
    const resolver = new NameResolver(directory, { now: () => 0 }, logger, undefined, () => ({ ttlMs: 60_000, assets: { enabled: false, itemtypes: [], by: [], map: {} } }));
    const glpi = new MemoryProblems();
    const routed = problemRoutingDesk(glpi, resolver);
    await routed.createProblem({ name: '[zbx:g1] x', content: 'x', urgency: 3, impact: 3, entities_id: 0, itilcategories_id: 0, names: { itilcategories_id: 'Monitoring > CPU', entities_id: 'Nowhere' } });
    expect(glpi.problems[0]!.draft).toEqual({ name: '[zbx:g1] x', content: 'x', urgency: 3, impact: 3, entities_id: 0, itilcategories_id: 14 });
    expect(lines.find((l) => l.code === 'GLPI_NAME_UNKNOWN')).toMatchObject({ name: 'Nowhere', marker: '[zbx:g1]' });
  });
});

describe('a symptom ranked as cause: its ticket unlinked from its former cause\'s', () => {
  const spec: JobSpec = { type: 'unlink_ticket', cause: { fingerprint: 'host=core|trigger=#1', cycle: 2, eventId: '19' } };
  const job = (id: number): Job => ({ id, fingerprint: 'host=srv|trigger=#100', key: 'k', lane: 'glpi:k', cycle: 1, type: 'unlink_ticket', spec, status: 'running', attempts: 1, nextAttemptAt: 0, createdAt: 0 });
  const tickets = { ticketId: (ref: string | { key: string }, c: number) => (typeof ref === 'string' ? 70 + c : 50 + c) };
  const followups: string[] = [];
  const withFollowups: TicketDesk = { ...desk, addFollowup: async (_t, content) => { followups.push(content); return 1; }, followupContents: async () => [...followups] };

  it('removes the link where the API can; a retry finds none and is done', async () => {
    const glpi = new MemoryProblems();
    const links = new Set(['51-72']);
    glpi.unlinkTickets = async (a: number, b: number) => links.delete(`${a}-${b}`) || links.delete(`${b}-${a}`);
    const metrics = createMetrics({ processMetrics: false });
    const runner = new JobRunner(desk, tickets, { solutionTypeId: 0, problems: glpi, metrics });
    expect(await runner.run(job(1), { uncertain: false })).toEqual({ operation: 'ticket_unlinked', ticketId: 51 });
    expect(links.size).toBe(0);
    expect(await runner.run(job(1), { uncertain: true })).toEqual({ operation: 'ticket_unlinked', ticketId: 51 });
    const counted = (await metrics.registry.getSingleMetric('zgb_glpi_problems_total')!.get()).values;
    expect(counted).toEqual([{ labels: { operation: 'ticket_unlinked', trigger: 'symptom' }, value: 1 }]);
  });

  it('where the API cannot (no route) or GLPI refuses, a private follow-up says the link no longer holds, once', async () => {
    followups.length = 0;
    const runner = new JobRunner(withFollowups, tickets, { solutionTypeId: 0, problems: new MemoryProblems() });
    expect((await runner.run(job(2), { uncertain: false })).operation).toBe('ticket_unlink_noted');
    await runner.run(job(2), { uncertain: true });
    expect(followups).toHaveLength(1);
    expect(followups[0]).toMatch(/no longer a symptom of event 19 \(ticket #72\)\. the GLPI API in use cannot remove a link between tickets/);
    const refusing = new MemoryProblems();
    refusing.unlinkTickets = async () => {
      throw new RemoteError('permanent', 'ERROR_GLPI_DELETE', 'You don\'t have permission to perform this action.');
    };
    followups.length = 0;
    const strict = new JobRunner(withFollowups, tickets, { solutionTypeId: 0, problems: refusing });
    expect((await strict.run(job(3), { uncertain: false })).operation).toBe('ticket_unlink_noted');
    expect(followups[0]).toMatch(/GLPI refused to remove the link \(You don&#39;t have permission/);
  });
});
