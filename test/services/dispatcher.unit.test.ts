/**
 * The dispatcher's unit tests: the in-memory store (its contract with SQLite is test/contract/), a clock
 * that moves only when a test moves it, and a GLPI (TicketDesk) fake whose answers a test can fail or hold.
 * Every GLPI call is recorded with the clock's time, so "not sent before" is exact. The dispatcher on
 * SQLite, and against the GLPI fake server, is test/services/dispatcher.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { MemoryStore } from '../../src/adapters/store/memory/memory-store.js';
import type { JobSpec, TicketDraft } from '../../src/core/decide.js';
import type { EventAcknowledger, Job, ProblemDesk, TicketDesk } from '../../src/core/ports.js';
import { RemoteError } from '../../src/core/remote-error.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { Dispatcher, type DispatcherOptions } from '../../src/services/dispatcher.js';
import { jobTag, landingOf, withLanding } from '../../src/services/job-runner.js';

const T = 1_800_000_000_000;

type Op = 'findTicketByMarker' | 'createTicket' | 'addFollowup' | 'followupContents' | 'addSolution' | 'updateTicket' | 'ticketStatus' | 'hasMessage' | 'acknowledge';

interface Call {
  readonly op: Op;
  /** The clock's time when the request was sent. */
  readonly at: number;
  /** The ticket, marker or event the call is about. */
  readonly about: string;
}

class Deferred {
  resolve!: () => void;
  readonly promise = new Promise<void>((r) => (this.resolve = r));
}

interface Plan {
  readonly op: Op;
  readonly about?: string;
  readonly error?: RemoteError;
  readonly hold?: Deferred;
}

/**
 * GLPI and Zabbix as the dispatcher sees them: tickets with markers and follow-ups, acknowledged
 * events. A plan makes the next matching call fail, or hold its answer until the test lets it go.
 */
class World implements TicketDesk, EventAcknowledger {
  readonly tickets = new Map<number, { marker: string; status: number }>();
  readonly followups: { ticketId: number; content: string }[] = [];
  readonly acks: { eventIds: readonly string[]; message: string }[] = [];
  readonly calls: Call[] = [];
  #plans: Plan[] = [];
  #next = 100;
  /** Requests sent and not answered yet. */
  inFlight = 0;
  maxInFlight = 0;

  constructor(private readonly clock: { now(): number }) {}

  /** The next call of `op` (about this ticket, marker or event) fails with `error`. */
  failNext(op: Op, error: RemoteError, about?: string | number): void {
    this.#plans.push({ op, error, ...(about !== undefined ? { about: String(about) } : {}) });
  }

  /** The next call of `op` (about …) waits for the returned Deferred before it answers (and may then fail). */
  holdNext(op: Op, about?: string | number, error?: RemoteError): Deferred {
    const hold = new Deferred();
    this.#plans.push({ op, hold, ...(about !== undefined ? { about: String(about) } : {}), ...(error ? { error } : {}) });
    return hold;
  }

  sent(op: Op, about?: string | number): Call[] {
    return this.calls.filter((c) => c.op === op && (about === undefined || c.about === String(about)));
  }

  addTicket(marker: string, status = 2): number {
    const id = this.#next++;
    this.tickets.set(id, { marker, status });
    return id;
  }

