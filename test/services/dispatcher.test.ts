import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { systemClock } from '../../src/adapters/clock.js';
import { RemoteError } from '../../src/core/remote-error.js';
import { SqliteStore } from '../../src/adapters/store/sqlite/index.js';
import type { Job } from '../../src/core/ports.js';
import type { JobSpec, TicketDraft } from '../../src/core/decide.js';
import { fingerprintKey } from '../../src/core/fingerprint.js';
import type { TicketDesk } from '../../src/core/ports.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { BREAKER_GAUGE } from '../../src/core/retry-policy.js';
import { Dispatcher } from '../../src/services/dispatcher.js';
import { jobTag, landingOf, withLanding } from '../../src/services/job-runner.js';
import { nodeDigests } from '../../src/adapters/digests.js';
import { GlpiClient } from '../../src/adapters/glpi/client.js';
import { Secret } from '../../src/config/secret.js';
import { FakeGlpi } from '../../src/glpi-fake/server.js';

/**
 * The dispatcher against a ticket desk fake that keeps tickets and
 * follow-ups and can be made to fail like GLPI does, on a real SQLite queue.
 * End states are checked (tickets, follow-ups, job status), and requests
 * are counted against bounds that follow from the design, never timed.
 */

interface FakeTicket {
  id: number;
  marker: string;
  status: number;
  /** Written by the bridge's own GLPI user. */
  mine: boolean;
}

type Op = 'findTicketByMarker' | 'createTicket' | 'addFollowup' | 'followupContents' | 'addSolution' | 'updateTicket' | 'ticketStatus';

class DeskFake implements TicketDesk {
  readonly tickets = new Map<number, FakeTicket>();
  readonly followups: { ticketId: number; content: string }[] = [];
  readonly solutions: number[] = [];
  readonly calls: { op: Op; ticketId?: number; failed: boolean }[] = [];
  /** Every call of these operations (all when undefined) fails with `failure`. */
  failure: RemoteError | undefined;
  failing: ReadonlySet<Op> | undefined;
  /** Apply the next follow-up, then fail with this (the answer is lost). */
  loseNextFollowupAnswer: RemoteError | undefined;
  #next = 100;

  add(t: Omit<FakeTicket, 'id'> & { id?: number }): number {
    const id = t.id ?? this.#next++;
    this.tickets.set(id, { ...t, id });
    return id;
  }

  count(op: Op, failed?: boolean): number {
    return this.calls.filter((c) => c.op === op && (failed === undefined || c.failed === failed)).length;
  }

  #call(op: Op, ticketId?: number): void {
    const fails = this.failure !== undefined && (this.failing === undefined || this.failing.has(op));
    this.calls.push({ op, ...(ticketId !== undefined ? { ticketId } : {}), failed: fails });
    if (fails) throw this.failure;
  }

  async findTicketByMarker(marker: string): Promise<number | undefined> {
    this.#call('findTicketByMarker');
    return [...this.tickets.values()].find((t) => t.marker === marker && t.mine)?.id;
  }

  async createTicket(t: TicketDraft): Promise<number> {
    this.#call('createTicket');
    return this.add({ marker: t.marker, status: 1, mine: true });
  }

  async addFollowup(ticketId: number, content: string): Promise<number> {
    this.#call('addFollowup', ticketId);
    const t = this.tickets.get(ticketId);
    // GLPI refuses follow-ups on a closed ticket, with a translated rights message.
    if (!t || t.status === 6) throw new RemoteError('permanent', 'ERROR_GLPI_ADD', "GLPI answered 400 ERROR_GLPI_ADD: Vous n'avez pas les droits requis pour réaliser cette action.", 400, undefined, { mayHaveLanded: false });
    this.followups.push({ ticketId, content });
    const lost = this.loseNextFollowupAnswer;
    this.loseNextFollowupAnswer = undefined;
    if (lost) throw lost;
    return this.followups.length;
  }

  async followupContents(ticketId: number): Promise<string[]> {
    this.#call('followupContents', ticketId);
    return this.followups.filter((f) => f.ticketId === ticketId).map((f) => f.content);
  }

  async addSolution(ticketId: number): Promise<'added' | 'already_solved' | 'already_closed'> {
    this.#call('addSolution', ticketId);
    const t = this.tickets.get(ticketId)!;
    if (t.status === 5) return 'already_solved';
    if (t.status === 6) return 'already_closed';
    t.status = 5;
    this.solutions.push(ticketId);
    return 'added';
  }

  async updateTicket(ticketId: number, fields: Readonly<Record<string, unknown>>): Promise<void> {
    this.#call('updateTicket', ticketId);
    const t = this.tickets.get(ticketId)!;
    if (t.status === 6) throw new RemoteError('permanent', 'ERROR_GLPI_UPDATE', 'GLPI answered 400 ERROR_GLPI_UPDATE: Keine Berechtigung', 400, undefined, { mayHaveLanded: false });
    if (typeof fields.status === 'number') t.status = fields.status;
  }

  async ticketStatus(ticketId: number): Promise<number | undefined> {
    this.#call('ticketStatus', ticketId);
    return this.tickets.get(ticketId)?.status;
  }

  ticketUrl(id: number): string {
    return `http://glpi.test/front/ticket.form.php?id=${id}`;
  }
}

