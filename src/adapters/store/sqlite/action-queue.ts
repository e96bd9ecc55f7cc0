// The GLPI and Zabbix work to do (one lane per incident and kind, in order) and the run record (whether the
// last run stopped cleanly), in the state file. Written by the processing thread only (and by `queue retry`).

import type Database from 'better-sqlite3';
import { laneOf, type LaneKind } from '../../../core/coalesce.js';
import type { JobSpec } from '../../../core/decide.js';
import type { ActionQueue, IncidentRef, Job, JobStatus, QueuedJob, QueueStats, RunRecord, StateTransactions } from '../../../core/ports.js';
import { laneName, toJob, type JobRow } from '../job-row.js';
import { LimitedQuery, type MetaTable } from './database.js';
import { keyOf } from './incidents.js';

/** What stats() reports besides the jobs: alerts not decided yet (inbox), and parked deliveries (decisions.ts). */
export interface WaitingWork {
  undecided(): number;
  parked(): number;
}

export class SqliteActionQueue implements ActionQueue {
  readonly #tx: StateTransactions;
  readonly #waiting: WaitingWork;
  readonly #stmt;

  constructor(
    db: Database.Database,
    tx: StateTransactions,
    waiting: WaitingWork,
    /** Resolves once the commits made before the call are on disk (SqliteStateTransactions.flushed). */
    private readonly flushed: () => Promise<void>,
  ) {
    this.#tx = tx;
    this.#waiting = waiting;
    this.#stmt = {
      lastActiveJob: db.prepare<[string, string], { id: number; seq: number; payload: string; status: string; attempts: number }>(
        "SELECT id, seq, payload, status, attempts FROM jobs WHERE fp_key = ? AND lane = ? AND status IN ('pending', 'running') ORDER BY id DESC LIMIT 1",
      ),
      insertJob: db.prepare(
        "INSERT INTO jobs (fp_key, lane, seq, type, payload, status, next_attempt_at, delivery_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
      ),
      updatePayload: db.prepare('UPDATE jobs SET type = ?, payload = ?, updated_at = ? WHERE id = ?'),
      cancelCycle: db.prepare("UPDATE jobs SET status = 'cancelled', updated_at = ? WHERE fp_key = ? AND lane = 'glpi' AND seq = ? AND status = 'pending'"),
      // Walks due jobs in order and stops after LIMIT heads: no per-lane aggregate over the whole queue.
      // A held-back create (untried, due after the create horizon) is skipped here, not after LIMIT: a storm of new
      // incidents would otherwise fill every LIMIT with held creates and starve the due jobs queued behind them.
      ready: new LimitedQuery<[number, number], JobRow<string>>(
        db,
        `SELECT j.*, json_extract(i.state, '$.fingerprint') AS fingerprint FROM jobs j INDEXED BY jobs_ready
          LEFT JOIN incidents i ON i.fp_key = j.fp_key
          WHERE j.status = 'pending' AND j.next_attempt_at <= ?
            AND (j.type <> 'create_ticket' OR j.next_attempt_at <= ? OR j.attempts > 0)
            AND NOT EXISTS (SELECT 1 FROM jobs k WHERE k.fp_key = j.fp_key AND k.lane = j.lane AND k.status IN ('pending', 'running') AND k.id < j.id)
          ORDER BY j.next_attempt_at, j.id LIMIT ?`,
      ),
      nextDue: db.prepare<[], { t: number | null }>("SELECT MIN(next_attempt_at) AS t FROM jobs WHERE status = 'pending'"),
      claim: db.prepare("UPDATE jobs SET status = 'running', attempts = attempts + 1, updated_at = ? WHERE id = ? AND status = 'pending'"),
      finish: db.prepare("UPDATE jobs SET status = 'done', last_error = NULL, updated_at = ? WHERE id = ?"),
      deleteDone: db.prepare("DELETE FROM jobs WHERE status IN ('done', 'cancelled') AND updated_at < ?"),
      reschedule: db.prepare("UPDATE jobs SET status = 'pending', next_attempt_at = ?, last_error = ?, updated_at = ? WHERE id = ?"),
      bury: db.prepare("UPDATE jobs SET status = 'dead', last_error = ?, updated_at = ? WHERE id = ?"),
      requeueRunning: db.prepare("UPDATE jobs SET status = 'pending', updated_at = ? WHERE status = 'running'"),
      jobById: db.prepare<[number], JobRow<string>>("SELECT j.*, json_extract(i.state, '$.fingerprint') AS fingerprint FROM jobs j LEFT JOIN incidents i ON i.fp_key = j.fp_key WHERE j.id = ?"),
      jobsByStatus: db.prepare<[string, number], JobRow<string>>(
        "SELECT j.*, json_extract(i.state, '$.fingerprint') AS fingerprint FROM jobs j LEFT JOIN incidents i ON i.fp_key = j.fp_key WHERE j.status = ? ORDER BY j.id LIMIT ?",
      ),
      retryDead: db.prepare("UPDATE jobs SET status = 'pending', next_attempt_at = ?, updated_at = ? WHERE id = ? AND status = 'dead'"),
      retryAllDead: db.prepare("UPDATE jobs SET status = 'pending', next_attempt_at = ?, updated_at = ? WHERE status = 'dead'"),
      stats: db.prepare<[], { pending: number; running: number; dead: number; oldest: number | null }>(
        `SELECT
           COALESCE(SUM(status = 'pending'), 0) AS pending,
           COALESCE(SUM(status = 'running'), 0) AS running,
           COALESCE(SUM(status = 'dead'), 0) AS dead,
           MIN(CASE WHEN status IN ('pending', 'running') THEN created_at END) AS oldest
         FROM jobs WHERE status IN ('pending', 'running', 'dead')`,
      ),
    };
  }

  /** Queue a job at the end of its incident's lane (see Job.lane); storm control is services/storm-control.ts. Returns the job id. */
  enqueue(incident: IncidentRef, cycle: number, spec: JobSpec, runAt: number, now: number, deliveryId?: number): number {
    return this.#tx.transaction(() => this.#enqueue(keyOf(incident), cycle, spec, runAt, now, deliveryId), 'crash-safe');
  }

  #enqueue(key: string, cycle: number, spec: JobSpec, runAt: number, now: number, deliveryId?: number): number {
    const r = this.#stmt.insertJob.run(key, laneOf(spec), cycle, spec.type, JSON.stringify(spec), runAt, deliveryId ?? null, now, now);
    return Number(r.lastInsertRowid);
  }

  lastQueued(incident: IncidentRef, lane: LaneKind): QueuedJob | undefined {
    const last = this.#stmt.lastActiveJob.get(keyOf(incident), lane);
    if (!last) return undefined;
    return { id: last.id, cycle: last.seq, spec: JSON.parse(last.payload) as JobSpec, status: last.status === 'running' ? 'running' : 'pending', attempts: last.attempts };
  }

  /** Cancel every pending GLPI job of one ticket cycle (a held-back create and what was queued behind it). Returns how many. */
  cancelCycle(incident: IncidentRef, cycle: number, now: number): number {
    return this.#tx.transaction(() => this.#stmt.cancelCycle.run(now, keyOf(incident), cycle).changes, 'crash-safe');
  }

  /** Replace a job's payload (a dead create re-rendered with the rules in force). */
  replaceJobSpec(id: number, spec: JobSpec, now: number): void {
    this.#tx.transaction(() => this.#stmt.updatePayload.run(spec.type, JSON.stringify(spec), now, id));
  }

  /**
   * Jobs due now whose lane has nothing earlier pending or running, and
   * whose lane is not `busy` (Job.lane), marked running with attempts + 1
   * and committed before the GLPI call: after a process crash the job is
   * retried knowing an attempt may have landed.
   */
  claimReady(now: number, limit: number, busy: ReadonlySet<string>, createHorizon = now): Job[] {
    // A held-back create is due only once every delivery received before its hold-down ended is decided (one of them may cancel it).
    const rows = this.#stmt.ready
      .all(limit + busy.size, now, createHorizon)
      .filter((r) => !busy.has(laneName(r)))
      .slice(0, limit);
    if (rows.length === 0) return [];
    // Committed without a flush; the caller runs the jobs once claimsOnDisk() says they are on disk.
    return this.#tx.transaction(() => {
      for (const r of rows) this.#stmt.claim.run(now, r.id);
      return rows.map((r) => toJob({ ...r, status: 'running', attempts: r.attempts + 1 }));
    }, 'crash-safe');
  }

  /**
   * Resolves when the claims made before the call are on disk: a job reaches GLPI only once its claim — and
   * with it the decision that queued it, the job's payload and its id — is. A power cut can then roll back
   * only decisions whose jobs never ran, which are simply taken again; a job that ran comes back as
   * attempted, and checks GLPI before sending again (its tag, its marker, the ticket's status). One
   * fdatasync for the claims made while the last one ran, off the processing thread.
   */
  claimsOnDisk(): Promise<void> {
    return this.flushed();
  }

  nextDueAt(): number | undefined {
    return this.#stmt.nextDue.get()?.t ?? undefined;
  }

  /** Outcomes of jobs need no fsync: a job whose completion is lost is retried, and its retry checks GLPI first. */
  completeJob(id: number, now: number): void {
    this.#tx.transaction(() => this.#stmt.finish.run(now, id), 'crash-safe');
  }

  rescheduleJob(id: number, at: number, error: string, now: number): void {
    this.#tx.transaction(() => this.#stmt.reschedule.run(at, error, now, id), 'crash-safe');
  }

  buryJob(id: number, reason: string, now: number): void {
    this.#tx.transaction(() => this.#stmt.bury.run(reason, now, id), 'crash-safe');
  }

  /** At start: jobs left running by a crash go back to pending (their attempt count says an attempt happened). */
  requeueRunning(now: number): number {
    return this.#tx.transaction(() => this.#stmt.requeueRunning.run(now).changes);
  }

  pruneFinished(before: number): number {
    return this.#tx.transaction(() => this.#stmt.deleteDone.run(before).changes, 'crash-safe');
  }

  job(id: number): Job | undefined {
    const r = this.#stmt.jobById.get(id);
    return r ? toJob(r) : undefined;
  }

  jobs(status: JobStatus, limit = 1000): Job[] {
    return this.#stmt.jobsByStatus.all(status, limit).map(toJob);
  }

  retryDead(id: number | 'all', now: number): number {
    return this.#tx.transaction(() => (id === 'all' ? this.#stmt.retryAllDead.run(now, now).changes : this.#stmt.retryDead.run(now, now, id).changes));
  }

  stats(): QueueStats {
    const s = this.#stmt.stats.get();
    const unprocessed = this.#waiting.undecided();
    return {
      pending: s?.pending ?? 0,
      running: s?.running ?? 0,
      dead: s?.dead ?? 0,
      ...(s?.oldest != null ? { oldestPendingAt: s.oldest } : {}),
      unprocessed,
      parked: this.#waiting.parked(),
    };
  }
}

