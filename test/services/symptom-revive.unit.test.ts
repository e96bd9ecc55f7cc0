/**
 * A symptom whose cause's create is a dead letter (a rule's bad entity or category id: GLPI refuses the ticket),
 * then revived by the operator after the fix (`queue retry --all`, the status page's Retry): the symptom's ticket
 * must end linked to its cause's. The dispatcher on the in-memory store with a clock that moves only when the test
 * moves it, and a GLPI fake that refuses the cause's ticket until the test fixes it. The link job becomes a dead
 * letter with the cause's create (not given up for good, not waited for: the symptom's lane goes on), and the
 * retry runs both. Through the built daemon and the CLI: test/integration/symptom-revive.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { MemoryStore } from '../../src/adapters/store/memory/memory-store.js';
import type { JobSpec, TicketDraft } from '../../src/core/decide.js';
import { RemoteError } from '../../src/core/remote-error.js';
import { Dispatcher } from '../../src/services/dispatcher.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createJob, DeskFake, draft } from '../helpers/desk-fake.js';

const T = 1_800_000_000_000;

/** Tickets, follow-ups and ticket links as GLPI keeps them; the cause's ticket is refused (400 ERROR_GLPI_ADD, as for an entity the API user cannot see) until `fixed`. */
class Glpi extends DeskFake {
  readonly followups: number[] = [];
  fixed = false;

  override async createTicket(t: TicketDraft): Promise<number> {
    if (t.marker === '[zbx:cause]' && !this.fixed) throw new RemoteError('permanent', 'ERROR_GLPI_ADD', "GLPI answered 400 ERROR_GLPI_ADD: You don't have permission to perform this action.", 400);
    return this.add(t.marker);
  }
  override async addFollowup(ticketId: number): Promise<number> {
    this.followups.push(ticketId);
    return this.followups.length;
  }
}

const link: JobSpec = { type: 'link_ticket', cause: { fingerprint: 'cause', cycle: 1, eventId: '7001' } };

let now: number;
let store: MemoryStore;
let glpi: Glpi;
let dispatcher: Dispatcher | undefined;
let logs: Record<string, unknown>[];
const clock = { now: () => now };

beforeEach(() => {
  now = T;
  store = new MemoryStore();
  glpi = new Glpi();
  logs = [];
});

afterEach(async () => {
  await dispatcher?.stop(1_000);
  dispatcher = undefined;
});

function start(): void {
  const logger = pino({ level: 'debug' }, { write: (l: string) => void logs.push(JSON.parse(l) as Record<string, unknown>) });
  dispatcher = new Dispatcher(store, glpi, clock, logger, createMetrics({ processMetrics: false }), {
    concurrency: 4,
    quickRetries: 2,
    quickMinDelayMs: 1,
    quickMaxDelayMs: 10,
    minDelayMs: 1_000,
    backoffCapMs: 60_000,
    solutionTypeId: 0,
    problems: glpi,
  });
  dispatcher.start();
}

const status = (id: number) => store.job(id)?.status;

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}\n${JSON.stringify({ dead: store.jobs('dead', 100), pending: store.jobs('pending', 100), logs }, null, 1)}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Move the clock and let the dispatcher look. */
async function at(ms: number): Promise<void> {
  now = T + ms;
  dispatcher?.wake();
  await new Promise((r) => setTimeout(r, 30));
}

describe('a symptom whose cause\'s create is a dead letter, revived after the fix', () => {
  it('its link job is a dead letter too (its lane goes on); retried with the cause\'s create, it links the two tickets', async () => {
    const cause = store.enqueue('cause', 1, { type: 'create_ticket', ticket: draft('[zbx:cause]'), delayMs: 0 }, now, now);
    const symptomTicket = glpi.add('[zbx:symptom]');
    store.putTicket('symptom', 1, symptomTicket, '[zbx:symptom]', now);
    const linkJob = store.enqueue('symptom', 1, link, now, now);
    // The symptom's incident goes on behind its link job (it occurred again): not held by the cause's dead letter.
    const followup = store.enqueue('symptom', 1, { type: 'followup', lines: ['occurred again'], isPrivate: false }, now, now);
    start();
    await until(() => status(cause) === 'dead', 'the cause\'s create a dead letter');
    // The link job may have run while the create was (it then waited, NotYet): past its next look.
    await at(1_000);
    await until(() => status(linkJob) === 'dead' && status(followup) === 'done', 'the link job a dead letter, the symptom\'s follow-up done');
    expect(store.job(linkJob)!.lastError).toMatch(/^GLPI_TICKET_MISSING: the ticket of its cause cause #1 \(event 7001\) was never created: that create is a dead letter; once it is fixed, retry both \(queue retry --all\)/);
    expect(glpi.followups).toEqual([symptomTicket]);
    expect(glpi.links).toEqual([]);

    // The operator fixes the rule, then `queue retry --all` (the same store call).
    glpi.fixed = true;
    expect(store.retryDead('all', now)).toBe(2);
    await at(1_001);
    await until(() => status(cause) === 'done', 'the cause\'s ticket');
    // The link job ran with the create (it waits for it, NotYet) or after it: either way it is done once the clock moves past its look.
    await at(11_000);
    await until(() => status(linkJob) === 'done', 'the link job done');
    expect(glpi.links).toEqual([[symptomTicket, store.ticketId('cause', 1)]]);
  });

  it('retried alone while its cause\'s create is still dead, the link job is a dead letter again (nothing sent)', async () => {
    const cause = store.enqueue('cause', 1, { type: 'create_ticket', ticket: draft('[zbx:cause]'), delayMs: 0 }, now, now);
    store.buryJob(cause, 'GLPI_PERMANENT ERROR_GLPI_ADD: no rights on entity 7', now);
    const symptomTicket = glpi.add('[zbx:symptom]');
    store.putTicket('symptom', 1, symptomTicket, '[zbx:symptom]', now);
    const linkJob = store.enqueue('symptom', 1, link, now, now);
    start();
    await until(() => status(linkJob) === 'dead', 'the link job a dead letter');
    expect(store.retryDead(linkJob, now)).toBe(1);
    await at(1);
    await until(() => status(linkJob) === 'dead' && store.job(linkJob)!.attempts === 2, 'the link job a dead letter again');
    expect(status(cause)).toBe('dead');
    expect(glpi.links).toEqual([]);
  });
});