  async #call(op: Op, about: string | number): Promise<void> {
    this.calls.push({ op, at: this.clock.now(), about: String(about) });
    const i = this.#plans.findIndex((p) => p.op === op && (p.about === undefined || p.about === String(about)));
    const plan = i >= 0 ? this.#plans.splice(i, 1)[0] : undefined;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await Promise.resolve();
      if (plan?.hold) await plan.hold.promise;
      if (plan?.error) throw plan.error;
    } finally {
      this.inFlight--;
    }
  }

  async findTicketByMarker(marker: string): Promise<number | undefined> {
    await this.#call('findTicketByMarker', marker);
    return [...this.tickets].find(([, t]) => t.marker === marker)?.[0];
  }

  async createTicket(t: TicketDraft): Promise<number> {
    await this.#call('createTicket', t.marker);
    return this.addTicket(t.marker, 1);
  }

  async addFollowup(ticketId: number, content: string): Promise<number> {
    await this.#call('addFollowup', ticketId);
    this.followups.push({ ticketId, content });
    return this.followups.length;
  }

  async followupContents(ticketId: number): Promise<string[]> {
    await this.#call('followupContents', ticketId);
    return this.followups.filter((f) => f.ticketId === ticketId).map((f) => f.content);
  }

  async addSolution(ticketId: number): Promise<'added' | 'already_solved' | 'already_closed'> {
    await this.#call('addSolution', ticketId);
    const t = this.tickets.get(ticketId)!;
    if (t.status >= 5) return t.status === 5 ? 'already_solved' : 'already_closed';
    t.status = 5;
    return 'added';
  }

  async updateTicket(ticketId: number, fields: Readonly<Record<string, unknown>>): Promise<void> {
    await this.#call('updateTicket', ticketId);
    if (typeof fields.status === 'number') this.tickets.get(ticketId)!.status = fields.status;
  }

  async ticketStatus(ticketId: number): Promise<number | undefined> {
    await this.#call('ticketStatus', ticketId);
    return this.tickets.get(ticketId)?.status;
  }

  ticketUrl(id: number): string {
    return `http://glpi.test/front/ticket.form.php?id=${id}`;
  }

  async acknowledge(eventIds: readonly string[], message: string): Promise<void> {
    await this.#call('acknowledge', eventIds[0] ?? '');
    this.acks.push({ eventIds, message });
  }

  async hasMessage(eventId: string, message: string): Promise<boolean> {
    await this.#call('hasMessage', eventId);
    return this.acks.some((a) => a.eventIds.includes(eventId) && a.message === message);
  }
}

// What GLPI's client throws (adapters/glpi/outcome.ts), and Zabbix's.
const tooMany = (seconds: number) => new RemoteError('retryable', 'HTTP_429', 'GLPI answered 429', 429, seconds * 1000, { outage: true, mayHaveLanded: false });
const down503 = () => new RemoteError('retryable', 'HTTP_503', 'GLPI answered 503', 503, undefined, { outage: true, mayHaveLanded: false });
const reset = () => new RemoteError('retryable', 'ECONNRESET', 'GLPI unreachable: socket hang up', undefined, undefined, { outage: false, mayHaveLanded: true });
const refused = () => new RemoteError('permanent', 'ERROR_GLPI_ADD', 'GLPI answered 400 ERROR_GLPI_ADD: bad category', 400, undefined, { mayHaveLanded: false });
const badLogin = () => new RemoteError('login', 'ERROR_GLPI_LOGIN_USER_TOKEN', 'GLPI answered 401 ERROR_GLPI_LOGIN_USER_TOKEN', 401, undefined, { mayHaveLanded: false });
const zabbix429 = (seconds: number) => new RemoteError('retryable', 'HTTP_429', 'Zabbix answered 429', 429, seconds * 1000, { outage: true, mayHaveLanded: false });

function draft(marker: string): TicketDraft {
  return { name: `${marker} High CPU`, content: 'body', marker, urgency: 3, impact: 3, type: 1, itilcategories_id: 0, entities_id: 0, requesttypes_id: 0, groups_id_assign: 0 };
}
const create = (marker: string, eventId?: string): JobSpec => ({ type: 'create_ticket', ticket: draft(marker), delayMs: 0, ...(eventId ? { eventId } : {}) });
const followup = (line: string): JobSpec => ({ type: 'followup', lines: [line], isPrivate: false });
const writeBack = (eventId: string): JobSpec => ({ type: 'zabbix_ack', eventIds: [eventId], message: '[glpi-bridge] GLPI ticket #1', acknowledge: false });

let now: number;
let store: MemoryStore;
let world: World;
let dispatcher: Dispatcher | undefined;
let closed: { job: Job; ticketId: number }[];

const clock = { now: () => now };

beforeEach(() => {
  now = T;
  store = new MemoryStore();
  world = new World(clock);
  closed = [];
});