const down503 = () => new RemoteError('retryable', 'HTTP_503', 'GLPI answered 503: Service Unavailable', 503, undefined, { outage: true, mayHaveLanded: false });
const timedOut = () => new RemoteError('retryable', 'ECONNABORTED', 'GLPI unreachable: timeout of 1000ms exceeded', undefined, undefined, { outage: true, mayHaveLanded: true });

function draft(marker: string): TicketDraft {
  return { name: `${marker} High CPU`, content: 'body', marker, urgency: 3, impact: 3, type: 1, itilcategories_id: 0, entities_id: 0, requesttypes_id: 0, groups_id_assign: 0 };
}
const create = (marker: string): JobSpec => ({ type: 'create_ticket', ticket: draft(marker), delayMs: 0 });
const followup = (line: string): JobSpec => ({ type: 'followup', lines: [line], isPrivate: false });

async function waitFor(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

let store: SqliteStore;
let desk: DeskFake;
let dispatcher: Dispatcher | undefined;
let closed: { job: Job; ticketId: number }[];
let breakerLog: Record<string, unknown>[];
let metrics: ReturnType<typeof createMetrics>;

beforeEach(() => {
  store = new SqliteStore(join(mkdtempSync(join(tmpdir(), 'zgb-dispatch-')), 'bridge.db'));
  desk = new DeskFake();
  closed = [];
  breakerLog = [];
  metrics = createMetrics({ processMetrics: false });
});

afterEach(async () => {
  await dispatcher?.stop(5_000);
  dispatcher = undefined;
  store.close();
});

function startDispatcher(concurrency = 4, glpi: TicketDesk = desk, intakeBusy?: () => boolean): Dispatcher {
  const logger = pino({ level: 'debug' }, { write: (line: string) => void breakerLog.push(JSON.parse(line) as Record<string, unknown>) });
  dispatcher = new Dispatcher(store, glpi, systemClock, logger, metrics, {
    concurrency,
    quickRetries: 2,
    quickMinDelayMs: 5,
    quickMaxDelayMs: 20,
    minDelayMs: 5,
    backoffCapMs: 40,
    solutionTypeId: 0,
    onTicketClosed: (job, ticketId) => closed.push({ job, ticketId }),
    ...(intakeBusy ? { intakeBusy } : {}),
  });
  dispatcher.start();
  return dispatcher;
}

function enqueue(fingerprint: string, spec: JobSpec, cycle = 1): number {
  const now = Date.now();
  return store.enqueue(fingerprint, cycle, spec, now, now);
}

const status = (id: number) => store.job(id)?.status;
const allDone = (ids: readonly number[]) => () => ids.every((id) => status(id) === 'done');
const probes = () => breakerLog.filter((l) => l.msg === 'GLPI circuit breaker' && l.state === 'half_open').length;

describe('creates are idempotent by construction', () => {
  it('a create whose marker is already in GLPI (written by the bridge) adopts that ticket, even on its first attempt', async () => {
    const existing = desk.add({ marker: '[zbx:aa]', status: 2, mine: true });
    const id = enqueue('fp-a', create('[zbx:aa]'));
    expect(store.job(id)?.attempts).toBe(0);
    startDispatcher();
    await waitFor(allDone([id]), 'create done');
    expect(store.job(id)?.attempts).toBe(1);
    expect(store.ticketId('fp-a', 1)).toBe(existing);
    expect(desk.count('createTicket')).toBe(0);
    expect(desk.tickets.size).toBe(1);
  });

  it('a new ticket costs one search and one POST', async () => {
    const id = enqueue('fp-a', create('[zbx:aa]'));
    startDispatcher();
    await waitFor(allDone([id]), 'create done');
    expect([desk.count('findTicketByMarker'), desk.count('createTicket')]).toEqual([1, 1]);
    expect(store.ticketId('fp-a', 1)).toBe([...desk.tickets.keys()][0]);
  });

  it('searches once per job, not once per attempt, while its POST fails without landing', async () => {
    desk.failure = down503();
    desk.failing = new Set(['createTicket']);
    const id = enqueue('fp-a', create('[zbx:aa]'));
    startDispatcher();
    await waitFor(() => desk.count('createTicket', true) >= 4, 'several failed POSTs');
    desk.failure = undefined;
    await waitFor(allDone([id]), 'create done');
    expect(desk.count('findTicketByMarker')).toBe(1);
    expect(desk.tickets.size).toBe(1);
  });
});

describe('while Zabbix queues on the intake (issue 16)', () => {
  /** The desk, each call held 20 ms, counting the calls in flight at once. */
  function slowDesk(): { desk: TicketDesk; most: () => number } {
    let now = 0;
    let most = 0;
    const slow = new Proxy(desk, {
      get(target, key) {
        const v: unknown = Reflect.get(target, key);
        if (typeof v !== 'function' || key === 'ticketUrl') return v;
        return async (...args: unknown[]) => {
          most = Math.max(most, ++now);
          try {
            await new Promise((r) => setTimeout(r, 20));
            return await (v as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          } finally {
            now--;
          }
        };
      },
    });
    return { desk: slow, most: () => most };
  }

  const creates = () => Array.from({ length: 8 }, (_, i) => enqueue(`fp-${i}`, create(`[zbx:b${i}]`)));

  it.each([
    ['busy: GLPI jobs run one at a time, and all of them', true, 1],
    ['calm: as many at once as glpi.max_concurrency allows', false, 4],
  ])('intake %s', async (_, busy, most) => {
    const ids = creates();
    const slow = slowDesk();
    startDispatcher(4, slow.desk, () => busy);
    await waitFor(allDone(ids), 'every create done');
    expect(slow.most()).toBe(most);
    expect(desk.tickets.size).toBe(8);
  });
});

describe('a ticket closed in GLPI', () => {
  it.each([
    ['followup', followup('again')],
    ['update_ticket', { type: 'update_ticket', urgency: 5, impact: 5, lines: ['worse'], isPrivate: false } as JobSpec],
    ['reopen', { type: 'reopen', lines: ['back'] } as JobSpec],
  ])('%s: recognised from its status after GLPI\'s (translated) refusal; the job completes and the incident is handed over', async (_type, spec) => {
    const ticket = desk.add({ marker: '[zbx:aa]', status: 6, mine: true });
    store.putTicket('fp-a', 1, ticket, '[zbx:aa]', Date.now());
    const id = enqueue('fp-a', spec);
    startDispatcher();
    await waitFor(() => closed.length === 1, 'hand-over');
    await waitFor(allDone([id]), 'job done');
    expect(closed[0]).toMatchObject({ ticketId: ticket, job: { id, type: spec.type, key: fingerprintKey('fp-a', nodeDigests), cycle: 1 } });
    expect(store.jobs('dead')).toHaveLength(0);
    expect(desk.followups).toHaveLength(0);
  });

  it('solve: a closed ticket counts as done (no solution, no hand-over)', async () => {
    const ticket = desk.add({ marker: '[zbx:aa]', status: 6, mine: true });
    store.putTicket('fp-a', 1, ticket, '[zbx:aa]', Date.now());
    const id = enqueue('fp-a', { type: 'solve', mode: 'solve', lines: ['recovered'] });
    startDispatcher();
    await waitFor(allDone([id]), 'job done');
    expect(desk.solutions).toHaveLength(0);
    expect(closed).toHaveLength(0);
  });

  it('a refusal on a ticket that is not closed stays a dead letter', async () => {
    const ticket = desk.add({ marker: '[zbx:aa]', status: 2, mine: true });
    store.putTicket('fp-a', 1, ticket, '[zbx:aa]', Date.now());
    desk.failure = new RemoteError('permanent', 'ERROR_GLPI_ADD', 'refused', 400, undefined, { mayHaveLanded: false });
    desk.failing = new Set(['addFollowup']);
    const id = enqueue('fp-a', followup('again'));
    startDispatcher();
    await waitFor(() => status(id) === 'dead', 'dead letter');
    expect(closed).toHaveLength(0);
  });
});

describe('quiet during a GLPI outage', () => {
  /** n incidents with a ticket each and one follow-up queued. */
  function followups(n: number): { ids: number[]; tickets: number[] } {
    const ids: number[] = [];
    const tickets: number[] = [];
    for (let i = 0; i < n; i++) {
      const ticket = desk.add({ marker: `[zbx:${i}]`, status: 2, mine: true });
      store.putTicket(`fp-${i}`, 1, ticket, `[zbx:${i}]`, Date.now());
      tickets.push(ticket);
      ids.push(enqueue(`fp-${i}`, followup(`again ${i}`)));
    }
    return { ids, tickets };
  }

  it('one probe at a time while GLPI is down; no follow-up list read for attempts that never reached GLPI', async () => {
    const { ids, tickets } = followups(12);
    desk.failure = down503();
    startDispatcher(4);
    await waitFor(() => probes() >= 5, 'five probes');
    expect(dispatcher!.circuit).not.toBe('closed');
    const duringOutage = desk.calls.length;
    const probesSent = probes();
    desk.failure = undefined;
    await waitFor(allDone(ids), 'all follow-ups', 15_000);
    // The first wave (at most `concurrency` jobs in flight) and then one request per probe.
    expect(duringOutage).toBeLessThanOrEqual(4 + probesSent);
    expect(desk.count('followupContents')).toBe(0);
    expect(tickets.map((t) => desk.followups.filter((f) => f.ticketId === t).length)).toEqual(tickets.map(() => 1));
    expect(dispatcher!.circuit).toBe('closed');
    expect((await metrics.glpiCircuit.get()).values[0]?.value).toBe(BREAKER_GAUGE.closed);
    const opened = breakerLog.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('GLPI looks down'));
    const reclosed = breakerLog.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('GLPI answers again'));
    expect([opened.length, reclosed.length]).toEqual([1, 1]);
  });

  it('an attempt that may have landed (timeout) makes its job read GLPI once when it answers again, not once per attempt', async () => {
    const { ids, tickets } = followups(6);
    desk.failure = timedOut();
    startDispatcher(4);
    await waitFor(() => probes() >= 6, 'six probes');
    const attempted = new Set(desk.calls.filter((c) => c.op === 'addFollowup').map((c) => c.ticketId));
    desk.failure = undefined;
    await waitFor(allDone(ids), 'all follow-ups', 15_000);
    const reads = desk.calls.filter((c) => c.op === 'followupContents' && !c.failed);
    // One successful read per job that sent something, none for the others.
    expect(reads.map((c) => c.ticketId).sort()).toEqual([...attempted].sort());
    expect(tickets.map((t) => desk.followups.filter((f) => f.ticketId === t).length)).toEqual(tickets.map(() => 1));
  });

  it('a POST on a connection the server had closed is checked and sent again at once, not counted as a failure', async () => {
    const { ids } = followups(1);
    desk.loseNextFollowupAnswer = new RemoteError('retryable', 'ECONNRESET', 'GLPI unreachable: socket hang up', undefined, undefined, { staleConnection: true });
    startDispatcher();
    await waitFor(allDone(ids), 'follow-up done');
    expect(desk.followups).toHaveLength(1);
    expect(desk.count('followupContents')).toBe(1);
    expect(store.job(ids[0]!)?.attempts).toBe(1);
    expect((await metrics.jobRetries.get()).values).toHaveLength(0);
    expect(dispatcher!.circuit).toBe('closed');
  });
});

