import { AsyncLocalStorage } from 'node:async_hooks';
import pRetry, { AbortError } from 'p-retry';
import { laneOf } from '../core/coalesce.js';
import type { Clock, DispatchStore, EventAcknowledger, Job, ProblemDesk, TicketDesk } from '../core/ports.js';
import { RemoteError } from '../core/remote-error.js';
import { BREAKER_GAUGE, CircuitBreaker, RetryAfterWindow, decideRetry, type BreakerChange, type BreakerState, type Failure, type Gate, type RetryDecision } from '../core/retry-policy.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { JobRunner, NotYet, TicketMissing, runState, withLanding, type Outcome, type RunState } from './job-runner.js';
import { queueJob } from './storm-control.js';

/**
 * Three "down" failures in a row open the breaker: a GLPI that is down fails
 * every request (three come within milliseconds with jobs in flight, or from
 * one job's quick retries), one that fails a request now and then is not down.
 */
export const BREAKER_OPEN_AFTER = 3;

export interface DispatcherOptions {
  /** Jobs (so GLPI requests) in flight at once. */
  readonly concurrency: number;
  /**
   * Whether Zabbix is queueing on the intake right now (WakeSignal.intakeBusy): meanwhile one job at a time
   * runs (issue 16). GLPI keeps moving; its requests, answers and claims stop competing for the cores and
   * the disk with the webhooks waiting.
   */
  readonly intakeBusy?: () => boolean;
  /** Quick retries of one job run (p-retry, exponential backoff with jitter) before it goes back to the durable queue. */
  readonly quickRetries: number;
  readonly quickMinDelayMs: number;
  readonly quickMaxDelayMs: number;
  /** First durable retry delay; doubles per attempt up to backoffCapMs, with jitter. */
  readonly minDelayMs: number;
  readonly backoffCapMs: number;
  readonly solutionTypeId: number;
  /** What a solve does when GLPI refuses the solution for a workflow reason (glpi.recovery_fallback; job-runner.ts). */
  readonly recoveryFallback?: readonly ('status' | 'followup')[];
  /** Write the ticket link back to Zabbix after a create (absent: no write-back). */
  readonly writeBack?: { readonly zabbix: EventAcknowledger; readonly prefix: string; readonly acknowledge: boolean };
  /** GLPI Problems and ITIL links (issue 14 item 1; absent: problem jobs are skipped, job-runner.ts). */
  readonly problems?: ProblemDesk;
  /**
   * A followup, update_ticket or reopen job found its ticket closed in GLPI
   * (GLPI refused it and the ticket's status is 6): the job is complete, and
   * the incident needs a new ticket cycle. Called after the job's completion
   * is recorded. A solve job on a closed ticket simply counts as done.
   */
  readonly onTicketClosed?: (job: Job, ticketId: number) => void;
  /** Longest wait between two probes while GLPI is down (default 30 s, or backoffCapMs if lower). */
  readonly probeMaxDelayMs?: number;
  /** "GLPI is down" failures in a row (no GLPI answer between) that open the circuit breaker (default BREAKER_OPEN_AFTER). */
  readonly breakerOpenAfter?: number;
  /** Until when held-back creates may run: every alert received before then is decided (Processor.createHorizon). Default: now. */
  readonly createHorizon?: (now: number) => number;
}

const IDLE_POLL_MS = 2_000;
/** How soon to look again when due jobs all wait behind a held create of their lane. */
const BLOCKED_POLL_MS = 200;

/**
 * A GLPI request held back before it was sent: the circuit breaker is open,
 * or GLPI asked to wait (Retry-After). Not a failure of the job; nothing can
 * have landed.
 */
class NotSent extends RemoteError {
  constructor(why: string) {
    super('retryable', 'GLPI_NOT_SENT', why, undefined, undefined, { mayHaveLanded: false });
  }
}

const LAPSED = "this node's claim on the job lapsed (its lease was not renewed in time): another node may run it";

