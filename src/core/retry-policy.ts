/*
 * When a failed job is tried again, and when GLPI may be asked at all: plain
 * data in, a decision out. The dispatcher (services/dispatcher.ts) carries the
 * decisions out; nothing here sends, sleeps or reads a clock.
 *
 *   - backoff: exponential with ±20 % jitter, capped;
 *   - RetryAfterWindow: GLPI's Retry-After holds every GLPI request, not only
 *     the one that got it;
 *   - CircuitBreaker: GLPI down → no job starts, one probe at a time;
 *   - decideRetry: a failure and where its job stands → retry now (in this
 *     run), retry later (at a time, from the durable queue), or dead letter.
 */

import type { FailureKind, RemoteError } from './remote-error.js';

/** Exponential backoff with ±20 % jitter, capped. `attempt` counts from 1. */
export function backoff(attempt: number, minMs: number, capMs: number, random: () => number = Math.random): number {
  const raw = Math.min(capMs, minMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(raw * (0.8 + 0.4 * random()));
}

// ---------------------------------------------------------------------------
// Retry-After

/**
 * GLPI said "not before": a Retry-After (429, or 503 with the header) on any
 * request holds every GLPI request of every job until then. Answers to other
 * requests do not shorten it (the circuit breaker may close meanwhile); a
 * later, longer Retry-After extends it. Zabbix (write-backs) is another
 * server: its requests never wait for this.
 */
export class RetryAfterWindow {
  #until = 0;

  /** Until when GLPI asked to wait (0, or a time past, when it did not). */
  get until(): number {
    return this.#until;
  }

  /** A GLPI answer carried Retry-After: `ms` from `now`. */
  note(now: number, ms: number): void {
    this.#until = Math.max(this.#until, now + Math.max(0, ms));
  }

  /** Whether a GLPI request may be sent now. */
  open(now: number): boolean {
    return now >= this.#until;
  }
}

// ---------------------------------------------------------------------------
// The circuit breaker

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

/** What may start now: every job, exactly one (the probe), or nothing until `until`. */
export type Gate = { readonly run: 'all' } | { readonly run: 'one' } | { readonly run: 'none'; readonly until: number };

/**
 * One circuit breaker for GLPI, shared by every job of the dispatcher.
 * Closed: jobs run. `openAfter` failures in a row that say GLPI is down
 * (network error, 5xx, 429), with no answer from GLPI between them, open it:
 * no job starts, and no job in flight tries again, until the backoff has
 * passed. (A GLPI that answers most requests and fails some, e.g. 500s under
 * load, is not down: each failed job is retried on its own backoff, the
 * others go on.) Then exactly one job probes (half-open): any answer
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
  /** "Down" failures in a row while closed. */
  #downInARow = 0;

  constructor(
    private readonly opt: { readonly minDelayMs: number; readonly maxDelayMs: number; readonly openAfter?: number; readonly random?: () => number },
    private readonly onChange: (change: BreakerChange) => void = () => undefined,
  ) {}

  get state(): BreakerState {
    return this.#state;
  }

  /** When the next probe may go; 0 while closed. */
  get retryAt(): number {
    return this.#state === 'closed' ? 0 : this.#retryAt;
  }

  gate(now: number): Gate {
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
    this.#downInARow = 0;
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
      if (++this.#downInARow < (this.opt.openAfter ?? 1)) return;
      this.#downInARow = 0;
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

// ---------------------------------------------------------------------------
// The retry decision

export interface RetryPolicy {
  /** Tries of one run after the first (p-retry), for a retryable failure whose Retry-After is at most quickMaxDelayMs. */
  readonly quickRetries: number;
  readonly quickMinDelayMs: number;
  readonly quickMaxDelayMs: number;
  /** First durable retry delay; doubles per attempt up to backoffCapMs, with jitter. */
  readonly minDelayMs: number;
  readonly backoffCapMs: number;
}

/** What went wrong, as the decision needs it. */
export type Failure =
  /**
   * Nothing was sent: the circuit breaker or GLPI's Retry-After held the job back, or (`waitMs`) the job waits
   * that long for another lane's work (services/job-runner.ts NotYet). Not a failure of the job.
   */
  | { readonly kind: 'not-sent'; readonly waitMs?: number }
  /** The job acts on a ticket the bridge never got (its create is a dead letter). */
  | { readonly kind: 'ticket-missing' }
  /** The remote system's failure, sorted by its adapter. */
  | { readonly kind: FailureKind; readonly retryAfterMs?: number | undefined; readonly outage?: boolean | undefined }
  /** A bug or a surprise (not a RemoteError): retried with backoff. */
  | { readonly kind: 'unexpected' };

/** Where the job stands when it failed. */
export interface RetryContext {
  readonly now: number;
  /** The job's attempts (claims) so far, this one included. */
  readonly attempts: number;
  /** A GLPI job (a write-back goes to Zabbix: GLPI's breaker and Retry-After do not apply). */
  readonly glpi: boolean;
  /** Tries left in this run (0: the run is over; the job goes back to the durable queue). */
  readonly quickRetriesLeft: number;
  /** When the circuit breaker lets a probe go (0 while closed). */
  readonly breakerRetryAt: number;
  /** Until when GLPI asked every request to wait (RetryAfterWindow.until; 0: it did not). */
  readonly glpiNotBefore: number;
  /** Jitter source (tests pin it). */
  readonly random?: () => number;
}

/** Failures that every job would meet alike pause all dispatch for at least this long. */
export const LOGIN_PAUSE_MS = 30_000;
/** A job held back without sending goes back to the queue at least this far ahead. */
export const NOT_SENT_MIN_DELAY_MS = 5;

export type RetryDecision =
  /** Try again in this run, after p-retry's short backoff and at least `waitMs` (a short Retry-After). */
  | { readonly do: 'retry-now'; readonly waitMs: number }
  /**
   * Back to the durable queue until `at`. `failed`: a failure of the job (counted, logged); not for a job
   * held back before sending. `pauseDispatch`: nothing at all runs until `at` (GLPI refuses the credentials).
   */
  | { readonly do: 'retry-later'; readonly at: number; readonly failed: boolean; readonly pauseDispatch: boolean }
  /** A dead letter, kept with its reason until the operator's `queue retry`. */
  | { readonly do: 'dead-letter'; readonly code: 'GLPI_PERMANENT' | 'GLPI_TICKET_MISSING' };

/** What to do after a failure. */
export function decideRetry(failure: Failure, ctx: RetryContext, policy: RetryPolicy): RetryDecision {
  if (failure.kind === 'not-sent') {
    const glpiWait = ctx.glpi ? Math.max(ctx.breakerRetryAt, ctx.glpiNotBefore) : 0;
    return { do: 'retry-later', at: Math.max(ctx.now + Math.max(NOT_SENT_MIN_DELAY_MS, failure.waitMs ?? 0), glpiWait), failed: false, pauseDispatch: false };
  }
  if (failure.kind === 'ticket-missing') return { do: 'dead-letter', code: 'GLPI_TICKET_MISSING' };
  if (failure.kind === 'permanent') return { do: 'dead-letter', code: 'GLPI_PERMANENT' };
  const retryAfter = 'retryAfterMs' in failure ? (failure.retryAfterMs ?? 0) : 0;
  // Retryable with at most a short Retry-After: again in this run. Anything else goes back to the durable queue.
  if (failure.kind === 'retryable' && retryAfter <= policy.quickMaxDelayMs && ctx.quickRetriesLeft > 0) return { do: 'retry-now', waitMs: retryAfter };
  let delay = Math.max(backoff(ctx.attempts, policy.minDelayMs, policy.backoffCapMs, ctx.random), retryAfter);
  // GLPI down: the breaker decides when to try again, not the job's own attempt count.
  const outage = 'outage' in failure && failure.outage === true;
  if (outage && ctx.glpi) delay = Math.max(ctx.breakerRetryAt - ctx.now, retryAfter, policy.quickMinDelayMs);
  // Every job would fail the same way: pause all dispatch instead of looping on logins.
  if (failure.kind === 'login') delay = Math.max(delay, LOGIN_PAUSE_MS);
  // GLPI asked to wait (this job's request, or another's): no GLPI job runs before then.
  const at = Math.max(ctx.now + delay, ctx.glpi ? ctx.glpiNotBefore : 0);
  return { do: 'retry-later', at, failed: true, pauseDispatch: failure.kind === 'login' };
}
