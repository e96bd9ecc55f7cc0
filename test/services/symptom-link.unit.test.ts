/**
 * A symptom's link job against its cause's create (issue 14 item 1, the race of two lanes): the dispatcher on
 * the in-memory store with a clock that moves only when the test moves it, and a GLPI fake whose ticket
 * creates a test can hold. The link job waits while its cause's create is under way (back in the queue, nothing
 * sent, not a failure), and gives up at once when the cause will get no ticket. Through the built daemon:
 * test/integration/symptom-race.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { MemoryStore } from '../../src/adapters/store/memory/memory-store.js';
import type { JobSpec } from '../../src/core/decide.js';
import type { Job } from '../../src/core/ports.js';
import { BREAKER_GAUGE, decideRetry } from '../../src/core/retry-policy.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { Dispatcher } from '../../src/services/dispatcher.js';
import { JobRunner, LINK_LOOK_MAX_MS, LINK_LOOK_MIN_MS, LINK_WAIT_RUNS, NotYet, landingOf, linkLookDelay } from '../../src/services/job-runner.js';
import { createJob, DeskFake } from '../helpers/desk-fake.js';

const T = 1_800_000_000_000;

/** Tickets and their links as GLPI keeps them; a create can be held until the test lets it answer (test/helpers/desk-fake.ts). */
class Glpi extends DeskFake {}

const create = createJob;
const link: JobSpec = { type: 'link_ticket', cause: { fingerprint: 'cause', cycle: 1, eventId: '7001' } };

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
    recoveryFallback: [],
  });
  dispatcher.start();
}

/** The symptom's ticket made, and its link job queued behind it (as the processor queues them). */
function symptomWithLink(): { ticket: number; job: number } {
  const ticket = glpi.add('[zbx:symptom]');
  store.putTicket('symptom', 1, ticket, '[zbx:symptom]', now);
  return { ticket, job: store.enqueue('symptom', 1, link, now, now) };
}

const status = (id: number) => store.job(id)?.status;

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
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

