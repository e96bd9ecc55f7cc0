import pRetry, { AbortError } from 'p-retry';
import { htmlText } from '../core/render.js';
import type { EventAcknowledger, TicketDesk } from '../core/ports.js';
import type { Clock } from '../adapters/clock.js';
import { RemoteError } from '../adapters/remote-error.js';
import type { Job, SqliteStore } from '../adapters/store/sqlite-store.js';
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
}

/** Write-back jobs queue under their own key, so a Zabbix outage never holds GLPI work back. */
export function writeBackKey(fingerprint: string): string {
  return `zabbix:${fingerprint}`;
}

const IDLE_POLL_MS = 2_000;

/** What a job did; a create also carries what to record with its completion. */
interface Outcome {
  readonly operation: string;
  readonly ticketId: number;
  readonly created?: { readonly marker: string; readonly eventId: string | undefined };
}

/** Thrown when a job refers to a ticket the bridge never got (its create is dead-lettered). */
class TicketMissing extends Error {}

/** Marker appended to follow-ups so that a retry after an unknown outcome can tell whether it landed. */
export function jobTag(id: number): string {
  return `[zbx-job:${id}]`;
}

/** Exponential backoff with ±20 % jitter, capped. */
export function backoff(attempt: number, minMs: number, capMs: number, random = Math.random): number {
  const raw = Math.min(capMs, minMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(raw * (0.8 + 0.4 * random()));
}

/**
 * Action queue → GLPI. Jobs of one incident run one at a time in order;
 * different incidents run in parallel up to the concurrency cap. Failures are
 * retried durably with capped backoff; permanent ones become dead letters.
 */
export class Dispatcher {
  readonly #inflight = new Map<number, Promise<void>>();
  readonly #busy = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #stopped = true;
  #pausedUntil = 0;
  #pumpQueued = false;
  #lastFailure: { signature: string; count: number; since: number; loggedAt: number } | undefined;

  constructor(
    private readonly store: SqliteStore,
    private readonly desk: TicketDesk,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    private readonly opt: DispatcherOptions,
  ) {}

  start(): void {
    this.#stopped = false;
    const now = this.clock.now();
    const unclean = this.store.beginRun(now);
    const requeued = this.store.requeueRunning(now);
    if (unclean) this.logger.warn({ jobs_in_flight: requeued }, 'previous run did not stop cleanly: queued ticket creations will look for their marker in GLPI first');
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
    const free = this.opt.concurrency - this.#inflight.size;
    if (free > 0) {
      let jobs: Job[] = [];
      try {
        jobs = this.store.claimReady(now, free, this.#busy);
      } catch (e) {
        this.logger.error({ err: (e as Error).message }, 'cannot read the job queue');
        return this.#arm(1000);
      }
      for (const job of jobs) this.#launch(job);
    }
    // Also look again when idle: `queue retry` puts dead letters back from another process.
    const due = this.store.nextDueAt();
    // Jobs due now but not claimed wait for a slot: finishing jobs pump again, no busy timer needed.
    this.#arm(due !== undefined && due > now ? due - now : IDLE_POLL_MS);
  }

  #launch(job: Job): void {
    this.#busy.add(job.fingerprint);
    const p = this.#run(job).finally(() => {
      this.#inflight.delete(job.id);
      this.#busy.delete(job.fingerprint);
      this.#pumpSoon();
    });
    this.#inflight.set(job.id, p);
  }

  async #run(job: Job): Promise<void> {
    const log = this.logger.child({ job_id: job.id, job_type: job.type, fingerprint: job.fingerprint, attempt: job.attempts });
    try {
      const outcome = await this.#attempt(job);
      try {
        const now = this.clock.now();
        this.store.transaction(() => {
          if (outcome.created) {
            this.store.putTicket(job.fingerprint, job.seq, outcome.ticketId, outcome.created.marker, now);
            this.#queueWriteBack(job, outcome.created.eventId, outcome.ticketId);
          }
          this.store.completeJob(job.id, now);
        }, 'crash');
      } catch (storeError) {
        log.error({ err: (storeError as Error).message, ticket_id: outcome.ticketId }, 'GLPI job done but not recorded; it will be checked again at next start');
        return;
      }
      this.metrics.tickets.inc({ operation: outcome.operation });
      if (this.#lastFailure) {
        log.info({ failures: this.#lastFailure.count, since: new Date(this.#lastFailure.since).toISOString() }, 'GLPI is answering again');
        this.#lastFailure = undefined;
      }
      log.info({ ticket_id: outcome.ticketId, ticket_url: outcome.ticketId > 0 ? this.desk.ticketUrl(outcome.ticketId) : undefined, operation: outcome.operation }, 'GLPI job done');
    } catch (e) {
      try {
        this.#failed(job, e, log);
      } catch (storeError) {
        // The store is gone (shutdown) or broken: the job stays "running" and is retried at next start.
        log.error({ err: (storeError as Error).message }, 'cannot record the job outcome');
      }
    }
  }

  #failed(job: Job, e: unknown, log: Logger): void {
    const now = this.clock.now();
    if (e instanceof TicketMissing || (e instanceof RemoteError && e.kind === 'permanent')) {
      const reason = e instanceof RemoteError ? `GLPI_PERMANENT ${e.code}: ${e.message}` : `GLPI_TICKET_MISSING: ${e.message}`;
      this.store.buryJob(job.id, reason, now);
      this.metrics.deadLetters.inc({ type: job.type });
      log.error({ reason }, 'job moved to dead letters');
      return;
    }
    const err = e instanceof RemoteError ? e : new RemoteError('retryable', 'UNEXPECTED', (e as Error).message ?? String(e));
    let delay = Math.max(backoff(job.attempts, this.opt.minDelayMs, this.opt.backoffCapMs), err.retryAfterMs ?? 0);
    if (err.kind === 'login') {
      // Every job would fail the same way: pause all dispatch instead of looping on logins.
      delay = Math.max(delay, 30_000);
      this.#pausedUntil = now + delay;
    }
    this.store.rescheduleJob(job.id, now + delay, `${err.code}: ${err.message}`, now);
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

  /**
   * One job run: the operation with quick retries (p-retry). Every retry
   * after the first try is "uncertain" (GLPI may have committed before the
   * failure), so the operation first checks whether it already landed.
   */
  async #attempt(job: Job): Promise<Outcome> {
    const o = this.opt;
    return pRetry(
      async (n: number) => {
        try {
          return await this.#execute(job, job.attempts > 1 || n > 1);
        } catch (e) {
          // Permanent errors, login failures and long Retry-After go straight back to the durable queue.
          const quick = e instanceof RemoteError && e.kind === 'retryable' && (e.retryAfterMs ?? 0) <= o.quickMaxDelayMs;
          if (!quick) throw new AbortError(e instanceof Error ? e : new Error(String(e)));
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

  #queueWriteBack(job: Job, eventId: string | undefined, ticketId: number): void {
    const wb = this.opt.writeBack;
    if (!wb || eventId === undefined) return;
    const message = `${wb.prefix} GLPI ticket #${ticketId}: ${this.desk.ticketUrl(ticketId)}`;
    const now = this.clock.now();
    this.store.enqueue(writeBackKey(job.fingerprint), job.seq, { type: 'zabbix_ack', eventIds: [eventId], message, acknowledge: wb.acknowledge }, now, now);
  }

  #ticketOf(job: Job): number {
    const id = this.store.ticketId(job.fingerprint, job.seq);
    if (id === undefined) throw new TicketMissing(`incident ${job.fingerprint} #${job.seq} has no GLPI ticket (its create job failed; see the dead letters)`);
    return id;
  }

  /** A follow-up sent at most once: on a retry after an unknown outcome, look for the job's tag first. */
  async #followupOnce(job: Job, uncertain: boolean, ticketId: number, lines: readonly string[], options: { isPrivate: boolean; reopen?: boolean }): Promise<void> {
    const tag = jobTag(job.id);
    if (uncertain) {
      const existing = await this.desk.followupContents(ticketId);
      if (existing.some((c) => c.includes(tag))) return;
    }
    await this.desk.addFollowup(ticketId, `${htmlText(lines)}<br>\n<small>${tag}</small>`, options);
  }

  async #execute(job: Job, uncertain: boolean): Promise<Outcome> {
    const spec = job.spec;
    switch (spec.type) {
      case 'create_ticket': {
        const known = this.store.ticketId(job.fingerprint, job.seq);
        if (known !== undefined) return { operation: 'opened', ticketId: known };
        if (uncertain) {
          const found = await this.desk.findTicketByMarker(spec.ticket.marker);
          if (found !== undefined) return { operation: 'adopted', ticketId: found, created: { marker: spec.ticket.marker, eventId: spec.eventId } };
        }
        const id = await this.desk.createTicket(spec.ticket);
        return { operation: 'opened', ticketId: id, created: { marker: spec.ticket.marker, eventId: spec.eventId } };
      }
      case 'zabbix_ack': {
        const wb = this.opt.writeBack;
        if (!wb) throw new RemoteError('permanent', 'ZABBIX_NOT_CONFIGURED', 'write-back queued but zabbix.url is no longer configured');
        const first = spec.eventIds[0];
        if (uncertain && first !== undefined && (await wb.zabbix.hasMessage(first, spec.message))) return { operation: 'written_back', ticketId: 0 };
        await wb.zabbix.acknowledge(spec.eventIds, spec.message, spec.acknowledge);
        return { operation: 'written_back', ticketId: 0 };
      }
      case 'followup': {
        const id = this.#ticketOf(job);
        await this.#followupOnce(job, uncertain, id, spec.lines, { isPrivate: spec.isPrivate });
        return { operation: 'followed_up', ticketId: id };
      }
      case 'update_ticket': {
        const id = this.#ticketOf(job);
        await this.desk.updateTicket(id, { urgency: spec.urgency, impact: spec.impact });
        await this.#followupOnce(job, uncertain, id, spec.lines, { isPrivate: spec.isPrivate });
        return { operation: 'updated', ticketId: id };
      }
      case 'solve': {
        const id = this.#ticketOf(job);
        if (spec.mode === 'followup') {
          await this.#followupOnce(job, uncertain, id, spec.lines, { isPrivate: false });
          return { operation: 'followed_up', ticketId: id };
        }
        await this.desk.addSolution(id, htmlText(spec.lines), this.opt.solutionTypeId);
        if (spec.mode === 'close') {
          await this.desk.updateTicket(id, { status: 6 });
          return { operation: 'closed', ticketId: id };
        }
        return { operation: 'solved', ticketId: id };
      }
      case 'reopen': {
        const id = this.#ticketOf(job);
        await this.#followupOnce(job, uncertain, id, spec.lines, { isPrivate: false, reopen: true });
        return { operation: 'reopened', ticketId: id };
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
