import { htmlText } from '../core/render.js';
import type { JobSpec } from '../core/decide.js';
import type { ActionQueue, EventAcknowledger, IncidentState, Job, ProblemDesk, TicketDesk } from '../core/ports.js';
import { RemoteError } from '../core/remote-error.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

/*
 * What each job does in GLPI or Zabbix, and how it is made idempotent: a job
 * may run more than once (a retry after an unknown outcome, a claim lost to a
 * crash or a power cut), so every write that may have landed is looked for
 * before it is sent again — a create by its ticket marker, a follow-up by its
 * job tag, a write-back by its message. When and how often a job runs is the
 * dispatcher's business (services/dispatcher.ts); this file never waits,
 * retries later or records anything: it reports an Outcome or throws (NotYet:
 * the job's work waits for another lane's, and nothing was sent).
 */

export interface JobRunnerOptions {
  readonly solutionTypeId: number;
  /** Write the ticket link back to Zabbix after a create (absent: no write-back). */
  readonly writeBack?: { readonly zabbix: EventAcknowledger; readonly prefix: string; readonly acknowledge: boolean };
  /** glpi.recovery_fallback: the steps after GLPI refused the solution (absent or empty: the refusal is the job's error). */
  readonly recoveryFallback?: readonly ('status' | 'followup')[];
  /** GLPI Problems and ITIL links (absent: the API has no routes for them, e.g. the v2 adapter; problem jobs are then skipped, logged once). */
  readonly problems?: ProblemDesk;
  readonly logger?: Logger;
  readonly metrics?: Metrics;
}

/** What a job did; a create also carries what to record with its completion. */
export interface Outcome {
  readonly operation: string;
  /** The ticket acted on (0 for a write-back). */
  readonly ticketId: number;
  /** A create: the ticket to record for the job's cycle, and the write-back to queue with it. */
  readonly created?: { readonly marker: string; readonly writeBack?: JobSpec };
  /** The ticket turned out closed in GLPI: the incident needs a new cycle (DispatcherOptions.onTicketClosed). */
  readonly closedInGlpi?: boolean;
}

/**
 * What one job run knows between its tries: whether an earlier try (in this
 * run or an earlier one) may have been applied without the bridge hearing of
 * it. Only then is GLPI (or Zabbix) read before sending again.
 */
export interface RunState {
  uncertain: boolean;
}

/** Thrown when a job refers to a ticket the bridge never got (its create is dead-lettered; for a symptom's link, its cause's create). */
export class TicketMissing extends Error {}

/**
 * Thrown when a job cannot do its work yet because what it needs is under way in another lane (a symptom's
 * link waits for its cause's create, a problem group's job for its members'), before anything was sent. Not a failure: the dispatcher puts the job
 * back in the queue `retryInMs` from now, as it does a job held back by the circuit breaker (retry policy
 * 'not-sent'): the breaker hears nothing, no retry is counted and no backoff grows.
 */
export class NotYet extends Error {
  constructor(
    message: string,
    readonly retryInMs: number,
  ) {
    super(message);
    this.name = 'NotYet';
  }
}

/**
 * A symptom's link job whose cause's create is under way, or a problem group's job whose member's create is,
 * looks again after LINK_LOOK_MIN_MS, doubling up to LINK_LOOK_MAX_MS (a create usually lands within the first
 * look; one GLPI keeps failing is retried on its own backoff, minutes apart). LINK_WAIT_RUNS bounds the waiting
 * (about an hour of looks) should that create's lane never drain; the create ending (done, dead, cancelled)
 * ends it long before.
 */
export const LINK_LOOK_MIN_MS = 250;
export const LINK_LOOK_MAX_MS = 10_000;
export const LINK_WAIT_RUNS = 400;

/** How long a link job waits before its next look, after `attempts` runs (this one included). */
export function linkLookDelay(attempts: number): number {
  return Math.min(LINK_LOOK_MAX_MS, LINK_LOOK_MIN_MS * 2 ** Math.min(16, Math.max(0, attempts - 1)));
}