describe('GLPI\'s Retry-After, against the GLPI fake server through the real client', () => {
  it('one request answered 429 Retry-After: 2 holds every job: no request goes to GLPI until 2 s after it, only those already in flight are answered; every ticket once', async () => {
    const glpi = new FakeGlpi({ userTokens: ['user-token'] });
    await glpi.listen();
    const client = new GlpiClient({ url: glpi.url, appToken: new Secret(''), userToken: new Secret('user-token'), username: '', password: new Secret(''), timeoutMs: 5_000, logger: pino({ level: 'silent' }), externalId: 'off' });
    // When GLPI answered each request (its log has no times).
    const answeredAt: number[] = [];
    const log = glpi.requests.push.bind(glpi.requests);
    glpi.requests.push = (...rows) => {
      for (const _row of rows) answeredAt.push(Date.now());
      return log(...rows);
    };
    try {
      // One incident first: the session is open before the fault.
      const first = enqueue('fp-0', create('[zbx:r0]'));
      startDispatcher(4, client);
      await waitFor(allDone([first]), 'first ticket');
      glpi.setFaults({ rateLimitNext: 1, retryAfterSeconds: 2 });
      const from = glpi.requests.length;
      const ids = [1, 2, 3].map((i) => enqueue(`fp-${i}`, create(`[zbx:r${i}]`)));
      dispatcher!.wake();
      await waitFor(allDone(ids), 'every ticket', 15_000);

      const limited = glpi.requests.findIndex((r, i) => i >= from && r.status === 429);
      expect(limited).toBeGreaterThanOrEqual(from);
      const within = glpi.requests.slice(limited + 1).filter((_r, i) => answeredAt[limited + 1 + i]! - answeredAt[limited]! < 2_000);
      // Only the other incidents' searches, sent alongside the one that got the 429; no POST before the time.
      expect(within.length).toBeLessThanOrEqual(ids.length - 1);
      expect(within.every((r) => r.method === 'GET' && r.path.includes('search/Ticket'))).toBe(true);
      expect(glpi.requests.slice(limited + 1).some((r) => r.method === 'POST')).toBe(true);
      expect(glpi.requests.filter((r) => r.status === 429)).toHaveLength(1);
      expect([...glpi.tickets.values()].map((t) => t.name.slice(0, 8)).sort()).toEqual(['[zbx:r0]', '[zbx:r1]', '[zbx:r2]', '[zbx:r3]']);
    } finally {
      await dispatcher?.stop(5_000);
      dispatcher = undefined;
      await client.close();
      await glpi.close();
    }
  }, 20_000);
});

describe('landing notes in a job\'s last error', () => {
  it('say whether a job may have been applied, and replace each other', () => {
    const e = withLanding('HTTP_500: oops', true);
    expect(landingOf(e)).toBe(true);
    expect(withLanding(e, false)).toBe(withLanding('HTTP_500: oops', false));
    expect(landingOf(withLanding(e, false))).toBe(false);
    expect(landingOf('HTTP_500: oops')).toBeUndefined();
    expect(jobTag(3)).toBe('[zbx-job:3]');
  });
});