/** Meta key: '1' once a run stopped cleanly, '0' while one runs. */
const CLEAN_STOP = 'clean_stop';

export class SqliteRunRecord implements RunRecord {
  readonly #meta: MetaTable;
  readonly #tx: StateTransactions;
  readonly #markCreatesUncertain;

  constructor(db: Database.Database, meta: MetaTable, tx: StateTransactions) {
    this.#meta = meta;
    this.#tx = tx;
    this.#markCreatesUncertain = db.prepare(
      "UPDATE jobs SET attempts = MAX(attempts, 1), updated_at = ? WHERE type = 'create_ticket' AND status IN ('pending', 'running')",
    );
  }

  /**
   * Called at start. If the previous run did not stop cleanly (crash, kill -9,
   * power cut), every queued ticket creation is treated as possibly sent: its
   * next run searches GLPI for its marker before creating. Then records that
   * this run is in progress. Returns whether the previous stop was unclean.
   */
  recordStart(now: number): boolean {
    return this.#tx.transaction(() => {
      const clean = this.#meta.get(CLEAN_STOP) !== '0';
      if (!clean) this.#markCreatesUncertain.run(now);
      this.#meta.put(CLEAN_STOP, '0');
      return !clean;
    });
  }

  /** Called after a graceful stop has drained or parked its work. */
  recordCleanStop(): void {
    this.#tx.transaction(() => this.#meta.put(CLEAN_STOP, '1'));
  }
}