/** The job whose run is sending (several bridges on one PostgreSQL: no request goes out for a claim that lapsed). */
const sendingFor = new AsyncLocalStorage<number>();

/** Every method of `target` runs `check` first (called on the target itself: adapters keep private fields). */
function checkedFirst<T extends object>(target: T, check: () => void): T {
  return new Proxy(target, {
    get(t, key) {
      const v: unknown = Reflect.get(t, key, t);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]): unknown => {
        check();
        return (v as (...a: unknown[]) => unknown).apply(t, args);
      };
    },
  });
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/** The failure as the retry policy sees it. */
function failureOf(e: unknown): Failure {
  if (e instanceof NotSent) return { kind: 'not-sent' };
  // The job waits for another lane's work (a symptom's link for its cause's create): nothing was sent either.
  if (e instanceof NotYet) return { kind: 'not-sent', waitMs: e.retryInMs };
  if (e instanceof TicketMissing) return { kind: 'ticket-missing' };
  if (e instanceof RemoteError) return { kind: e.kind, retryAfterMs: e.retryAfterMs, outage: e.outage };
  return { kind: 'unexpected' };
}

/** Jobs that talk to GLPI (write-backs talk to Zabbix). */
function isGlpiJob(job: Job): boolean {
  return laneOf(job.spec) === 'glpi';
}

/** Sends a GLPI request unless GLPI's Retry-After holds, and notes a Retry-After from any answer. */
function retryAfterGate(window: RetryAfterWindow, clock: Clock, answered: () => void): <T>(request: () => Promise<T>) => Promise<T> {
  return async (request) => {
    if (!window.open(clock.now())) throw new NotSent('waiting for GLPI (Retry-After)');
    try {
      const result = await request();
      answered();
      return result;
    } catch (e) {
      if (e instanceof RemoteError && e.retryAfterMs !== undefined) window.note(clock.now(), e.retryAfterMs);
      throw e;
    }
  };
}

/**
 * The GLPI client as every job uses it: no request is sent while GLPI's
 * Retry-After holds, and a Retry-After on any answer holds every GLPI request
 * of every job, not only the job that got it. Each step GLPI answers tells
 * the circuit breaker it is up (`answered`), before the job's other steps.
 * (Zabbix's requests do not go through here.)
 */
function paced(desk: TicketDesk, window: RetryAfterWindow, clock: Clock, answered: () => void): TicketDesk {
  const send = retryAfterGate(window, clock, answered);
  return {
    findTicketByMarker: (marker) => send(() => desk.findTicketByMarker(marker)),
    createTicket: (t) => send(() => desk.createTicket(t)),
    addFollowup: (ticketId, content, options) => send(() => desk.addFollowup(ticketId, content, options)),
    followupContents: (ticketId) => send(() => desk.followupContents(ticketId)),
    addSolution: (ticketId, content, solutionTypeId) => send(() => desk.addSolution(ticketId, content, solutionTypeId)),
    updateTicket: (ticketId, fields) => send(() => desk.updateTicket(ticketId, fields)),
    ticketStatus: (ticketId) => send(() => desk.ticketStatus(ticketId)),
    ticketUrl: (id) => desk.ticketUrl(id),
  };
}

/** Problems and ticket links are GLPI requests too: the same Retry-After holds them. */
function pacedProblems(desk: ProblemDesk, window: RetryAfterWindow, clock: Clock, answered: () => void): ProblemDesk {
  const send = retryAfterGate(window, clock, answered);
  return {
    findProblemsByMarker: (marker) => send(() => desk.findProblemsByMarker(marker)),
    createProblem: (p) => send(() => desk.createProblem(p)),
    problemTickets: (problemId) => send(() => desk.problemTickets(problemId)),
    linkProblemTicket: (problemId, ticketId) => send(() => desk.linkProblemTicket(problemId, ticketId)),
    addProblemFollowup: (problemId, content) => send(() => desk.addProblemFollowup(problemId, content)),
    problemFollowupContents: (problemId) => send(() => desk.problemFollowupContents(problemId)),
    linkedTickets: (ticketId) => send(() => desk.linkedTickets(ticketId)),
    linkTickets: (ticketId, otherId) => send(() => desk.linkTickets(ticketId, otherId)),
    ...(desk.unlinkTickets ? { unlinkTickets: (ticketId: number, otherId: number) => send(() => desk.unlinkTickets!(ticketId, otherId)) } : {}),
  };
}