afterEach(async () => {
  await dispatcher?.stop(1_000);
  dispatcher = undefined;
});

function start(over: Partial<DispatcherOptions> = {}): Dispatcher {
  dispatcher = new Dispatcher(store, world, clock, pino({ level: 'silent' }), createMetrics({ processMetrics: false }), {
    concurrency: 4,
    // Quick retries (in one run) take real time: keep them short; the durable queue runs on the test's clock.
    quickRetries: 0,
    quickMinDelayMs: 1,
    quickMaxDelayMs: 10,
    minDelayMs: 1_000,
    backoffCapMs: 60_000,
    probeMaxDelayMs: 1_000,
    solutionTypeId: 0,
    writeBack: { zabbix: world, prefix: '[glpi-bridge]', acknowledge: false },
    onTicketClosed: (job, ticketId) => closed.push({ job, ticketId }),
    ...over,
  });
  dispatcher.start();
  return dispatcher;
}

/** A job queued now for incident `fp` (its ticket, if given, recorded for cycle 1). */
function queue(fp: string, spec: JobSpec, ticket?: number): number {
  if (ticket !== undefined) store.putTicket(fp, 1, ticket, `[zbx:${fp}]`, now);
  return store.enqueue(fp, 1, spec, now, now);
}

const status = (id: number) => store.job(id)?.status;
/** Tried, and back in the queue. */
const backInQueue = (id: number) => status(id) === 'pending' && (store.job(id)?.attempts ?? 0) > 0;

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Let the dispatcher do what it does at this clock time (its timers run in real time; the clock does not move). */
async function settle(): Promise<void> {
  await new Promise((r) => setTimeout(r, 30));
  await until(() => (dispatcher?.inflight ?? 0) === 0 || world.inFlight > 0, 'the dispatcher settles');
}

/** Move the clock and let the dispatcher look. */
async function at(ms: number): Promise<void> {
  now = T + ms;
  dispatcher?.wake();
  await settle();
}