/** Which rule a problem or link job comes from (zgb_glpi_problems_total{trigger}). */
function triggerOf(spec: JobSpec): 'recurrence' | 'together' | 'symptom' {
  return spec.type === 'problem_group' ? 'together' : spec.type === 'link_ticket' ? 'symptom' : 'recurrence';
}

const SOLVED = 5;
const CLOSED = 6;
/** GLPI's refusal of a solution (the legacy API's code; the v2 adapter answers the same: adapters/glpi/v2/outcome.ts). */
const SOLUTION_REFUSALS = new Set(['ERROR_GLPI_ADD']);
/** GLPI's refusals of an add or an update (their message is translated: never parsed). */
const REFUSALS = new Set(['ERROR_GLPI_ADD', 'ERROR_GLPI_UPDATE']);

/** Marker appended to follow-ups so that a retry after an unknown outcome can tell whether it landed. */
export function jobTag(id: number): string {
  return `[zbx-job:${id}]`;
}

/*
 * Whether a queued job may already have been applied travels with it in its
 * last error (no schema change): a job is read back before it is sent again
 * only when a try may have landed (a timeout, a reset after sending, a 500),
 * not after a refused connection or a proxy's 503.
 */
const MAY_HAVE_LANDED = ' [may have been applied in GLPI: checked before sending again]';
const NOT_APPLIED = ' [not applied in GLPI]';

function stripLanding(error: string): string {
  for (const tag of [MAY_HAVE_LANDED, NOT_APPLIED]) if (error.endsWith(tag)) return error.slice(0, -tag.length);
  return error;
}

/** The error to store with a job, saying whether it may have been applied. */
export function withLanding(error: string, uncertain: boolean): string {
  return stripLanding(error) + (uncertain ? MAY_HAVE_LANDED : NOT_APPLIED);
}

/** What a stored error says about landing; undefined for an error written without it. */
export function landingOf(error: string | undefined): boolean | undefined {
  if (error === undefined) return undefined;
  if (error.endsWith(MAY_HAVE_LANDED)) return true;
  if (error.endsWith(NOT_APPLIED)) return false;
  return undefined;
}

/** A new run of the job: unsure whether its earlier tries were applied when its last error says so. */
export function runState(job: Job): RunState {
  // An error stored without the landing note (older version): any earlier attempt may have landed.
  return { uncertain: landingOf(job.lastError) ?? job.attempts > 1 };
}

/** Executes one try of a job against GLPI (TicketDesk) or Zabbix (EventAcknowledger). */
export class JobRunner {
  /** Create jobs whose marker search found nothing in this process, with no POST since that may have landed. */
  readonly #searched = new Set<number>();

  constructor(
    private readonly desk: TicketDesk,
    /**
     * The tickets the bridge recorded; `cycleHasTicket` (every store has it) tells a problem group's job that a
     * member's create is still to run (core/ports.ts DispatchStore names only what the dispatcher itself uses).
     */
    private readonly tickets: Pick<IncidentState, 'ticketId'> & Partial<Pick<IncidentState, 'cycleHasTicket'> & Pick<ActionQueue, 'lastQueued'>>,
    private readonly opt: JobRunnerOptions,
  ) {}

  /**
   * One try. A request sent on a keep-alive connection GLPI's web server had
   * already closed is not a failure: the operation runs again at once (the
   * client opens a fresh connection), checking first whether it landed.
   */
  async run(job: Job, state: RunState): Promise<Outcome> {
    try {
      return await this.#execute(job, state);
    } catch (e) {
      if (!(e instanceof RemoteError) || !e.staleConnection) throw e;
      return this.#execute(job, state);
    }
  }

  /** The job is over (done, or a dead letter): forget what this process remembers of it. */
  finished(jobId: number): void {
    this.#searched.delete(jobId);
  }