/**
 * Action queue → GLPI and Zabbix: which job runs when. Jobs of one lane
 * (an incident's GLPI work, or its write-backs) run one at a time in order;
 * different lanes run in parallel up to the concurrency cap. A claim is on
 * disk before its job runs. What a job does is the JobRunner's
 * (services/job-runner.ts); when a failed job runs again, or becomes a dead
 * letter, is the retry policy's (core/retry-policy.ts). While GLPI is down, a
 * circuit breaker holds every job back and lets one probe at a time find out
 * when it is back; while GLPI asks to wait (Retry-After), no GLPI request
 * goes out, whichever job's request got the answer.
 */
export class Dispatcher {
  readonly #inflight = new Map<number, Promise<void>>();
  /** Lanes (Job.lane) with a job in flight: the next job of a lane waits for it. */
  readonly #busy = new Set<string>();
  readonly #breaker: CircuitBreaker;
  readonly #retryAfter = new RetryAfterWindow();
  readonly #runner: JobRunner;
  #timer: NodeJS.Timeout | undefined;
  /** When #timer fires (performance.now()). */
  #timerAt = 0;
  #stopped = true;
  #pausedUntil = 0;
  #pumpQueued = false;
  #lastFailure: { signature: string; count: number; since: number; loggedAt: number } | undefined;

  constructor(
    private readonly store: DispatchStore,
    private readonly desk: TicketDesk,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    private readonly opt: DispatcherOptions,
  ) {
    const probeMax = Math.min(opt.probeMaxDelayMs ?? 30_000, Math.max(opt.backoffCapMs, opt.quickMinDelayMs));
    this.#breaker = new CircuitBreaker({ minDelayMs: opt.quickMinDelayMs, maxDelayMs: probeMax, openAfter: opt.breakerOpenAfter ?? BREAKER_OPEN_AFTER }, (c) => this.#breakerChanged(c));
    const answered = (): void => this.#breaker.answered(this.clock.now());
    // Several bridges on one PostgreSQL: every GLPI and Zabbix request of a job checks first that this node's claim
    // has not lapsed (it was stopped between two requests of one run); one node (no claimLapsed): nothing changes.
    const claimHeld = (): void => {
      const id = sendingFor.getStore();
      if (id !== undefined && store.claimLapsed?.(id)) throw new NotSent(LAPSED);
    };
    const held = <T extends object>(x: T): T => (store.claimLapsed ? checkedFirst(x, claimHeld) : x);
    this.#runner = new JobRunner(paced(held(desk), this.#retryAfter, clock, answered), store, { solutionTypeId: opt.solutionTypeId, logger, metrics, ...(opt.writeBack ? { writeBack: { ...opt.writeBack, zabbix: held(opt.writeBack.zabbix) } } : {}), ...(opt.problems ? { problems: pacedProblems(held(opt.problems), this.#retryAfter, clock, answered) } : {}), ...(opt.recoveryFallback ? { recoveryFallback: opt.recoveryFallback } : {}) });
    this.metrics.glpiCircuit.set(BREAKER_GAUGE.closed);
  }