describe('GLPI\'s Retry-After holds the whole GLPI client, not only the job that got it', () => {
  it('two incidents: the first search gets 429 Retry-After: 2; the second incident\'s POST is not sent before then; both tickets made once', async () => {
    const searchB = world.holdNext('findTicketByMarker', '[zbx:b]');
    world.failNext('findTicketByMarker', tooMany(2), '[zbx:a]');
    const a = queue('a', create('[zbx:a]'));
    const b = queue('b', create('[zbx:b]'));
    start();
    await until(() => backInQueue(a), 'the 429 job back in the queue');
    // B's search was sent before the 429; it answers after it.
    searchB.resolve();
    await until(() => backInQueue(b), 'the second job held back');
    expect(world.sent('createTicket')).toHaveLength(0);
    expect(store.job(b)).toMatchObject({ nextAttemptAt: T + 2_000, lastError: withLanding('waiting for GLPI (Retry-After)', false) });
    expect(store.job(a)?.nextAttemptAt).toBe(T + 2_000);

    // A third incident queued meanwhile waits too.
    now = T + 500;
    const c = queue('c', followup('again'), world.addTicket('[zbx:c]'));
    await at(1_999);
    expect(world.calls.filter((call) => call.at > T)).toHaveLength(0);

    await at(2_000);
    await until(() => [a, b, c].every((id) => status(id) === 'done'), 'all done');
    expect(world.calls.filter((call) => call.at > T).every((call) => call.at >= T + 2_000)).toBe(true);
    expect([...world.tickets.values()].map((t) => t.marker).sort()).toEqual(['[zbx:a]', '[zbx:b]', '[zbx:c]']);
    // B searched once (its search answered): its POST went without searching again.
    expect([world.sent('findTicketByMarker', '[zbx:b]').length, world.sent('createTicket').length]).toEqual([1, 2]);
    expect(world.followups).toHaveLength(1);
  });

  it('an answer to another job\'s request closes the circuit breaker, but does not cut the wait short', async () => {
    const t1 = world.addTicket('[zbx:a]');
    const t2 = world.addTicket('[zbx:b]');
    const second = world.holdNext('addFollowup', t2);
    world.failNext('addFollowup', tooMany(2), t1);
    const a = queue('a', followup('one'), t1);
    const b = queue('b', followup('two'), t2);
    start();
    await until(() => backInQueue(a), 'the 429 job back in the queue');
    second.resolve();
    await until(() => status(b) === 'done', 'the other job done (GLPI answered it)');
    expect(dispatcher!.circuit).toBe('closed');

    const t3 = world.addTicket('[zbx:c]');
    const c = queue('c', followup('three'), t3);
    await at(1_000);
    expect(status(c)).toBe('pending');
    expect(world.sent('addFollowup')).toHaveLength(2);
    await at(2_000);
    await until(() => status(a) === 'done' && status(c) === 'done', 'both done');
    expect(world.sent('addFollowup').slice(2).every((call) => call.at === T + 2_000)).toBe(true);
    expect(world.followups.map((f) => f.ticketId).sort()).toEqual([t1, t2, t3].sort());
  });

  it('a request held back mid-run (the search answered, the POST waits) counts no failure and sends no second search', async () => {
    const searchB = world.holdNext('findTicketByMarker', '[zbx:b]');
    world.failNext('findTicketByMarker', tooMany(1), '[zbx:a]');
    const a = queue('a', create('[zbx:a]'));
    const b = queue('b', create('[zbx:b]'));
    const metrics = createMetrics({ processMetrics: false });
    dispatcher = new Dispatcher(store, world, clock, pino({ level: 'silent' }), metrics, { concurrency: 4, quickRetries: 0, quickMinDelayMs: 1, quickMaxDelayMs: 10, minDelayMs: 1_000, backoffCapMs: 60_000, solutionTypeId: 0 });
    dispatcher.start();
    await until(() => backInQueue(a), 'the 429 job back in the queue');
    searchB.resolve();
    await until(() => backInQueue(b), 'the second job held back');
    // One retry counted: the 429 itself; the held job is not a failure.
    expect((await metrics.jobRetries.get()).values.map((v) => v.value)).toEqual([1]);
    expect(landingOf(store.job(b)?.lastError)).toBe(false);
    await at(1_000);
    await until(() => status(a) === 'done' && status(b) === 'done', 'both done');
    expect(world.sent('findTicketByMarker', '[zbx:b]')).toHaveLength(1);
    expect(world.tickets.size).toBe(2);
  });

  it('a problem or link request is a GLPI request too: its 429 Retry-After holds the other incidents\' tickets', async () => {
    // GLPI answers the symptom's link lookup 429 Retry-After: 2 (Ticket_Ticket is GLPI, like Ticket).
    const links: { linked: number[][]; calls: number } = { linked: [], calls: 0 };
    const problems: ProblemDesk = {
      findProblemsByMarker: () => Promise.resolve([]),
      createProblem: () => Promise.resolve(1),
      problemTickets: () => Promise.resolve([]),
      linkProblemTicket: () => Promise.resolve(),
      addProblemFollowup: () => Promise.resolve(),
      problemFollowupContents: () => Promise.resolve([]),
      linkedTickets: () => (links.calls++ === 0 ? Promise.reject(tooMany(2)) : Promise.resolve([])),
      linkTickets: (a, b) => {
        links.linked.push([a, b]);
        return Promise.resolve();
      },
    };
    store.putTicket('cause', 1, world.addTicket('[zbx:cause]'), '[zbx:cause]', now);
    // Another incident's create is in flight: its search is sent before the 429 and answers after it.
    const searchB = world.holdNext('findTicketByMarker', '[zbx:b]');
    const b = queue('b', create('[zbx:b]'));
    start({ problems });
    await until(() => world.sent('findTicketByMarker', '[zbx:b]').length === 1, 'the other incident\'s search in flight');
    const link = queue('symptom', { type: 'link_ticket', cause: { fingerprint: 'cause', cycle: 1, eventId: '7001' } }, world.addTicket('[zbx:symptom]'));
    dispatcher?.wake();
    await until(() => backInQueue(link), 'the 429 link job back in the queue');
    searchB.resolve();
    // Its POST is not sent before Retry-After is over: the link's 429 held the whole GLPI client.
    await until(() => backInQueue(b), 'the other incident\'s create held back');
    expect(world.sent('createTicket')).toHaveLength(0);
    expect(store.job(b)).toMatchObject({ nextAttemptAt: T + 2_000, lastError: withLanding('waiting for GLPI (Retry-After)', false) });

    await at(2_000);
    await until(() => status(link) === 'done' && status(b) === 'done', 'both done after the wait');
    expect(links.linked).toHaveLength(1);
    expect(world.calls.filter((c) => c.op === 'createTicket').every((c) => c.at >= T + 2_000)).toBe(true);
  });

  it('Zabbix is another server: a write-back in flight is not held by GLPI\'s Retry-After, and Zabbix\'s own Retry-After holds no GLPI job', async () => {
    const t1 = world.addTicket('[zbx:a]');
    // The write-back's earlier try may have landed: it asks Zabbix first (held), then acknowledges.
    const ask = world.holdNext('hasMessage', '9001');
    world.failNext('addFollowup', tooMany(2), t1);
    const w = queue('w', writeBack('9001'));
    store.rescheduleJob(w, now, withLanding('ECONNABORTED: timeout', true), now);
    const a = queue('a', followup('one'), t1);
    start();
    await until(() => backInQueue(a), 'the GLPI job back in the queue');
    ask.resolve();
    await until(() => status(w) === 'done', 'the write-back done');
    expect(world.sent('acknowledge', '9001')[0]?.at).toBe(T);

    // Zabbix answers 429 Retry-After: 60 to a write-back; GLPI work goes on as soon as GLPI's own wait is over.
    world.failNext('acknowledge', zabbix429(60), '9002');
    const w2 = queue('w2', writeBack('9002'));
    await at(2_000);
    await until(() => status(a) === 'done' && backInQueue(w2), 'GLPI job done, write-back waiting');
    expect(store.job(w2)?.nextAttemptAt).toBe(T + 2_000 + 60_000);
    const b = queue('b', followup('two'), world.addTicket('[zbx:b]'));
    await at(2_001);
    await until(() => status(b) === 'done', 'a GLPI job queued during Zabbix\'s wait');
  });
});

