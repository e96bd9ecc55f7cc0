/**
 * A problem group's job (problems.together, issue 14 item 1) against its members' creates in their own lanes:
 * the dispatcher on the in-memory store with a clock that moves only when the test moves it, and a GLPI fake
 * whose ticket creates a test can hold. While a member's create is under way the group's job goes back to the
 * queue having sent nothing — not a GLPI failure: no retry counted, no "GLPI request failed" logged, the circuit
 * breaker closed even when one failure would open it — and the Problem is made once the member's ticket exists.
 * A member whose create is dead is left out at once. (The symptom's link job waits the same way:
 * symptom-link.unit.test.ts.)
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { MemoryStore } from '../../src/adapters/store/memory/memory-store.js';
import type { JobSpec, ProblemSpec } from '../../src/core/decide.js';
import type { ProblemRef } from '../../src/core/ports.js';
import { RemoteError } from '../../src/core/remote-error.js';
import { BREAKER_GAUGE } from '../../src/core/retry-policy.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { Dispatcher } from '../../src/services/dispatcher.js';
import { LINK_LOOK_MIN_MS, landingOf } from '../../src/services/job-runner.js';
import { createJob, DeskFake } from '../helpers/desk-fake.js';

const T = 1_800_000_000_000;
const GROUP = 'group:by=host|host=srv|category=cpu';

/** Tickets, Problems and their links as GLPI keeps them (a link twice is refused); a create can be held until the test lets it answer. */
class Glpi extends DeskFake {
  readonly problems: { id: number; name: string }[] = [];
  readonly problemLinks = new Map<number, number[]>();

  override async findProblemsByMarker(marker: string): Promise<ProblemRef[]> {
    this.calls.push('find problems');
    return this.problems.filter((p) => p.name.includes(marker)).map((p) => ({ id: p.id, status: 1 }));
  }
  override async createProblem(p: ProblemSpec): Promise<number> {
    this.calls.push('create problem');
    const id = this.problems.length + 1;
    this.problems.push({ id, name: p.name });
    return id;
  }
  override async problemTickets(problemId: number): Promise<number[]> {
    return [...(this.problemLinks.get(problemId) ?? [])];
  }
  override async linkProblemTicket(problemId: number, ticketId: number): Promise<void> {
    const l = this.problemLinks.get(problemId) ?? [];
    if (l.includes(ticketId)) throw new RemoteError('permanent', 'ERROR_GLPI_ADD', 'GLPI answered 400 ERROR_GLPI_ADD: link exists', 400);
    this.problemLinks.set(problemId, [...l, ticketId]);
  }
}

const create = createJob;
const members = ['host=srv|trigger=#1', 'host=srv|trigger=#2', 'host=srv|trigger=#3'];
const groupSpec = (required: number): JobSpec => ({
  type: 'problem_group',
  marker: '[zbx:g0123]',
  problem: { name: '[zbx:g0123] 3 cpu incidents together on srv', content: 'x', urgency: 3, impact: 3, entities_id: 0, itilcategories_id: 0 },
  members: members.map((fingerprint) => ({ fingerprint, cycle: 1 })),
  required,
  lines: ['Fired together: High CPU'],
  delayMs: 0,
});

let now: number;
let store: MemoryStore;
let glpi: Glpi;
let dispatcher: Dispatcher | undefined;
let metrics: ReturnType<typeof createMetrics>;
let logs: { level: number; msg: string }[];
const clock = { now: () => now };

beforeEach(() => {
  now = T;
  store = new MemoryStore();
  glpi = new Glpi();
  metrics = createMetrics({ processMetrics: false });
  logs = [];
});

afterEach(async () => {
  await dispatcher?.stop(1_000);
  dispatcher = undefined;
});

/** The dispatcher as the daemon builds it, but without glpi.recovery_fallback: the job runner's logs and metrics must not depend on it. */
function start(): void {
  const logger = pino({ level: 'debug' }, { write: (l: string) => void logs.push(JSON.parse(l) as { level: number; msg: string }) });
  dispatcher = new Dispatcher(store, glpi, clock, logger, metrics, {
    concurrency: 4,
    quickRetries: 2,
    quickMinDelayMs: 1,
    quickMaxDelayMs: 10,
    minDelayMs: 1_000,
    backoffCapMs: 60_000,
    probeMaxDelayMs: 1_000,
    // One "down" failure would open the breaker: a wait must not count as one.
    breakerOpenAfter: 1,
    solutionTypeId: 0,
    problems: glpi,
  });
  dispatcher.start();
}

