import pRetry, { AbortError } from 'p-retry';
import { htmlText } from '../core/render.js';
import type { Clock, DispatchStore, EventAcknowledger, Job, TicketDesk } from '../core/ports.js';
import { queueJob } from './storm-control.js';
import { RemoteError } from '../core/remote-error.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

export interface DispatcherOptions {
  /** Jobs (so GLPI requests) in flight at once. */
  readonly concurrency: number;
  /** Quick retries of one job run (p-retry, exponential backoff with jitter) before it goes back to the durable queue. */
  readonly quickRetries: number;
  readonly quickMinDelayMs: number;
  readonly quickMaxDelayMs: number;
  /** First durable retry delay; doubles per attempt up to backoffCapMs, with jitter. */
  readonly minDelayMs: number;
  readonly backoffCapMs: number;
  readonly solutionTypeId: number;
  /** Write the ticket link back to Zabbix after a create (absent: no write-back). */
  readonly writeBack?: { readonly zabbix: EventAcknowledger; readonly prefix: string; readonly acknowledge: boolean };
  /**
   * A followup, update_ticket or reopen job found its ticket closed in GLPI
   * (GLPI refused it and the ticket's status is 6): the job is complete, and
   * the incident needs a new ticket cycle. Called after the job's completion
   * is recorded. A solve job on a closed ticket simply counts as done.
   */
  readonly onTicketClosed?: (job: Job, ticketId: number) => void;
  /** Longest wait between two probes while GLPI is down (default 30 s, or backoffCapMs if lower). */
  readonly probeMaxDelayMs?: number;
  /** Until when held-back creates may run: every alert received before then is decided (Processor.createHorizon). Default: now. */
  readonly createHorizon?: (now: number) => number;
}

const IDLE_POLL_MS = 2_000;
const CLOSED = 6;
/** GLPI's refusals of an add or an update (their message is translated: never parsed). */
const REFUSALS = new Set(['ERROR_GLPI_ADD', 'ERROR_GLPI_UPDATE']);

/** What a job did; a create also carries what to record with its completion. */
interface Outcome {
  readonly operation: string;
  readonly ticketId: number;
  readonly created?: { readonly marker: string; readonly eventId: string | undefined };
  /** The ticket turned out closed in GLPI: the incident needs a new cycle (see onTicketClosed). */
  readonly closedInGlpi?: boolean;
}

/**
 * What one job run knows between its tries: whether an earlier try (in this
 * run or an earlier one) may have been applied in GLPI without the bridge
 * hearing of it. Only then is GLPI read before sending again.
 */
interface RunState {
  uncertain: boolean;
}

/** Thrown when a job refers to a ticket the bridge never got (its create is dead-lettered). */
class TicketMissing extends Error {}

/** A job that had not sent anything yet when the circuit breaker opened: back to the queue, not a failure. */
class BreakerOpen extends Error {}

/** Marker appended to follow-ups so that a retry after an unknown outcome can tell whether it landed. */
export function jobTag(id: number): string {
  return `[zbx-job:${id}]`;
}