describe('which job runs when', () => {
  it('jobs of one incident run one at a time, in order; incidents run in parallel up to the cap', async () => {
    const holds = [0, 1, 2, 3, 4, 5].map((i) => world.holdNext('addFollowup', 100 + i));
    const first: number[] = [];
    for (let i = 0; i < 6; i++) first.push(queue(`fp-${i}`, followup(`first ${i}`), world.addTicket(`[zbx:${i}]`)));
    const next = queue('fp-0', followup('second 0'));
    start({ concurrency: 2 });
    await until(() => world.inFlight === 2, 'two requests in flight');
    await settle();
    expect(world.inFlight).toBe(2);
    for (const h of holds) h.resolve();
    await until(() => [...first, next].every((id) => status(id) === 'done'), 'all done');
    expect(world.maxInFlight).toBe(2);
    const onTicket0 = world.followups.filter((f) => f.ticketId === 100).map((f) => f.content.split('<br>')[0]);
    expect(onTicket0).toEqual(['first 0', 'second 0']);
  });

  it('a failure goes back to the queue with backoff (±20 %), and runs again when due, not before', async () => {
    const t1 = world.addTicket('[zbx:a]');
    world.failNext('addFollowup', reset(), t1);
    const a = queue('a', followup('one'), t1);
    start();
    await until(() => backInQueue(a), 'rescheduled');
    const due = store.job(a)!.nextAttemptAt - T;
    expect(due).toBeGreaterThanOrEqual(800);
    expect(due).toBeLessThanOrEqual(1_200);
    // The reset may have landed: the retry reads the ticket's follow-ups first.
    expect(landingOf(store.job(a)?.lastError)).toBe(true);
    await at(due - 1);
    expect(world.sent('addFollowup')).toHaveLength(1);
    await at(due);
    await until(() => status(a) === 'done', 'done');
    expect(world.sent('followupContents')).toHaveLength(1);
    expect(world.followups).toHaveLength(1);
  });

  it('GLPI down: nothing starts until the probe time, then one probe only, then everything', async () => {
    const tickets = [0, 1, 2].map((i) => world.addTicket(`[zbx:${i}]`));
    world.failNext('addFollowup', down503(), tickets[0]);
    const first = queue('fp-0', followup('zero'), tickets[0]);
    // The first probe goes 500 ms (±20 %) after GLPI went down (here one failure says it is).
    start({ quickMinDelayMs: 500, breakerOpenAfter: 1 });
    await until(() => backInQueue(first), 'back in the queue');
    expect(dispatcher!.circuit).toBe('open');
    const others = [1, 2].map((i) => queue(`fp-${i}`, followup(`n ${i}`), tickets[i]));
    await at(399);
    expect(world.calls).toHaveLength(1);
    // The probe is whichever job is due first.
    const probe = world.holdNext('addFollowup');
    await at(600);
    await until(() => world.inFlight === 1, 'the probe in flight');
    await settle();
    expect([dispatcher!.circuit, dispatcher!.inflight]).toEqual(['half_open', 1]);
    probe.resolve();
    await at(600);
    await until(() => [first, ...others].every((id) => status(id) === 'done'), 'all done');
    expect(dispatcher!.circuit).toBe('closed');
    expect(world.calls).toHaveLength(4);
  });

  it('a GLPI that fails a request now and then is not down: the breaker opens after three failures in a row, an answer between resets the count', async () => {
    const tickets = [0, 1, 2, 3, 4, 5].map((i) => world.addTicket(`[zbx:${i}]`));
    for (const i of [0, 1]) world.failNext('addFollowup', down503(), tickets[i]);
    start({ concurrency: 1 });
    const [a, b] = [0, 1].map((i) => queue(`fp-${i}`, followup(`n ${i}`), tickets[i]));
    await until(() => backInQueue(a!) && backInQueue(b!), 'both back in the queue');
    expect(dispatcher!.circuit).toBe('closed');
    const c = queue('fp-2', followup('n 2'), tickets[2]);
    await until(() => status(c) === 'done', 'an answer');
    for (const i of [3, 4, 5]) world.failNext('addFollowup', down503(), tickets[i]);
    const rest = [3, 4, 5].map((i) => queue(`fp-${i}`, followup(`n ${i}`), tickets[i]));
    await until(() => rest.every((id) => backInQueue(id)), 'three failures in a row');
    expect(dispatcher!.circuit).toBe('open');
  });

  it('a refused login pauses all dispatch (write-backs too) for 30 s', async () => {
    const t1 = world.addTicket('[zbx:a]');
    world.failNext('addFollowup', badLogin(), t1);
    const a = queue('a', followup('one'), t1);
    start({ concurrency: 1 });
    await until(() => backInQueue(a), 'back in the queue');
    expect(dispatcher!.pausedUntil).toBe(T + 30_000);
    const w = queue('w', writeBack('9001'));
    await at(29_999);
    expect(status(w)).toBe('pending');
    await at(30_000);
    await until(() => status(a) === 'done' && status(w) === 'done', 'both done');
  });

  it('dead letters: GLPI\'s refusal with its reason, and a job whose incident has no ticket', async () => {
    world.failNext('createTicket', refused());
    const a = queue('a', create('[zbx:a]'));
    const b = queue('b', followup('no ticket'));
    start();
    await until(() => status(a) === 'dead' && status(b) === 'dead', 'dead letters');
    expect(store.job(a)?.lastError).toBe(withLanding('GLPI_PERMANENT ERROR_GLPI_ADD: GLPI answered 400 ERROR_GLPI_ADD: bad category', false));
    expect(store.job(b)?.lastError).toMatch(/^GLPI_TICKET_MISSING: incident .* #1 has no GLPI ticket/);
  });

  it('a create records its ticket and queues the write-back with it; the write-back runs in its own lane', async () => {
    const a = queue('a', create('[zbx:a]', '9001'));
    start();
    await until(() => store.jobs('done').length === 2, 'create and write-back done');
    const ticket = store.ticketId('a', 1);
    expect(ticket).toBe([...world.tickets.keys()][0]);
    expect(world.acks).toEqual([{ eventIds: ['9001'], message: `[glpi-bridge] GLPI ticket #${ticket}: ${world.ticketUrl(ticket!)}` }]);
    const wb = store.jobs('done').find((j) => j.id !== a)!;
    expect(wb.type).toBe('zabbix_ack');
    expect(wb.lane).toBe(store.job(a)!.lane.replace(/^glpi:/, 'zabbix:'));
  });

  it('a claim committed without a flush (SQLite): its job is sent only once the claim is on disk; a flush that fails sends nothing and queues the job again', async () => {
    const flushes: Deferred[] = [];
    const failures: Error[] = [];
    const flushed = Object.assign(store, {
      claimsOnDisk: () => {
        const d = new Deferred();
        flushes.push(d);
        return d.promise.then(() => {
          const e = failures.shift();
          if (e) throw e;
        });
      },
    });
    expect(flushed).toBe(store);
    const a = queue('a', followup('one'), 41);
    start();
    await until(() => flushes.length === 1, 'the claim asks for its flush');
    await new Promise((r) => setTimeout(r, 50));
    expect(status(a)).toBe('running');
    expect(world.calls).toEqual([]); // claimed, not on disk: nothing sent
    flushes[0]!.resolve();
    await until(() => status(a) === 'done', 'the job runs once its claim is on disk');
    expect(world.sent('addFollowup', 41)).toHaveLength(1);

    failures.push(new Error('EIO: i/o error, fdatasync'));
    const b = queue('b', followup('two'), 42);
    dispatcher!.wake();
    await until(() => flushes.length === 2, 'the second claim asks for its flush');
    flushes[1]!.resolve();
    await until(() => backInQueue(b), 'the job whose claim was not flushed is queued again');
    expect(world.sent('addFollowup', 42)).toEqual([]);
    expect(store.job(b)?.lastError).toMatch(/claim not on disk: EIO/);
    expect(landingOf(store.job(b)?.lastError)).toBe(false);
  });

  it('a ticket found closed completes the job and hands the incident over', async () => {
    const t1 = world.addTicket('[zbx:a]', 6);
    world.failNext('addFollowup', new RemoteError('permanent', 'ERROR_GLPI_ADD', 'Keine Berechtigung', 400, undefined, { mayHaveLanded: false }), t1);
    const a = queue('a', followup('again'), t1);
    start();
    await until(() => closed.length === 1, 'hand-over');
    expect(status(a)).toBe('done');
    expect(closed[0]).toMatchObject({ ticketId: t1, job: { id: a } });
  });

  it('start: a job left running by the previous run checks GLPI for its tag before sending again', async () => {
    const t1 = world.addTicket('[zbx:a]');
    const a = queue('a', followup('one'), t1);
    // The previous run claimed it and its follow-up landed; then the process died.
    expect(store.claimReady(now, 1, new Set())).toHaveLength(1);
    world.followups.push({ ticketId: t1, content: `one<br>\n<small>${jobTag(a)}</small>` });
    start();
    await until(() => status(a) === 'done', 'done');
    expect(world.sent('followupContents')).toHaveLength(1);
    expect(world.sent('addFollowup')).toHaveLength(0);
    expect(world.followups).toHaveLength(1);
  });

  it('stop: nothing more is claimed; a job still in flight is reported and left for the next start', async () => {
    const t1 = world.addTicket('[zbx:a]');
    const hold = world.holdNext('addFollowup', t1);
    const a = queue('a', followup('one'), t1);
    const d = start();
    await until(() => world.inFlight === 1, 'in flight');
    expect(await d.stop(20)).toBe(1);
    const b = queue('b', followup('two'), world.addTicket('[zbx:b]'));
    d.wake();
    await settle();
    expect(status(b)).toBe('pending');
    hold.resolve();
    await until(() => status(a) === 'done', 'the job in flight ends');
    dispatcher = undefined;
  });
});