  start(): void {
    this.#stopped = false;
    const now = this.clock.now();
    const unclean = this.store.recordStart(now);
    // Jobs cut off mid-run may have been applied in GLPI: their next run checks first.
    const interrupted = this.store.jobs('running', 100_000);
    for (const job of interrupted) this.store.rescheduleJob(job.id, now, withLanding(job.lastError ?? 'interrupted by a stop', true), now);
    const requeued = interrupted.length + this.store.requeueRunning(now);
    if (unclean) this.logger.warn({ jobs_in_flight: requeued }, 'previous run did not stop cleanly: jobs that were in flight check GLPI before sending again');
    else if (requeued > 0) this.logger.warn({ jobs: requeued }, 'jobs interrupted by the previous stop are queued again');
    this.wake();
  }

  get inflight(): number {
    return this.#inflight.size;
  }

  /** Until when dispatch is paused because GLPI refuses to log in (0 when not). */
  get pausedUntil(): number {
    return this.#pausedUntil;
  }

  /** The GLPI circuit breaker's state. */
  get circuit(): BreakerState {
    return this.#breaker.state;
  }

  wake(): void {
    if (this.#stopped) return;
    // The pump re-arms the look-ahead timer as the queue needs; a timer already set may stay (see #arm).
    this.#pumpSoon();
  }

  /** One look at the queue per event-loop turn, however many jobs finished or batches were queued in it. */
  #pumpSoon(): void {
    if (this.#pumpQueued) return;
    this.#pumpQueued = true;
    setImmediate(() => {
      this.#pumpQueued = false;
      this.#pump();
    });
  }

  /**
   * Look at the queue again in delayMs (at most 5 s). A look already due as soon or sooner stays: every pump (one per
   * finished job or batch of decisions under a storm) re-armed it, a clearTimeout and a setTimeout each time (issue
   * 16); a look that comes early only pumps once more.
   */
  #arm(delayMs: number): void {
    if (this.#stopped) return;
    const wait = Math.max(5, Math.min(delayMs, 5_000));
    const at = performance.now() + wait;
    if (this.#timer && this.#timerAt <= at) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#pump();
    }, wait);
  }