describe('a symptom\'s link job while its cause\'s create is under way', () => {
  it('goes back to the queue (nothing sent, no failure counted, the breaker closed), looks again later, and links once the cause\'s ticket exists', async () => {
    const release = glpi.hold('[zbx:cause]');
    const cause = store.enqueue('cause', 1, create('[zbx:cause]'), now, now);
    const symptom = symptomWithLink();
    start();
    await until(() => glpi.calls.includes('create [zbx:cause]'), 'the cause\'s create in flight');
    await until(() => status(symptom.job) === 'pending' && store.job(symptom.job)!.attempts === 1, 'the link job back in the queue');
    expect(store.job(symptom.job)).toMatchObject({ nextAttemptAt: T + LINK_LOOK_MIN_MS });
    expect(store.job(symptom.job)!.lastError).toMatch(/^waiting for the ticket of its cause cause #1 \(event 7001\)/);
    expect(landingOf(store.job(symptom.job)!.lastError)).toBe(false);
    expect(glpi.calls.filter((c) => c.startsWith('link'))).toEqual([]);

    // Still under way at the next look: back again, twice as far ahead.
    await at(LINK_LOOK_MIN_MS);
    await until(() => status(symptom.job) === 'pending' && store.job(symptom.job)!.attempts === 2, 'the second look');
    expect(store.job(symptom.job)!.nextAttemptAt).toBe(T + LINK_LOOK_MIN_MS + 2 * LINK_LOOK_MIN_MS);

    release();
    await until(() => status(cause) === 'done', 'the cause\'s ticket');
    await at(3 * LINK_LOOK_MIN_MS);
    await until(() => status(symptom.job) === 'done', 'the link job done');
    expect(glpi.links).toEqual([[symptom.ticket, store.ticketId('cause', 1)]]);
    expect(await counted('jobRetries')).toBe(0);
    expect(await counted('deadLetters')).toBe(0);
    expect((await metrics.glpiCircuit.get()).values[0]?.value).toBe(BREAKER_GAUGE.closed);
    expect(logs.filter((l) => /its cause has no GLPI ticket/.test(l.msg))).toEqual([]);
  });

  it('a cause whose create is dead: the link job becomes a dead letter at once (not waited for), to be retried with it (symptom-revive.unit.test.ts)', async () => {
    const cause = store.enqueue('cause', 1, create('[zbx:cause]'), now, now);
    store.buryJob(cause, 'GLPI_PERMANENT ERROR_GLPI_ADD: bad category', now);
    const symptom = symptomWithLink();
    start();
    await until(() => status(symptom.job) === 'dead', 'the link job a dead letter');
    expect(store.job(symptom.job)!.attempts).toBe(1);
    expect(store.job(symptom.job)!.lastError).toMatch(/^GLPI_TICKET_MISSING: the ticket of its cause cause #1 \(event 7001\) was never created/);
    expect(glpi.links).toEqual([]);
    expect(glpi.calls).toEqual([]);
  });

  it('a cause with no create at all (held back and suppressed, or forgotten) gives up at once', async () => {
    const symptom = symptomWithLink();
    start();
    await until(() => status(symptom.job) === 'done', 'the link job done');
    expect(store.job(symptom.job)!.attempts).toBe(1);
    expect(glpi.links).toEqual([]);
  });

  it('a cause\'s create held back (hold-down) is waited for; cancelled (a flap), the link job gives up at its next look', async () => {
    // Due after the hold-down: queued, not run yet.
    const cause = store.enqueue('cause', 1, create('[zbx:cause]'), now + 60_000, now);
    const symptom = symptomWithLink();
    start();
    await until(() => status(symptom.job) === 'pending' && store.job(symptom.job)!.attempts === 1, 'the link job back in the queue');
    expect(store.cancelCycle('cause', 1, now)).toBe(1);
    expect(status(cause)).toBe('cancelled');
    await at(LINK_LOOK_MIN_MS);
    await until(() => status(symptom.job) === 'done', 'the link job done');
    expect(store.job(symptom.job)!.attempts).toBe(2);
    expect(glpi.links).toEqual([]);
    expect(await counted('jobRetries')).toBe(0);
  });
});

describe('the link job\'s wait, in the runner and the retry policy', () => {
  const job = (attempts: number): Job => ({ id: 9, fingerprint: 'symptom', key: 'k', lane: 'glpi:k', cycle: 1, type: 'link_ticket', spec: link, status: 'running', attempts, nextAttemptAt: 0, createdAt: 0 });
  const underWay = { ticketId: (i: unknown) => (i === 'cause' ? undefined : 42), cycleHasTicket: () => true, lastQueued: () => ({ id: 1, cycle: 1, spec: create('[zbx:cause]'), status: 'running' as const, attempts: 1 }) };

  it('says NotYet with a delay that doubles up to a cap, and gives up after LINK_WAIT_RUNS looks, logged as a warning', async () => {
    const lines: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as { level: number; msg: string }) });
    const g = new Glpi();
    const runner = new JobRunner(g, underWay, { solutionTypeId: 0, problems: g, logger });
    await expect(runner.run(job(1), { uncertain: false })).rejects.toBeInstanceOf(NotYet);
    await expect(runner.run(job(3), { uncertain: false })).rejects.toMatchObject({ retryInMs: 4 * LINK_LOOK_MIN_MS });
    expect([1, 2, 3, 10, 100, LINK_WAIT_RUNS].map(linkLookDelay)).toEqual([LINK_LOOK_MIN_MS, 2 * LINK_LOOK_MIN_MS, 4 * LINK_LOOK_MIN_MS, LINK_LOOK_MAX_MS, LINK_LOOK_MAX_MS, LINK_LOOK_MAX_MS]);
    expect(await runner.run(job(LINK_WAIT_RUNS), { uncertain: false })).toEqual({ operation: 'cause_without_ticket', ticketId: 42 });
    expect(lines.filter((l) => l.level === 40).map((l) => l.msg)).toEqual([`symptom: its cause's create is still not done after ${LINK_WAIT_RUNS} looks; not linked`]);
    expect(g.calls).toEqual([]);
  });

  it('not-sent with a wait: back in the queue that far ahead (or later, when GLPI asked to wait longer), not a failure', () => {
    const policy = { quickRetries: 2, quickMinDelayMs: 5, quickMaxDelayMs: 20, minDelayMs: 1_000, backoffCapMs: 60_000 };
    const ctx = { now: T, attempts: 7, glpi: true, quickRetriesLeft: 2, breakerRetryAt: 0, glpiNotBefore: 0 };
    expect(decideRetry({ kind: 'not-sent', waitMs: 500 }, ctx, policy)).toEqual({ do: 'retry-later', at: T + 500, failed: false, pauseDispatch: false });
    expect(decideRetry({ kind: 'not-sent', waitMs: 500 }, { ...ctx, glpiNotBefore: T + 2_000 }, policy)).toEqual({ do: 'retry-later', at: T + 2_000, failed: false, pauseDispatch: false });
  });
});