  async #execute(job: Job, state: RunState): Promise<Outcome> {
    const spec = job.spec;
    switch (spec.type) {
      case 'create_ticket': {
        const known = this.tickets.ticketId(job, job.cycle);
        if (known !== undefined) return { operation: 'opened', ticketId: known };
        // Every create looks for its marker before its first POST: a state file rolled back by a power cut re-takes decisions.
        if (state.uncertain || !this.#searched.has(job.id)) {
          const found = await this.desk.findTicketByMarker(spec.ticket.marker);
          if (found !== undefined) return { operation: 'adopted', ticketId: found, created: this.#created(spec.ticket.marker, spec.eventId, found) };
          if (this.#searched.size >= 10_000) this.#searched.clear();
          this.#searched.add(job.id);
          state.uncertain = false;
        }
        const id = await this.#write(state, () => this.desk.createTicket(spec.ticket));
        return { operation: 'opened', ticketId: id, created: this.#created(spec.ticket.marker, spec.eventId, id) };
      }
      case 'zabbix_ack': {
        const wb = this.opt.writeBack;
        if (!wb) throw new RemoteError('permanent', 'ZABBIX_NOT_CONFIGURED', 'write-back queued but zabbix.url is no longer configured');
        const first = spec.eventIds[0];
        if (state.uncertain && first !== undefined) {
          if (await wb.zabbix.hasMessage(first, spec.message)) return { operation: 'written_back', ticketId: 0 };
          state.uncertain = false;
        }
        const closer = spec.close ? wb.zabbix.closeProblems?.bind(wb.zabbix) : undefined;
        await this.#write(state, () => (closer ? closer(spec.eventIds, spec.message) : wb.zabbix.acknowledge(spec.eventIds, spec.message, spec.acknowledge)));
        return { operation: 'written_back', ticketId: 0 };
      }
      case 'followup': {
        const id = this.#ticketOf(job);
        return this.#onTicket(id, async () => {
          await this.#followupOnce(job, state, id, spec.lines, { isPrivate: spec.isPrivate });
          return { operation: 'followed_up', ticketId: id };
        });
      }
      case 'update_ticket': {
        const id = this.#ticketOf(job);
        return this.#onTicket(id, async () => {
          await this.desk.updateTicket(id, { urgency: spec.urgency, impact: spec.impact });
          await this.#followupOnce(job, state, id, spec.lines, { isPrivate: spec.isPrivate });
          return { operation: 'updated', ticketId: id };
        });
      }
      case 'solve': {
        const id = this.#ticketOf(job);
        if (spec.mode === 'followup') {
          // A closed ticket needs no word of the recovery: done.
          const outcome = await this.#onTicket(id, async () => {
            await this.#followupOnce(job, state, id, spec.lines, { isPrivate: false });
            return { operation: 'followed_up', ticketId: id };
          });
          return { operation: outcome.operation, ticketId: id };
        }
        const result = await this.#solveOrFallBack(job, state, id, spec.lines);
        if (result === 'already_closed') return { operation: 'found_closed', ticketId: id };
        if (typeof result === 'object') return result;
        if (spec.mode === 'close') {
          await this.desk.updateTicket(id, { status: CLOSED });
          return { operation: 'closed', ticketId: id };
        }
        return { operation: 'solved', ticketId: id };
      }
      case 'reopen': {
        const id = this.#ticketOf(job);
        return this.#onTicket(id, async () => {
          await this.#followupOnce(job, state, id, spec.lines, { isPrivate: false, reopen: true });
          return { operation: 'reopened', ticketId: id };
        });
      }
      case 'problem':
        return this.#problem(job, spec);
      case 'link_ticket':
        return this.#linkToCause(job, spec);
      case 'problem_group':
        return this.#groupProblem(job, spec);
      case 'unlink_ticket':
        return this.#unlinkFromCause(job, state, spec);
    }
  }

  /**
   * A symptom's ticket linked to its cause's (Ticket_Ticket "linked to"), once:
   * GLPI refuses a second link, so the links are read first. The cause's create
   * runs in its own lane, often at the same moment as the symptom's: while it is
   * under way the job goes back to the queue (NotYet, nothing sent) and looks
   * again. A cause whose create is a dead letter makes the link job one too
   * (TicketMissing, as a follow-up on a ticket never created): once the
   * operator fixed the cause and ran `queue retry --all`, the link job waits
   * for the revived create and links. A cause whose ticket the bridge does not
   * have and will not get (its create held back and suppressed, cancelled, the
   * incident forgotten) leaves the symptom's ticket unlinked: said in the log,
   * never retried.
   */
  async #linkToCause(job: Job, spec: Extract<JobSpec, { type: 'link_ticket' }>): Promise<Outcome> {
    const own = this.#ticketOf(job);
    const desk = this.opt.problems;
    if (!desk) return this.#problemsUnsupported(job, own);
    const { fingerprint, cycle, eventId } = spec.cause;
    let cause = this.tickets.ticketId(fingerprint, cycle);
    let dead = false;
    if (cause === undefined) {
      const underWay = this.#createUnderWay(fingerprint, cycle);
      // A create queued, running or dead (cycleHasTicket), with nothing of its cycle left in its lane: dead.
      dead = !underWay && this.tickets.cycleHasTicket?.(fingerprint, cycle) === true;
      // Read again: the create may have been recorded between the reads (another node, on PostgreSQL).
      cause = this.tickets.ticketId(fingerprint, cycle);
      if (cause === undefined && underWay && job.attempts < LINK_WAIT_RUNS) {
        const wait = linkLookDelay(job.attempts);
        this.opt.logger?.[job.attempts === 1 ? 'info' : 'debug']({ incident: job.fingerprint, ticket_id: own, cause_event: eventId, cause_incident: fingerprint, look_again_in_ms: wait }, "symptom: its cause's ticket is being created; linked once it exists");
        throw new NotYet(`waiting for the ticket of its cause ${fingerprint} #${cycle} (event ${eventId}): its create has not finished`, wait);
      }
    }
    if (cause === undefined) {
      // A dead create may be revived by the operator (queue retry, the status page's Retry): the link goes with it.
      if (dead) throw new TicketMissing(`the ticket of its cause ${fingerprint} #${cycle} (event ${eventId}) was never created: that create is a dead letter; once it is fixed, retry both (queue retry --all) and this job links the two tickets`);
      const fields = { incident: job.fingerprint, ticket_id: own, cause_event: eventId, cause_incident: fingerprint, runs: job.attempts };
      if (job.attempts >= LINK_WAIT_RUNS) this.opt.logger?.warn(fields, `symptom: its cause's create is still not done after ${job.attempts} looks; not linked`);
      else this.opt.logger?.info(fields, 'symptom: its cause has no GLPI ticket; not linked');
      return { operation: 'cause_without_ticket', ticketId: own };
    }
    if (cause === own) return { operation: 'ticket_linked', ticketId: own };
    if (!(await desk.linkedTickets(own)).includes(cause)) {
      await desk.linkTickets(own, cause);
      this.opt.metrics?.problems.inc({ operation: 'ticket_linked', trigger: 'symptom' });
    }
    return { operation: 'ticket_linked', ticketId: own };
  }

  /**
   * Whether a cycle's ticket may still come: it has a create queued, running or dead (cycleHasTicket), and its
   * incident's GLPI lane still holds work of that cycle or a later one (a pending or running create heads it;
   * behind a dead create, what is left of its cycle soon ends as dead letters too). A store that cannot say
   * (a test's) counts as under way: LINK_WAIT_RUNS bounds the wait.
   */
  #createUnderWay(fingerprint: string, cycle: number): boolean {
    if (this.tickets.cycleHasTicket?.(fingerprint, cycle) !== true) return false;
    if (!this.tickets.lastQueued) return true;
    const last = this.tickets.lastQueued(fingerprint, 'glpi');
    return last !== undefined && last.cycle >= cycle;
  }

  /**
   * Zabbix ranked a symptom as a cause again: the link its ticket got to its former cause's ticket is removed
   * (GLPI purges a Ticket_Ticket; reading the links first makes a retry harmless: none left, nothing to do).
   * Where the API in use cannot remove it (no route: glpi.api v2, whose links are follow-ups) or GLPI refuses
   * (rights), the ticket gets a follow-up saying the link no longer holds, once (its job tag). Never a dead letter.
   */
  async #unlinkFromCause(job: Job, state: RunState, spec: Extract<JobSpec, { type: 'unlink_ticket' }>): Promise<Outcome> {
    const own = this.#ticketOf(job);
    const cause = this.tickets.ticketId(spec.cause.fingerprint, spec.cause.cycle);
    if (cause === undefined || cause === own) return { operation: 'ticket_unlinked', ticketId: own };
    const desk = this.opt.problems;
    let why: string;
    if (desk?.unlinkTickets) {
      try {
        if (await desk.unlinkTickets(own, cause)) this.opt.metrics?.problems.inc({ operation: 'ticket_unlinked', trigger: 'symptom' });
        return { operation: 'ticket_unlinked', ticketId: own };
      } catch (e) {
        if (!(e instanceof RemoteError) || e.kind !== 'permanent') throw e;
        why = `GLPI refused to remove the link (${e.message})`;
      }
    } else {
      why = 'the GLPI API in use cannot remove a link between tickets';
    }
    const lines = [`Zabbix ranked the event of this ticket as a cause: it is no longer a symptom of event ${spec.cause.eventId} (ticket #${cause}). ${why}: remove the link to ticket #${cause} by hand if it is in the way.`];
    await this.#onTicket(own, async () => {
      await this.#followupOnce(job, state, own, lines, { isPrivate: true });
      return { operation: 'followed_up', ticketId: own };
    });
    this.opt.logger?.info({ incident: job.fingerprint, ticket_id: own, cause_ticket: cause, reason: why }, 'symptom ranked as cause: link to its former cause\'s ticket not removed; said on the ticket');
    return { operation: 'ticket_unlink_noted', ticketId: own };
  }

  #problemsUnsupported(job: Job, ticketId: number): Outcome {
    if (!this.#problemsUnsupportedLogged) {
      this.#problemsUnsupportedLogged = true;
      this.opt.logger?.warn({ code: 'GLPI_PROBLEMS_UNSUPPORTED', incident: job.fingerprint }, 'GLPI problems and ticket links are not supported by the GLPI API in use (glpi.api): skipped (logged once)');
    }
    this.opt.metrics?.problems.inc({ operation: 'unsupported', trigger: triggerOf(job.spec) });
    return { operation: 'problem_unsupported', ticketId };
  }

  /** Logged once per process: GLPI's API in use has no Problem routes. */
  #problemsUnsupportedLogged = false;

  /**
   * A recurring incident's GLPI Problem (issue 14 item 1). Idempotent without
   * a record of its own, so it survives a crash anywhere: every run reads
   * GLPI first — the fingerprint's problems by marker (the bridge's own only),
   * the open one kept (a problem a human solved or closed, status 5 or 6, no
   * longer collects: a new one is created), then the problem's ticket links
   * (GLPI refuses a link twice, so only the missing ones are added), then its
   * follow-ups (the job tag says whether this job's follow-up landed). The
   * bridge never solves or closes a problem.
   */
  async #problem(job: Job, spec: Extract<JobSpec, { type: 'problem' }>): Promise<Outcome> {
    const desk = this.opt.problems;
    const current = this.tickets.ticketId(job, job.cycle);
    if (!desk) return this.#problemsUnsupported(job, current ?? 0);
    // Tickets of the recurring cycles; one whose create is a dead letter has nothing to link.
    const tickets = [...new Set(spec.cycles.map((c) => this.tickets.ticketId(job, c)).filter((t): t is number => t !== undefined))];
    const found = await desk.findProblemsByMarker(spec.marker);
    let problem = found.find((p) => p.status !== SOLVED && p.status !== CLOSED)?.id;
    let created = false;
    if (problem === undefined) {
      problem = await desk.createProblem(spec.problem);
      created = true;
      this.opt.metrics?.problems.inc({ operation: 'created', trigger: 'recurrence' });
      this.opt.logger?.info({ incident: job.fingerprint, problem_id: problem, replaces: found.map((p) => p.id) }, 'recurring incident: GLPI problem created');
    }
    const linked = created ? [] : await desk.problemTickets(problem);
    const added: number[] = [];
    for (const t of tickets) {
      if (linked.includes(t)) continue;
      await desk.linkProblemTicket(problem, t);
      added.push(t);
      this.opt.metrics?.problems.inc({ operation: 'linked', trigger: 'recurrence' });
    }
    // A problem that existed before this job hears of the new ticket (a new problem's content says it all).
    if (!created && current !== undefined) {
      const tag = jobTag(job.id);
      const existing = await desk.problemFollowupContents(problem);
      if (!existing.some((c) => c.includes(tag))) {
        await desk.addProblemFollowup(problem, `${htmlText([...spec.lines, `Ticket #${current}: ${this.desk.ticketUrl(current)}`])}<br>\n<small>${tag}</small>`);
      }
    }
    return { operation: created ? 'problem_opened' : 'problem_linked', ticketId: current ?? 0 };
  }

  /**
   * A problem group's GLPI Problem (`problems.together`, issue 14 item 1), in the group's own lane: one job of
   * the group at a time, so two members firing at once never both create one. Idempotent as #problem is (the
   * group's problems by marker, the open one kept; the links read first; the follow-up by its job tag). The
   * members' tickets come from their own lanes, whose creates usually run at this very moment (the group's job
   * is due with them): while a member's create is queued or running, the job goes back to the queue having sent
   * nothing (NotYet, as a symptom's link job does: no failure, no retry counted, no breaker input) and looks
   * again, LINK_WAIT_RUNS runs at most. A member that will get no ticket (a flap suppressed in the hold-down, a
   * dead or cancelled create, the incident forgotten) is left out at once. No Problem is created while fewer
   * than `required` incidents of the group have a ticket; an open one still gets the tickets that exist.
   */
  async #groupProblem(job: Job, spec: Extract<JobSpec, { type: 'problem_group' }>): Promise<Outcome> {
    const desk = this.opt.problems;
    const look = () => spec.members.map((m) => ({ ...m, ticket: this.tickets.ticketId(m.fingerprint, m.cycle) }));
    let members = look();
    if (!desk) return this.#problemsUnsupported(job, members[members.length - 1]?.ticket ?? 0);
    const underWay = new Set(members.flatMap((m, i) => (m.ticket === undefined && this.#createUnderWay(m.fingerprint, m.cycle) ? [i] : [])));
    // Read again: a create may have been recorded between the two reads (another node, on PostgreSQL).
    if (underWay.size > 0) members = look();
    const pending = members.filter((m, i) => underWay.has(i) && m.ticket === undefined).map((m) => `${m.fingerprint} #${m.cycle}`);
    if (pending.length > 0) {
      const fields = { group: job.fingerprint, members: pending, runs: job.attempts };
      if (job.attempts < LINK_WAIT_RUNS) {
        const wait = linkLookDelay(job.attempts);
        this.opt.logger?.[job.attempts === 1 ? 'info' : 'debug']({ ...fields, look_again_in_ms: wait }, "problem group: a member's ticket is being created; the problem waits for it");
        throw new NotYet(`problem group: waiting for the ticket of ${pending.join(', ')}: its create has not finished`, wait);
      }
      this.opt.logger?.warn(fields, `problem group: a member's create is still not done after ${job.attempts} looks; the problem goes without it`);
    }
    const newest = members[members.length - 1]?.ticket;
    const tickets = [...new Set(members.map((m) => m.ticket).filter((t): t is number => t !== undefined))];
    const ticketed = new Set(members.filter((m) => m.ticket !== undefined).map((m) => m.fingerprint)).size;
    const found = await desk.findProblemsByMarker(spec.marker);
    let problem = found.find((p) => p.status !== SOLVED && p.status !== CLOSED)?.id;
    let created = false;
    if (problem === undefined) {
      if (ticketed < spec.required) {
        this.opt.logger?.info({ group: job.fingerprint, ticketed, required: spec.required }, 'problem group: fewer of its incidents have a ticket than the rule asks (a flap or a dead create); no problem');
        return { operation: 'problem_group_below', ticketId: newest ?? 0 };
      }
      problem = await desk.createProblem(spec.problem);
      created = true;
      this.opt.metrics?.problems.inc({ operation: 'created', trigger: 'together' });
      this.opt.logger?.info({ group: job.fingerprint, problem_id: problem, replaces: found.map((p) => p.id) }, 'incidents fired together: GLPI problem created');
    }
    const linked = created ? [] : await desk.problemTickets(problem);
    for (const t of tickets) {
      if (linked.includes(t)) continue;
      await desk.linkProblemTicket(problem, t);
      this.opt.metrics?.problems.inc({ operation: 'linked', trigger: 'together' });
    }
    // A problem that existed before this job hears of the members that fired since (a new problem's content says it
    // all): one line per firing, the newest members last, so the job's last members are the ones its lines name
    // (one, or a burst merged by storm control). Named from the job, not from what this run linked: a retry after
    // the links landed still says it.
    const fresh = [...new Set(members.slice(-Math.max(1, spec.lines.length)).map((m) => m.ticket).filter((t): t is number => t !== undefined))];
    if (!created && fresh.length > 0) {
      const tag = jobTag(job.id);
      const existing = await desk.problemFollowupContents(problem);
      if (!existing.some((c) => c.includes(tag))) {
        await desk.addProblemFollowup(problem, `${htmlText([...spec.lines, ...fresh.map((t) => `Ticket #${t}: ${this.desk.ticketUrl(t)}`)])}<br>\n<small>${tag}</small>`);
      }
    }
    return { operation: created ? 'problem_opened' : 'problem_linked', ticketId: newest ?? 0 };
  }

  /**
   * The solution, or — when GLPI refuses it for a workflow reason an
   * operator cannot fix at once (a ticket template's mandatory field, the
   * profile's status matrix without Solved, a business rule) — the
   * configured fallback (glpi.recovery_fallback): the status set to Solved,
   * then a follow-up saying Zabbix recovered. GLPI refuses in two ways:
   * the solution itself (ERROR_GLPI_ADD, e.g. CommonITILObject::canSolve()
   * false), or the solution is stored but the ticket's update to Solved in
   * ITILSolution::post_addItem() is refused, so its status does not move
   * (glpi-project/glpi src/ITILSolution.php @ 0042059c82075d3223c145cb3609a83019fc0cd2).
   * GLPI's reason goes to the log (GLPI_SOLUTION_REFUSED) and
   * zgb_glpi_solution_refused_total{reason, fallback}.
   */
  async #solveOrFallBack(job: Job, state: RunState, id: number, lines: readonly string[]): Promise<'added' | 'already_solved' | 'already_closed' | Outcome> {
    const steps = this.opt.recoveryFallback ?? [];
    let reason: 'refused' | 'status_unchanged';
    let message: string;
    try {
      const result = await this.desk.addSolution(id, htmlText(lines), this.opt.solutionTypeId);
      if (result !== 'added' || steps.length === 0) return result;
      const status = await this.desk.ticketStatus(id);
      if (status === undefined || status === SOLVED || status === CLOSED) return result;
      reason = 'status_unchanged';
      message = `GLPI stored the solution but the ticket stayed in status ${status} (a template's mandatory field, the status matrix or a rule refused Solved)`;
    } catch (e) {
      if (steps.length === 0 || !(e instanceof RemoteError) || !SOLUTION_REFUSALS.has(e.code)) throw e;
      reason = 'refused';
      message = e.message;
    }
    const log = this.opt.logger;
    // A solution GLPI refused left no word of the recovery on the ticket: the status step says it in a
    // follow-up first (one per job: its tag makes a retry find it), and the follow-up step then has nothing to add.
    let noted = false;
    const note = async (text: readonly string[]) => {
      if (noted) return;
      await this.#followupOnce(job, state, id, text, { isPrivate: false });
      noted = true;
    };
    for (const step of steps) {
      if (step === 'status') {
        if (reason === 'refused') await note([...lines, `GLPI refused the solution (${message}).`]);
        try {
          await this.desk.updateTicket(id, { status: SOLVED });
          const status = await this.desk.ticketStatus(id);
          if (status === SOLVED || status === CLOSED) {
            this.#refused(job, id, reason, message, 'status');
            return { operation: 'solved', ticketId: id };
          }
          message += `; setting the status to Solved left it at ${status ?? 'unknown'}`;
        } catch (e) {
          if (!(e instanceof RemoteError) || !REFUSALS.has(e.code)) throw e;
          message += `; setting the status to Solved: ${e.message}`;
        }
        continue;
      }
      await note([...lines, `GLPI refused the solution (${message}).`]);
      this.#refused(job, id, reason, message, 'followup');
      return { operation: 'followed_up', ticketId: id };
    }
    log?.warn({ code: 'GLPI_SOLUTION_REFUSED', ticket_id: id, reason, glpi_reason: message }, 'GLPI refused the solution and glpi.recovery_fallback has no step that worked');
    this.opt.metrics?.solutionRefused.inc({ reason, fallback: 'none' });
    throw new RemoteError('permanent', 'GLPI_SOLUTION_REFUSED', `GLPI refused the solution of ticket ${id}: ${message}`, undefined, undefined, { mayHaveLanded: false });
  }

  #refused(job: Job, ticketId: number, reason: string, message: string, fallback: 'status' | 'followup'): void {
    this.opt.logger?.warn(
      { code: 'GLPI_SOLUTION_REFUSED', ticket_id: ticketId, incident: job.fingerprint, reason, glpi_reason: message, fallback },
      `GLPI refused the recovery's solution (${message}): fell back to ${fallback === 'status' ? 'setting the status to Solved' : 'a follow-up saying Zabbix recovered'}`,
    );
    this.opt.metrics?.solutionRefused.inc({ reason, fallback });
  }

  /** A create's record: its marker, and the ticket link to write back to the Zabbix event (its own lane: a Zabbix outage never holds GLPI work back). */
  #created(marker: string, eventId: string | undefined, ticketId: number): NonNullable<Outcome['created']> {
    const wb = this.opt.writeBack;
    if (!wb || eventId === undefined) return { marker };
    const message = `${wb.prefix} GLPI ticket #${ticketId}: ${this.desk.ticketUrl(ticketId)}`;
    return { marker, writeBack: { type: 'zabbix_ack', eventIds: [eventId], message, acknowledge: wb.acknowledge } };
  }

  /** A request that may apply something: when its failure says it may have been applied, the next try checks first. */
  async #write<T>(state: RunState, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (e) {
      if (!(e instanceof RemoteError) || e.mayHaveLanded) state.uncertain = true;
      throw e;
    }
  }

  #ticketOf(job: Job): number {
    const id = this.tickets.ticketId(job, job.cycle);
    if (id === undefined) throw new TicketMissing(`incident ${job.fingerprint} #${job.cycle} has no GLPI ticket (its create job failed; see the dead letters)`);
    return id;
  }

  /** A follow-up sent at most once: when an earlier try may have landed, look for the job's tag first. */
  async #followupOnce(job: Job, state: RunState, ticketId: number, lines: readonly string[], options: { isPrivate: boolean; reopen?: boolean }): Promise<void> {
    const tag = jobTag(job.id);
    if (state.uncertain) {
      const existing = await this.desk.followupContents(ticketId);
      if (existing.some((c) => c.includes(tag))) return;
      state.uncertain = false;
    }
    await this.#write(state, () => this.desk.addFollowup(ticketId, `${htmlText(lines)}<br>\n<small>${tag}</small>`, options));
  }

  /**
   * A step on an existing ticket. When GLPI refuses it (its message is
   * translated: never parsed), the ticket's status says whether it is closed;
   * a closed ticket completes the job and hands the incident over.
   */
  async #onTicket(ticketId: number, step: () => Promise<Outcome>): Promise<Outcome> {
    try {
      return await step();
    } catch (e) {
      if (!(e instanceof RemoteError) || !REFUSALS.has(e.code)) throw e;
      if ((await this.desk.ticketStatus(ticketId)) !== CLOSED) throw e;
      return { operation: 'found_closed', ticketId, closedInGlpi: true };
    }
  }
}