  #pump(): void {
    if (this.#stopped) return;
    const now = this.clock.now();
    if (now < this.#pausedUntil) return this.#arm(this.#pausedUntil - now);
    // GLPI down, or asking to wait: nothing starts until then (write-backs to Zabbix wait too, as a claim cannot skip GLPI's lanes).
    const gate = this.#glpiGate(now);
    if (gate.run === 'none') return this.#arm(gate.until - now);
    let free = this.opt.concurrency - this.#inflight.size;
    if (gate.run === 'one') free = Math.min(free, 1);
    // One at a time while Zabbix queues on the intake; the job in flight pumps again when it ends.
    if (free > 0 && this.opt.intakeBusy?.()) free = Math.min(free, 1 - this.#inflight.size);
    let claimed = 0;
    if (free > 0) {
      let jobs: Job[] = [];
      try {
        jobs = this.store.claimReady(now, free, this.#busy, this.opt.createHorizon?.(now) ?? now);
      } catch (e) {
        this.logger.error({ err: (e as Error).message }, 'cannot read the job queue');
        return this.#arm(1000);
      }
      claimed = jobs.length;
      // Claims committed without a flush (SQLite) run once they are on disk: one fdatasync off this thread for
      // the claims made while the last one ran, not one inside each claim's commit (issue 16).
      const onDisk = jobs.length > 0 ? this.store.claimsOnDisk?.() : undefined;
      for (const job of jobs) {
        // The probe is chosen now, before another pump in this turn could pick a second one.
        if (gate.run === 'one' && isGlpiJob(job)) this.#breaker.admit(job.id, now);
        this.#launch(job, onDisk);
      }
    }
    // Also look again when idle: `queue retry` puts dead letters back from another process.
    let due: number | undefined;
    try {
      due = this.store.nextDueAt();
    } catch {
      // The store cannot be read right now (PostgreSQL restarting): look again soon; an uncaught throw here would end the thread.
      return this.#arm(1000);
    }
    // Jobs due now but not claimed wait for a slot: finishing jobs pump again, no busy timer needed. With a slot
    // free and nothing claimed, a due job waits behind its lane's held create (hold-down, decisions behind it),
    // whose time the queue does not give: look again soon rather than at the idle poll.
    const blocked = due !== undefined && due <= now && free > 0 && claimed === 0;
    this.#arm(due !== undefined && due > now ? due - now : blocked ? BLOCKED_POLL_MS : IDLE_POLL_MS);
  }

  /** What may start now, as GLPI allows: its Retry-After first, then the circuit breaker. */
  #glpiGate(now: number): Gate {
    if (!this.#retryAfter.open(now)) return { run: 'none', until: this.#retryAfter.until };
    return this.#breaker.gate(now);
  }

  /** Run a claimed job, once its claim is on disk (`onDisk`); a claim that could not be flushed sends nothing and goes back to the queue. */
  #launch(job: Job, onDisk?: Promise<void>): void {
    this.#busy.add(job.lane);
    const started = onDisk ? onDisk.then(() => this.#run(job), (e: unknown) => this.#notOnDisk(job, e as Error)) : this.#run(job);
    const p = started.finally(() => {
      this.#inflight.delete(job.id);
      this.#busy.delete(job.lane);
      this.#pumpSoon();
    });
    this.#inflight.set(job.id, p);
  }

  #notOnDisk(job: Job, e: Error): void {
    const now = this.clock.now();
    this.logger.error({ job_id: job.id, job_type: job.type, err: e.message }, 'a job claim could not be flushed to disk; the job is queued again without being sent');
    try {
      this.store.rescheduleJob(job.id, now + 1_000, withLanding(`claim not on disk: ${e.message}`, runState(job).uncertain), now);
    } catch {
      // The store cannot be written either: the claim stays running, and the next start queues it again as interrupted.
    }
  }

  async #run(job: Job): Promise<void> {
    const log = this.logger.child({ job_id: job.id, job_type: job.type, fingerprint: job.fingerprint, attempt: job.attempts });
    const state = runState(job);
    try {
      const outcome = await this.#attempt(job, state);
      try {
        const now = this.clock.now();
        this.store.transaction(() => {
          const created = outcome.created;
          if (created) {
            this.store.putTicket(job, job.cycle, outcome.ticketId, created.marker, now);
            // A zabbix_ack job runs in the incident's write-back lane (see Job.lane): a Zabbix outage never holds GLPI work back.
            if (created.writeBack) queueJob(this.store, job, job.cycle, created.writeBack, now, now);
          }
          this.store.completeJob(job.id, now);
        }, 'crash-safe');
      } catch (storeError) {
        // Several bridges on one PostgreSQL: the claim lapsed while the job ran and another node holds the job now;
        // its run checks GLPI before sending, so this outcome is found there, not at this node's next start.
        if ((storeError as { code?: unknown }).code === 'PG_LEASE_LOST') {
          log.warn({ code: 'PG_LEASE_LOST', err: (storeError as Error).message, ticket_id: outcome.ticketId }, 'GLPI job done, but another node has taken the job over meanwhile: its run finds this outcome in GLPI');
          return;
        }
        log.error({ err: (storeError as Error).message, ticket_id: outcome.ticketId }, 'GLPI job done but not recorded; it will be checked again at next start');
        return;
      }
      this.#runner.finished(job.id);
      this.metrics.tickets.inc({ operation: outcome.operation });
      if (this.#lastFailure) {
        log.info({ failures: this.#lastFailure.count, since: new Date(this.#lastFailure.since).toISOString() }, 'GLPI is answering again');
        this.#lastFailure = undefined;
      }
      log.info({ ticket_id: outcome.ticketId, ticket_url: outcome.ticketId > 0 ? this.desk.ticketUrl(outcome.ticketId) : undefined, operation: outcome.operation }, 'GLPI job done');
      if (outcome.closedInGlpi) this.#handOver(job, outcome.ticketId, log);
    } catch (e) {
      try {
        this.#failed(job, e, state, log);
      } catch (storeError) {
        // The store is gone (shutdown) or broken: the job stays "running" and is retried at next start.
        log.error({ err: (storeError as Error).message }, 'cannot record the job outcome');
      }
    } finally {
      this.#breaker.release(job.id, this.clock.now());
    }
  }

  /** The incident's ticket is closed in GLPI: the processor opens a new cycle. */
  #handOver(job: Job, ticketId: number, log: Logger): void {
    log.warn({ ticket_id: ticketId }, 'the ticket is closed in GLPI: the incident goes on in a new ticket');
    try {
      this.opt.onTicketClosed?.(job, ticketId);
    } catch (e) {
      log.error({ err: (e as Error).message, ticket_id: ticketId }, 'handing a closed ticket\'s incident over failed');
    }
  }

  /** The retry policy's decision for a failure of this job. */
  #decide(job: Job, e: unknown, quickRetriesLeft: number): RetryDecision {
    return decideRetry(
      failureOf(e),
      { now: this.clock.now(), attempts: job.attempts, glpi: isGlpiJob(job), quickRetriesLeft, breakerRetryAt: this.#breaker.retryAt, glpiNotBefore: this.#retryAfter.until },
      this.opt,
    );
  }

  /** The run failed: back to the durable queue, or a dead letter, as the retry policy decides. */
  #failed(job: Job, e: unknown, state: RunState, log: Logger): void {
    const now = this.clock.now();
    const decision = this.#decide(job, e, 0);
    if (decision.do === 'dead-letter') {
      this.#runner.finished(job.id);
      const reason = decision.code === 'GLPI_PERMANENT' && e instanceof RemoteError ? `GLPI_PERMANENT ${e.code}: ${e.message}` : `${decision.code}: ${asError(e).message}`;
      this.store.buryJob(job.id, withLanding(reason, state.uncertain), now);
      this.metrics.deadLetters.inc({ type: job.type });
      log.error({ reason }, 'job moved to dead letters');
      return;
    }
    if (decision.do === 'retry-now') throw new Error('the retry policy answered retry-now for a run that is over');
    if (!decision.failed) {
      // Nothing was sent: back in the queue until GLPI may be asked again; not a failure.
      this.store.rescheduleJob(job.id, decision.at, withLanding(job.lastError ?? asError(e).message, state.uncertain), now);
      return;
    }
    const err = e instanceof RemoteError ? e : new RemoteError('retryable', 'UNEXPECTED', asError(e).message);
    if (decision.pauseDispatch) this.#pausedUntil = decision.at;
    this.store.rescheduleJob(job.id, decision.at, withLanding(`${err.code}: ${err.message}`, state.uncertain), now);
    this.metrics.jobRetries.inc({ type: job.type });
    this.#logFailure(err, decision.at - now, log);
  }

  /** A repeated identical failure is logged once, then summarised once a minute. */
  #logFailure(err: RemoteError, delay: number, log: Logger): void {
    const now = this.clock.now();
    const signature = `${err.kind}:${err.code}`;
    const last = this.#lastFailure;
    if (last && last.signature === signature) {
      last.count++;
      if (now - last.loggedAt >= 60_000) {
        log.warn({ code: err.code, failures: last.count, since: new Date(last.since).toISOString() }, 'GLPI still failing');
        last.loggedAt = now;
      }
      return;
    }
    this.#lastFailure = { signature, count: 1, since: now, loggedAt: now };
    const message = err.kind === 'login' ? 'GLPI refuses the bridge\'s credentials; dispatch paused (check glpi.app_token / user_token)' : 'GLPI request failed; job will be retried';
    const code = err.kind === 'login' ? 'GLPI_LOGIN_FAILED' : undefined;
    log[err.kind === 'login' ? 'error' : 'warn']({ ...(code ? { code } : {}), glpi_code: err.code, err: err.message, retry_in_ms: delay }, message);
  }