/** Exponential backoff with ±20 % jitter, capped. */
export function backoff(attempt: number, minMs: number, capMs: number, random = Math.random): number {
  const raw = Math.min(capMs, minMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(raw * (0.8 + 0.4 * random()));
}

/*
 * Whether a queued job may already have been applied in GLPI travels with it
 * in its last error (no schema change): a job is read back from GLPI before
 * it is sent again only when a try may have landed (a timeout, a reset after
 * sending, a 500), not after a refused connection or a proxy's 503.
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

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

export type BreakerState = 'closed' | 'open' | 'half_open';

/** Value of the zgb_glpi_circuit_state gauge. */
export const BREAKER_GAUGE: Readonly<Record<BreakerState, number>> = { closed: 0, half_open: 1, open: 2 };

export interface BreakerChange {
  readonly state: BreakerState;
  readonly previous: BreakerState;
  /** Since the breaker opened (0 when it just did). */
  readonly downForMs: number;
  /** Probes sent during this outage. */
  readonly probes: number;
  /** When the next probe may go (open). */
  readonly retryAt?: number;
  /** The failure that opened (or re-opened) it. */
  readonly cause?: RemoteError;
}

/**
 * One circuit breaker for GLPI, shared by every job of the dispatcher.
 * Closed: jobs run. A failure that says GLPI is down (network error, 5xx,
 * 429) opens it: no job starts, and no job in flight tries again, until the
 * backoff has passed. Then exactly one job probes (half-open): any answer
 * from GLPI closes the breaker, another "down" opens it again with twice the
 * backoff (capped; at least Retry-After).
 */
export class CircuitBreaker {
  #state: BreakerState = 'closed';
  #since = 0;
  #retryAt = 0;
  #failedProbes = 0;
  #probes = 0;
  #probe: number | undefined;

  constructor(
    private readonly opt: { readonly minDelayMs: number; readonly maxDelayMs: number; readonly random?: () => number },
    private readonly onChange: (change: BreakerChange) => void = () => undefined,
  ) {}

  get state(): BreakerState {
    return this.#state;
  }

  /** When the next probe may go; 0 while closed. */
  get retryAt(): number {
    return this.#state === 'closed' ? 0 : this.#retryAt;
  }

  /** What may start now: every job, exactly one (the probe), or nothing until `until`. */
  gate(now: number): { readonly run: 'all' } | { readonly run: 'one' } | { readonly run: 'none'; readonly until: number } {
    if (this.#state === 'closed') return { run: 'all' };
    // Half-open: the probe's end pumps again; look anyway now and then.
    if (this.#state === 'half_open') return { run: 'none', until: now + 1_000 };
    return now >= this.#retryAt ? { run: 'one' } : { run: 'none', until: this.#retryAt };
  }

  /** Whether this job may send now. When the breaker is ready for a probe, the asking job becomes it. */
  admit(jobId: number, now: number): boolean {
    if (this.#state === 'closed') return true;
    if (this.#state === 'half_open') return this.#probe === jobId;
    if (now < this.#retryAt) return false;
    this.#probe = jobId;
    this.#probes++;
    this.#set('half_open', now);
    return true;
  }

  /** GLPI answered (a success, or GLPI's own refusal): it is up. */
  answered(now: number): void {
    if (this.#state === 'closed') return;
    this.#probe = undefined;
    this.#set('closed', now);
    this.#failedProbes = 0;
    this.#probes = 0;
  }

  /** A failure that says GLPI is down. */
  down(jobId: number, now: number, cause: RemoteError): void {
    const wait = cause.retryAfterMs ?? 0;
    if (this.#state === 'closed') {
      this.#since = now;
      this.#failedProbes = 0;
      this.#probes = 0;
      this.#retryAt = now + Math.max(this.#delay(1), wait);
      this.#set('open', now, cause);
    } else if (this.#state === 'half_open' && this.#probe === jobId) {
      this.#probe = undefined;
      this.#failedProbes++;
      this.#retryAt = now + Math.max(this.#delay(this.#failedProbes + 1), wait);
      this.#set('open', now, cause);
    } else {
      // A job that was in flight when the breaker opened: only a longer Retry-After counts.
      this.#retryAt = Math.max(this.#retryAt, now + wait);
    }
  }

  /** The job ends without having told whether GLPI is up (it sent nothing): another job may probe. */
  release(jobId: number, now: number): void {
    if (this.#state !== 'half_open' || this.#probe !== jobId) return;
    this.#probe = undefined;
    this.#retryAt = now;
    this.#set('open', now);
  }

  #delay(n: number): number {
    return backoff(n, this.opt.minDelayMs, Math.max(this.opt.minDelayMs, this.opt.maxDelayMs), this.opt.random);
  }

  #set(state: BreakerState, now: number, cause?: RemoteError): void {
    const previous = this.#state;
    this.#state = state;
    this.onChange({
      state,
      previous,
      downForMs: now - this.#since,
      probes: this.#probes,
      ...(state === 'open' ? { retryAt: this.#retryAt } : {}),
      ...(cause ? { cause } : {}),
    });
  }
}

/**
 * Action queue → GLPI. Jobs of one incident run one at a time in order;
 * different incidents run in parallel up to the concurrency cap. Failures are
 * retried durably with capped backoff; permanent ones become dead letters.
 * While GLPI is down, a circuit breaker holds every job back and lets one
 * probe at a time find out when it is back.
 */
export class Dispatcher {
  readonly #inflight = new Map<number, Promise<void>>();
  /** Lanes (Job.lane) with a job in flight: the next job of a lane waits for it. */
  readonly #busy = new Set<string>();
  readonly #breaker: CircuitBreaker;
  /** Create jobs whose marker search found nothing in this process, with no POST since that may have landed. */
  readonly #searched = new Set<number>();
  #timer: NodeJS.Timeout | undefined;
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
    this.#breaker = new CircuitBreaker({ minDelayMs: opt.quickMinDelayMs, maxDelayMs: probeMax }, (c) => this.#breakerChanged(c));
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
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
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

  #arm(delayMs: number): void {
    if (this.#stopped) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#pump(), Math.max(5, Math.min(delayMs, 5_000)));
  }

  #pump(): void {
    if (this.#stopped) return;
    const now = this.clock.now();
    if (now < this.#pausedUntil) return this.#arm(this.#pausedUntil - now);
    // GLPI down: nothing starts (write-backs to Zabbix wait too) until one probe may go.
    const gate = this.#breaker.gate(now);
    if (gate.run === 'none') return this.#arm(gate.until - now);
    let free = this.opt.concurrency - this.#inflight.size;
    if (gate.run === 'one') free = Math.min(free, 1);
    if (free > 0) {
      let jobs: Job[] = [];
      try {
        jobs = this.store.claimReady(now, free, this.#busy, this.opt.createHorizon?.(now) ?? now);
      } catch (e) {
        this.logger.error({ err: (e as Error).message }, 'cannot read the job queue');
        return this.#arm(1000);
      }
      for (const job of jobs) {
        // The probe is chosen now, before another pump in this turn could pick a second one.
        if (gate.run === 'one' && isGlpiJob(job)) this.#breaker.admit(job.id, now);
        this.#launch(job);
      }
    }
    // Also look again when idle: `queue retry` puts dead letters back from another process.
    const due = this.store.nextDueAt();
    // Jobs due now but not claimed wait for a slot: finishing jobs pump again, no busy timer needed.
    this.#arm(due !== undefined && due > now ? due - now : IDLE_POLL_MS);
  }

  #launch(job: Job): void {
    this.#busy.add(job.lane);
    const p = this.#run(job).finally(() => {
      this.#inflight.delete(job.id);
      this.#busy.delete(job.lane);
      this.#pumpSoon();
    });
    this.#inflight.set(job.id, p);
  }

  /** Whether the job's run starts unsure that its earlier tries were not applied in GLPI. */
  #startsUncertain(job: Job): boolean {
    const said = landingOf(job.lastError);
    // An error stored without the landing note (older version): any earlier attempt may have landed.
    return said ?? job.attempts > 1;
  }

  async #run(job: Job): Promise<void> {
    const log = this.logger.child({ job_id: job.id, job_type: job.type, fingerprint: job.fingerprint, attempt: job.attempts });
    const state: RunState = { uncertain: this.#startsUncertain(job) };
    try {
      const outcome = await this.#attempt(job, state);
      try {
        const now = this.clock.now();
        this.store.transaction(() => {
          if (outcome.created) {
            this.store.putTicket(job, job.cycle, outcome.ticketId, outcome.created.marker, now);
            this.#queueWriteBack(job, outcome.created.eventId, outcome.ticketId);
          }
          this.store.completeJob(job.id, now);
        }, 'crash-safe');
      } catch (storeError) {
        log.error({ err: (storeError as Error).message, ticket_id: outcome.ticketId }, 'GLPI job done but not recorded; it will be checked again at next start');
        return;
      }
      this.#searched.delete(job.id);
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

  #failed(job: Job, e: unknown, state: RunState, log: Logger): void {
    const now = this.clock.now();
    if (e instanceof BreakerOpen) {
      // Nothing was sent: back in the queue until the breaker lets a probe go; not a failure.
      this.store.rescheduleJob(job.id, Math.max(now + 5, this.#breaker.retryAt), withLanding(job.lastError ?? 'waiting for GLPI (circuit breaker open)', state.uncertain), now);
      return;
    }
    if (e instanceof TicketMissing || (e instanceof RemoteError && e.kind === 'permanent')) {
      this.#searched.delete(job.id);
      const reason = e instanceof RemoteError ? `GLPI_PERMANENT ${e.code}: ${e.message}` : `GLPI_TICKET_MISSING: ${e.message}`;
      this.store.buryJob(job.id, withLanding(reason, state.uncertain), now);
      this.metrics.deadLetters.inc({ type: job.type });
      log.error({ reason }, 'job moved to dead letters');
      return;
    }
    const err = e instanceof RemoteError ? e : new RemoteError('retryable', 'UNEXPECTED', (e as Error).message ?? String(e));
    let delay = Math.max(backoff(job.attempts, this.opt.minDelayMs, this.opt.backoffCapMs), err.retryAfterMs ?? 0);
    // GLPI down: the breaker decides when to try again, not the job's own attempt count.
    if (err.outage && isGlpiJob(job)) delay = Math.max(this.#breaker.retryAt - now, err.retryAfterMs ?? 0, this.opt.quickMinDelayMs);
    if (err.kind === 'login') {
      // Every job would fail the same way: pause all dispatch instead of looping on logins.
      delay = Math.max(delay, 30_000);
      this.#pausedUntil = now + delay;
    }
    this.store.rescheduleJob(job.id, now + delay, withLanding(`${err.code}: ${err.message}`, state.uncertain), now);
    this.metrics.jobRetries.inc({ type: job.type });
    this.#logFailure(err, delay, log);
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
   * One job run: the operation with quick retries (p-retry). A try that may
   * have been applied in GLPI (RunState) makes the next one check first.
   * While the circuit breaker is open, no try is made: the job goes back to
   * the durable queue (GLPI jobs only; write-backs go to Zabbix).
   */
  async #attempt(job: Job, state: RunState): Promise<Outcome> {
    const o = this.opt;
    const glpi = isGlpiJob(job);
    let last: unknown;
    return pRetry(
      async (n: number) => {
        if (glpi && !this.#breaker.admit(job.id, this.clock.now())) throw new AbortError(n === 1 || last === undefined ? new BreakerOpen() : asError(last));
        try {
          const outcome = await this.#executeFresh(job, state);
          if (glpi) this.#breaker.answered(this.clock.now());
          return outcome;
        } catch (e) {
          last = e;
          if (glpi && e instanceof RemoteError) {
            if (e.outage) this.#breaker.down(job.id, this.clock.now(), e);
            else this.#breaker.answered(this.clock.now());
          }
          // Permanent errors, login failures and long Retry-After go straight back to the durable queue.
          const quick = e instanceof RemoteError && e.kind === 'retryable' && (e.retryAfterMs ?? 0) <= o.quickMaxDelayMs;
          if (!quick) throw new AbortError(asError(e));
          throw e;
        }
      },
      {
        retries: o.quickRetries,
        minTimeout: o.quickMinDelayMs,
        maxTimeout: o.quickMaxDelayMs,
        factor: 2,
        randomize: true,
        onFailedAttempt: async ({ error }) => {
          const wait = error instanceof RemoteError ? (error.retryAfterMs ?? 0) : 0;
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        },
      },
    ).catch((e: unknown) => {
      throw e instanceof AbortError ? e.originalError : e;
    });
  }

  /**
   * A request sent on a keep-alive connection GLPI's web server had already
   * closed is not a failure: the operation runs again at once (the client
   * opens a fresh connection), checking first whether it landed.
   */
  async #executeFresh(job: Job, state: RunState): Promise<Outcome> {
    try {
      return await this.#execute(job, state);
    } catch (e) {
      if (!(e instanceof RemoteError) || !e.staleConnection) throw e;
      return this.#execute(job, state);
    }
  }

  /** A request that may apply something in GLPI: when its failure says it may have been applied, the next try checks first. */
  async #write<T>(state: RunState, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (e) {
      if (!(e instanceof RemoteError) || e.mayHaveLanded) state.uncertain = true;
      throw e;
    }
  }

  #queueWriteBack(job: Job, eventId: string | undefined, ticketId: number): void {
    const wb = this.opt.writeBack;
    if (!wb || eventId === undefined) return;
    const message = `${wb.prefix} GLPI ticket #${ticketId}: ${this.desk.ticketUrl(ticketId)}`;
    const now = this.clock.now();
    // A zabbix_ack job runs in the incident's write-back lane (see Job.lane): a Zabbix outage never holds GLPI work back.
    queueJob(this.store, job, job.cycle, { type: 'zabbix_ack', eventIds: [eventId], message, acknowledge: wb.acknowledge }, now, now);
  }

  #ticketOf(job: Job): number {
    const id = this.store.ticketId(job, job.cycle);
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

  async #execute(job: Job, state: RunState): Promise<Outcome> {
    const spec = job.spec;
    switch (spec.type) {
      case 'create_ticket': {
        const known = this.store.ticketId(job, job.cycle);
        if (known !== undefined) return { operation: 'opened', ticketId: known };
        const created = { marker: spec.ticket.marker, eventId: spec.eventId };
        // Every create looks for its marker before its first POST: a state file rolled back by a power cut re-takes decisions.
        if (state.uncertain || !this.#searched.has(job.id)) {
          const found = await this.desk.findTicketByMarker(spec.ticket.marker);
          if (found !== undefined) return { operation: 'adopted', ticketId: found, created };
          if (this.#searched.size >= 10_000) this.#searched.clear();
          this.#searched.add(job.id);
          state.uncertain = false;
        }
        const id = await this.#write(state, () => this.desk.createTicket(spec.ticket));
        return { operation: 'opened', ticketId: id, created };
      }
      case 'zabbix_ack': {
        const wb = this.opt.writeBack;
        if (!wb) throw new RemoteError('permanent', 'ZABBIX_NOT_CONFIGURED', 'write-back queued but zabbix.url is no longer configured');
        const first = spec.eventIds[0];
        if (state.uncertain && first !== undefined) {
          if (await wb.zabbix.hasMessage(first, spec.message)) return { operation: 'written_back', ticketId: 0 };
          state.uncertain = false;
        }
        await this.#write(state, () => wb.zabbix.acknowledge(spec.eventIds, spec.message, spec.acknowledge));
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
        const result = await this.desk.addSolution(id, htmlText(spec.lines), this.opt.solutionTypeId);
        if (result === 'already_closed') return { operation: 'found_closed', ticketId: id };
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
    }
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

/** Jobs that talk to GLPI (write-backs talk to Zabbix). */
function isGlpiJob(job: Job): boolean {
  return job.type !== 'zabbix_ack';
}