/** A member's ticket made already (its create done in its lane). */
function ticketed(fingerprint: string): number {
  const id = glpi.add(`[zbx:${fingerprint}]`);
  store.putTicket(fingerprint, 1, id, `[zbx:${fingerprint}]`, now);
  return id;
}

const status = (id: number) => store.job(id)?.status;

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}\n${JSON.stringify({ jobs: store.jobs('pending', 100).concat(store.jobs('running', 100)), logs }, null, 1)}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Move the clock and let the dispatcher look. */
async function at(ms: number): Promise<void> {
  now = T + ms;
  dispatcher?.wake();
  await new Promise((r) => setTimeout(r, 30));
}

const counted = async (name: 'jobRetries' | 'deadLetters') => (await metrics[name].get()).values.reduce((n, v) => n + v.value, 0);

describe('a problem group\'s job while a member\'s create is under way', () => {
  it('goes back to the queue (nothing sent, no failure counted or logged, the breaker closed), looks again later, and makes the Problem once the member\'s ticket exists', async () => {
    const first = ticketed(members[0]!);
    const third = ticketed(members[2]!);
    const release = glpi.hold(`[zbx:${members[1]}]`);
    const member = store.enqueue(members[1]!, 1, create(`[zbx:${members[1]}]`), now, now);
    const group = store.enqueue(GROUP, 0, groupSpec(3), now, now);
    start();
    await until(() => glpi.calls.includes(`create [zbx:${members[1]}]`), 'the member\'s create in flight');
    await until(() => status(group) === 'pending' && store.job(group)!.attempts === 1, 'the group\'s job back in the queue');
    expect(store.job(group)!.nextAttemptAt).toBe(T + LINK_LOOK_MIN_MS);
    expect(store.job(group)!.lastError).toMatch(/^problem group: waiting for the ticket of host=srv\|trigger=#2 #1: its create has not finished/);
    expect(landingOf(store.job(group)!.lastError)).toBe(false);

    // Still under way at the next look: back again, twice as far ahead.
    await at(LINK_LOOK_MIN_MS);
    await until(() => status(group) === 'pending' && store.job(group)!.attempts === 2, 'the second look');
    expect(store.job(group)!.nextAttemptAt).toBe(T + LINK_LOOK_MIN_MS + 2 * LINK_LOOK_MIN_MS);
    expect(glpi.calls.filter((c) => c.includes('problem'))).toEqual([]);

    release();
    await until(() => status(member) === 'done', 'the member\'s ticket');
    await at(3 * LINK_LOOK_MIN_MS);
    await until(() => status(group) === 'done', 'the group\'s job done');
    expect(glpi.problems).toHaveLength(1);
    expect(glpi.problemLinks.get(1)).toEqual([first, store.ticketId(members[1]!, 1), third]);

    expect(await counted('jobRetries')).toBe(0);
    expect(await counted('deadLetters')).toBe(0);
    expect((await metrics.glpiCircuit.get()).values[0]?.value).toBe(BREAKER_GAUGE.closed);
    expect(logs.filter((l) => /GLPI request failed|GLPI looks down/.test(l.msg))).toEqual([]);
    // The runner's own log lines (info at the first look, debug after) and metric, though glpi.recovery_fallback is not set.
    expect(logs.filter((l) => /problem group: a member's ticket is being created/.test(l.msg)).map((l) => l.level)).toEqual([30, 20]);
    expect((await metrics.problems.get()).values).toEqual(expect.arrayContaining([expect.objectContaining({ labels: { operation: 'created', trigger: 'together' }, value: 1 })]));
  });

  it('a member whose create is dead gets no ticket: left out at once, the Problem made with the others', async () => {
    const first = ticketed(members[0]!);
    const third = ticketed(members[2]!);
    const member = store.enqueue(members[1]!, 1, create(`[zbx:${members[1]}]`), now, now);
    store.buryJob(member, 'GLPI_PERMANENT ERROR_GLPI_ADD: bad category', now);
    const group = store.enqueue(GROUP, 0, groupSpec(2), now, now);
    start();
    await until(() => status(group) === 'done', 'the group\'s job done');
    expect(store.job(group)!.attempts).toBe(1);
    expect(glpi.problemLinks.get(1)).toEqual([first, third]);
    expect(await counted('jobRetries')).toBe(0);
  });
});