  #breakerChanged(c: BreakerChange): void {
    this.metrics.glpiCircuit.set(BREAKER_GAUGE[c.state]);
    if (c.state === 'open' && c.previous === 'closed') {
      this.logger.warn(
        { glpi_code: c.cause?.code, err: c.cause?.message, probe_in_ms: (c.retryAt ?? 0) - this.clock.now() },
        'GLPI looks down: circuit breaker open, jobs wait and one probe at a time tells when it is back',
      );
    } else if (c.state === 'closed') {
      this.logger.info({ down_for_ms: c.downForMs, probes: c.probes }, 'GLPI answers again: circuit breaker closed, dispatch resumes');
    } else {
      this.logger.debug({ state: c.state, probes: c.probes, next_probe_in_ms: c.retryAt !== undefined ? c.retryAt - this.clock.now() : undefined }, 'GLPI circuit breaker');
    }
  }

  /**
   * One job run: the job's tries, with quick retries (p-retry) while the
   * retry policy says so. A try that may have been applied (RunState) makes
   * the next one check first. While the circuit breaker is open or GLPI's
   * Retry-After holds, no GLPI try is made: the job goes back to the durable
   * queue (write-backs go to Zabbix: neither applies to them).
   */
  async #attempt(job: Job, state: RunState): Promise<Outcome> {
    const o = this.opt;
    const glpi = isGlpiJob(job);
    let last: unknown;
    let waitMs = 0;
    return pRetry(
      async (n: number) => {
        // Several bridges on one PostgreSQL: a claim that may have lapsed (this node was stopped) sends nothing more.
        if (this.store.claimLapsed?.(job.id)) throw new AbortError(new NotSent(LAPSED));
        if (glpi) {
          const now = this.clock.now();
          // Retry-After first: a job it holds must not take the breaker's probe.
          const held = !this.#retryAfter.open(now) ? 'waiting for GLPI (Retry-After)' : !this.#breaker.admit(job.id, now) ? 'waiting for GLPI (circuit breaker open)' : undefined;
          if (held !== undefined) throw new AbortError(last === undefined ? new NotSent(held) : asError(last));
        }
        try {
          // The job's id rides along its requests only where a claim can lapse (PostgreSQL): AsyncLocalStorage turns
          // on Node's promise hooks for the whole thread, a cost on every GLPI request a single node need not pay.
          const outcome = await (this.store.claimLapsed ? sendingFor.run(job.id, () => this.#runner.run(job, state)) : this.#runner.run(job, state));
          if (glpi) this.#breaker.answered(this.clock.now());
          return outcome;
        } catch (e) {
          // A request held back mid-try (GLPI's Retry-After came to another job): the run ends, no new failure.
          if (e instanceof NotSent) throw new AbortError(last === undefined ? e : asError(last));
          last = e;
          if (glpi && e instanceof RemoteError) {
            if (e.outage) this.#breaker.down(job.id, this.clock.now(), e);
            else this.#breaker.answered(this.clock.now());
          }
          // Permanent errors, login failures and long Retry-After go straight back to the durable queue.
          const decision = this.#decide(job, e, o.quickRetries - (n - 1));
          if (decision.do !== 'retry-now') throw new AbortError(asError(e));
          waitMs = decision.waitMs;
          throw e;
        }
      },
      {
        retries: o.quickRetries,
        minTimeout: o.quickMinDelayMs,
        maxTimeout: o.quickMaxDelayMs,
        factor: 2,
        randomize: true,
        onFailedAttempt: async () => {
          if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
          waitMs = 0;
        },
      },
    ).catch((e: unknown) => {
      throw e instanceof AbortError ? e.originalError : e;
    });
  }

  /** Stop claiming work; wait for jobs in flight up to timeoutMs (the rest are retried at next start). */
  async stop(timeoutMs: number): Promise<number> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const all = Promise.allSettled([...this.#inflight.values()]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    if (timer) clearTimeout(timer);
    return this.#inflight.size;
  }
}
