import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Alert } from '../../core/alert.js';
import { coalesce } from '../../core/coalesce.js';
import type { Incident, JobSpec, JobType } from '../../core/decide.js';

/** Forward-only migrations; the index + 1 is the schema version. */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_key TEXT NOT NULL UNIQUE,
    received_at INTEGER NOT NULL,
    source TEXT NOT NULL,
    alert TEXT NOT NULL,
    processed_at INTEGER,
    fingerprint TEXT,
    action TEXT,
    reason TEXT
  );
  CREATE INDEX deliveries_unprocessed ON deliveries(id) WHERE processed_at IS NULL;
  CREATE TABLE incidents (
    fingerprint TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE tickets (
    fingerprint TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ticket_id INTEGER NOT NULL,
    marker TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (fingerprint, seq)
  );
  CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT,
    delivery_id INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE INDEX jobs_by_fingerprint ON jobs(fingerprint, id) WHERE status IN ('pending', 'running');
  CREATE INDEX jobs_ready ON jobs(next_attempt_at, id) WHERE status = 'pending';
  CREATE INDEX jobs_dead ON jobs(id) WHERE status = 'dead';
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  `,
];

export type JobStatus = 'pending' | 'running' | 'done' | 'dead' | 'cancelled';

export interface Job {
  readonly id: number;
  readonly fingerprint: string;
  readonly seq: number;
  readonly type: JobType;
  readonly spec: JobSpec;
  readonly status: JobStatus;
  readonly attempts: number;
  readonly nextAttemptAt: number;
  readonly lastError?: string;
  readonly deliveryId?: number;
  readonly createdAt: number;
}

export interface NewDelivery {
  readonly key: string;
  readonly receivedAt: number;
  readonly alert: Alert;
}

export interface Accepted {
  readonly deliveryId: number;
  readonly duplicate: boolean;
}

export interface PendingDelivery {
  readonly id: number;
  readonly alert: Alert;
  readonly receivedAt: number;
}

export interface QueueStats {
  readonly pending: number;
  readonly running: number;
  readonly dead: number;
  readonly oldestPendingAt?: number;
  readonly unprocessed: number;
}

interface JobRow {
  id: number;
  fingerprint: string;
  seq: number;
  type: string;
  payload: string;
  status: string;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  delivery_id: number | null;
  created_at: number;
}

function toJob(r: JobRow): Job {
  return {
    id: r.id,
    fingerprint: r.fingerprint,
    seq: r.seq,
    type: r.type as JobType,
    spec: JSON.parse(r.payload) as JobSpec,
    status: r.status as JobStatus,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    ...(r.last_error !== null ? { lastError: r.last_error } : {}),
    ...(r.delivery_id !== null ? { deliveryId: r.delivery_id } : {}),
    createdAt: r.created_at,
  };
}

/**
 * How much a commit must survive. `power`: an fsync before the commit returns
 * (the intake's acknowledgement to Zabbix, the claim of a ticket creation).
 * `crash`: survives the process being killed, and a power loss may lose the
 * tail of the log — used for state the bridge can rebuild (decisions are
 * re-taken from the inbox) or check again (a completed job is retried
 * idempotently). The WAL is sequential, so a `power` commit also makes every
 * earlier commit durable.
 */
export type Durability = 'power' | 'crash';

export interface StoreOptions {
  readonly synchronous?: 'full' | 'normal';
  /** Cap on the file in bytes (0: none). */
  readonly maxSizeBytes?: number;
  /**
   * Shared by the connections of one daemon (main thread and processing
   * thread): while the intake has alerts waiting to be committed, the other
   * connection starts no new write transaction (waits a few milliseconds at
   * most). SQLite's busy handler is not fair; this keeps the 202 fast under
   * a backlog.
   */
  readonly intakeGate?: { readonly buffer: SharedArrayBuffer; readonly side: 'intake' | 'writer' };
  /** Run WAL checkpoints from this connection's commits (off for the intake connection: the processing one does them). */
  readonly autoCheckpoint?: boolean;
}

/** Thrown by acceptDeliveries({ wait: false }) when another connection holds the write lock: try again soon. */
export class StoreBusy extends Error {
  constructor() {
    super('the state file is locked by another writer');
  }
}

const BUSY_TIMEOUT_MS = 5000;
/** Bytes a delivery's decision adds to the store, per byte of the alert (jobs carry the rendered ticket). */
const INBOX_GROWTH = 2;
/** Longest wait of a non-intake writer for the intake to commit (then it goes ahead anyway). */
const GATE_WAIT_MS = 20;

/**
 * The embedded durable store: inbox of deliveries, incidents, ticket ids and
 * the GLPI action queue, in one SQLite file in WAL mode. Every method is one
 * transaction unless called inside transaction().
 */
export class SqliteStore {
  readonly db: Database.Database;
  readonly #stmt;
  readonly #fullSync: boolean;
  readonly #maxBytes: number;
  readonly #gate: Int32Array | undefined;
  readonly #yieldsToIntake: boolean;
  #sync: 'FULL' | 'NORMAL' | undefined;
  #busyTimeout = BUSY_TIMEOUT_MS;

  constructor(readonly file: string, options: StoreOptions = {}) {
    const { synchronous = 'full', maxSizeBytes = 0 } = options;
    this.#fullSync = synchronous === 'full';
    this.#maxBytes = maxSizeBytes;
    this.#gate = options.intakeGate ? new Int32Array(options.intakeGate.buffer) : undefined;
    this.#yieldsToIntake = options.intakeGate?.side === 'writer';
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.#setSync('NORMAL');
    this.db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    if (options.autoCheckpoint === false) this.db.pragma('wal_autocheckpoint = 0');
    this.db.pragma('foreign_keys = ON');
    this.#migrate();
    if (maxSizeBytes > 0) {
      const pageSize = this.db.pragma('page_size', { simple: true }) as number;
      this.db.pragma(`max_page_count = ${Math.max(16, Math.floor(maxSizeBytes / pageSize))}`);
    }
    const db = this.db;
    this.#stmt = {
      insertDelivery: db.prepare('INSERT OR IGNORE INTO deliveries (delivery_key, received_at, source, alert) VALUES (?, ?, ?, ?)'),
      deliveryByKey: db.prepare<[string], { id: number }>('SELECT id FROM deliveries WHERE delivery_key = ?'),
      deliveryAlert: db.prepare<[string], { alert: string }>('SELECT alert FROM deliveries WHERE delivery_key = ?'),
      openIncidents: db.prepare<[], { state: string }>("SELECT state FROM incidents WHERE status = 'open'"),
      unprocessed: db.prepare<[number], { id: number; alert: string; received_at: number }>(
        'SELECT id, alert, received_at FROM deliveries WHERE processed_at IS NULL ORDER BY id LIMIT ?',
      ),
      markProcessed: db.prepare('UPDATE deliveries SET processed_at = ?, fingerprint = ?, action = ?, reason = ? WHERE id = ?'),
      getIncident: db.prepare<[string], { state: string }>('SELECT state FROM incidents WHERE fingerprint = ?'),
      putIncident: db.prepare(
        'INSERT INTO incidents (fingerprint, status, state, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT(fingerprint) DO UPDATE SET status = excluded.status, state = excluded.state, updated_at = excluded.updated_at',
      ),
      lastActiveJob: db.prepare<[string], JobRow>(
        "SELECT * FROM jobs WHERE fingerprint = ? AND status IN ('pending', 'running') ORDER BY id DESC LIMIT 1",
      ),
      insertJob: db.prepare(
        "INSERT INTO jobs (fingerprint, seq, type, payload, status, next_attempt_at, delivery_id, created_at, updated_at) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
      ),
      updatePayload: db.prepare('UPDATE jobs SET type = ?, payload = ?, updated_at = ? WHERE id = ?'),
      cancelCreate: db.prepare(
        "UPDATE jobs SET status = 'cancelled', updated_at = ? WHERE fingerprint = ? AND seq = ? AND type = 'create_ticket' AND status = 'pending'",
      ),
      // Walks due jobs in order and stops after LIMIT heads: no per-fingerprint aggregate over the whole queue.
      ready: db.prepare<[number, number], JobRow>(
        `SELECT j.* FROM jobs j INDEXED BY jobs_ready
          WHERE j.status = 'pending' AND j.next_attempt_at <= ?
            AND NOT EXISTS (SELECT 1 FROM jobs k WHERE k.fingerprint = j.fingerprint AND k.status IN ('pending', 'running') AND k.id < j.id)
          ORDER BY j.next_attempt_at, j.id LIMIT ?`,
      ),
      nextDue: db.prepare<[], { t: number | null }>("SELECT MIN(next_attempt_at) AS t FROM jobs WHERE status = 'pending'"),
      claim: db.prepare("UPDATE jobs SET status = 'running', attempts = attempts + 1, updated_at = ? WHERE id = ? AND status = 'pending'"),
      finish: db.prepare("UPDATE jobs SET status = 'done', last_error = NULL, updated_at = ? WHERE id = ?"),
      deleteDone: db.prepare("DELETE FROM jobs WHERE status IN ('done', 'cancelled') AND updated_at < ?"),
      reschedule: db.prepare("UPDATE jobs SET status = 'pending', next_attempt_at = ?, last_error = ?, updated_at = ? WHERE id = ?"),
      bury: db.prepare("UPDATE jobs SET status = 'dead', last_error = ?, updated_at = ? WHERE id = ?"),
      requeueRunning: db.prepare("UPDATE jobs SET status = 'pending', updated_at = ? WHERE status = 'running'"),
      jobById: db.prepare<[number], JobRow>('SELECT * FROM jobs WHERE id = ?'),
      jobsByStatus: db.prepare<[string, number], JobRow>('SELECT * FROM jobs WHERE status = ? ORDER BY id LIMIT ?'),
      retryDead: db.prepare("UPDATE jobs SET status = 'pending', next_attempt_at = ?, updated_at = ? WHERE id = ? AND status = 'dead'"),
      retryAllDead: db.prepare("UPDATE jobs SET status = 'pending', next_attempt_at = ?, updated_at = ? WHERE status = 'dead'"),
      putTicket: db.prepare('INSERT OR REPLACE INTO tickets (fingerprint, seq, ticket_id, marker, created_at) VALUES (?, ?, ?, ?, ?)'),
      getTicket: db.prepare<[string, number], { ticket_id: number }>('SELECT ticket_id FROM tickets WHERE fingerprint = ? AND seq = ?'),
      stats: db.prepare<[], { pending: number; running: number; dead: number; oldest: number | null }>(
        `SELECT
           COALESCE(SUM(status = 'pending'), 0) AS pending,
           COALESCE(SUM(status = 'running'), 0) AS running,
           COALESCE(SUM(status = 'dead'), 0) AS dead,
           MIN(CASE WHEN status IN ('pending', 'running') THEN created_at END) AS oldest
         FROM jobs WHERE status IN ('pending', 'running', 'dead')`,
      ),
      inboxBytes: db.prepare<[], { n: number }>('SELECT COALESCE(SUM(octet_length(alert)), 0) AS n FROM deliveries INDEXED BY deliveries_unprocessed WHERE processed_at IS NULL'),
      unprocessedCount: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM deliveries WHERE processed_at IS NULL'),
      pruneDeliveries: db.prepare(
        `DELETE FROM deliveries WHERE processed_at IS NOT NULL AND received_at < ?
           AND (fingerprint IS NULL OR fingerprint NOT IN (SELECT fingerprint FROM incidents WHERE status = 'open'))`,
      ),
      touch: db.prepare("INSERT INTO meta (key, value) VALUES ('last_write_check', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"),
      getMeta: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
      putMeta: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
      markCreatesUncertain: db.prepare(
        "UPDATE jobs SET attempts = MAX(attempts, 1), updated_at = ? WHERE type = 'create_ticket' AND status IN ('pending', 'running')",
      ),
    };
  }

  #migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v] ?? '');
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  #setSync(mode: 'FULL' | 'NORMAL'): void {
    if (this.#sync === mode) return;
    this.db.pragma(`synchronous = ${mode}`);
    this.#sync = mode;
  }

  #setBusyTimeout(ms: number): void {
    if (this.#busyTimeout === ms) return;
    this.db.pragma(`busy_timeout = ${ms}`);
    this.#busyTimeout = ms;
  }

  /** Run fn in one write transaction; `power` durability fsyncs at commit when store.synchronous is full. */
  transaction<T>(fn: () => T, durability: Durability = 'power'): T {
    if (this.db.inTransaction) return fn();
    // Let the intake commit first (it flags the gate while alerts wait for their 202).
    const gate = this.#gate;
    if (gate && this.#yieldsToIntake && Atomics.load(gate, 0) === 1) Atomics.wait(gate, 0, 1, GATE_WAIT_MS);
    this.#setSync(durability === 'power' && this.#fullSync ? 'FULL' : 'NORMAL');
    return this.db.transaction(fn).immediate();
  }

  /**
   * Commit new deliveries; a key seen before answers with the first
   * delivery's id. With `wait: false` a write lock held by another
   * connection throws StoreBusy at once instead of blocking the thread, and
   * the gate stays raised until the caller's next attempt succeeds.
   */
  acceptDeliveries(items: readonly NewDelivery[], opts: { wait?: boolean } = {}): Accepted[] {
    if (opts.wait !== false) return this.#insertDeliveries(items);
    if (this.#gate && !this.#yieldsToIntake) Atomics.store(this.#gate, 0, 1);
    this.#setBusyTimeout(0);
    try {
      const accepted = this.#insertDeliveries(items);
      this.#lowerGate();
      return accepted;
    } catch (e) {
      if ((e as { code?: string }).code === 'SQLITE_BUSY') throw new StoreBusy();
      this.#lowerGate();
      throw e;
    } finally {
      this.#setBusyTimeout(BUSY_TIMEOUT_MS);
    }
  }

  /** The intake gives up its priority (after a commit, or when it stops trying). */
  #lowerGate(): void {
    if (!this.#gate || this.#yieldsToIntake) return;
    Atomics.store(this.#gate, 0, 0);
    Atomics.notify(this.#gate, 0);
  }

  /** Give up a raised gate without committing (the intake rejected its waiting alerts). */
  releaseGate(): void {
    this.#lowerGate();
  }

  #insertDeliveries(items: readonly NewDelivery[]): Accepted[] {
    return this.transaction(() =>
      items.map((d) => {
        const r = this.#stmt.insertDelivery.run(d.key, d.receivedAt, d.alert.source, JSON.stringify(d.alert));
        if (r.changes === 1) return { deliveryId: Number(r.lastInsertRowid), duplicate: false };
        const existing = this.#stmt.deliveryByKey.get(d.key);
        if (!existing) throw new Error(`delivery ${d.key} vanished`);
        return { deliveryId: existing.id, duplicate: true };
      }),
    );
  }

  hasDelivery(key: string): boolean {
    return this.#stmt.deliveryByKey.get(key) !== undefined;
  }

  /** The alert first committed under this delivery key. */
  deliveryAlert(key: string): Alert | undefined {
    const r = this.#stmt.deliveryAlert.get(key);
    return r ? (JSON.parse(r.alert) as Alert) : undefined;
  }

  /** Problem event ids of every open incident. */
  openIncidentEvents(): string[] {
    return this.#stmt.openIncidents.all().flatMap((r) => (JSON.parse(r.state) as Incident).openEvents);
  }

  unprocessedDeliveries(limit: number): PendingDelivery[] {
    return this.#stmt.unprocessed.all(limit).map((r) => ({ id: r.id, alert: JSON.parse(r.alert) as Alert, receivedAt: r.received_at }));
  }

  markProcessed(id: number, at: number, fingerprint: string | null, action: string, reason: string): void {
    this.transaction(() => this.#stmt.markProcessed.run(at, fingerprint, action, reason, id), 'crash');
  }

  getIncident(fingerprint: string): Incident | undefined {
    const r = this.#stmt.getIncident.get(fingerprint);
    return r ? (JSON.parse(r.state) as Incident) : undefined;
  }

  putIncident(incident: Incident, now: number): void {
    this.transaction(() => this.#stmt.putIncident.run(incident.fingerprint, incident.status, JSON.stringify(incident), now), 'crash');
  }

  /**
   * Queue a job for an incident, merging it into the incident's last queued
   * job when that one has not started (storm control). Returns the job id.
   */
  enqueue(fingerprint: string, seq: number, spec: JobSpec, runAt: number, now: number, deliveryId?: number): number {
    return this.transaction(() => this.#enqueue(fingerprint, seq, spec, runAt, now, deliveryId), 'crash');
  }

  #enqueue(fingerprint: string, seq: number, spec: JobSpec, runAt: number, now: number, deliveryId?: number): number {
    const last = this.#stmt.lastActiveJob.get(fingerprint);
    if (last && last.status === 'pending' && last.attempts === 0 && last.seq === seq) {
      const c = coalesce(JSON.parse(last.payload) as JobSpec, spec);
      if (c.kind === 'merge' || c.kind === 'replace') {
        this.#stmt.updatePayload.run(c.spec.type, JSON.stringify(c.spec), now, last.id);
        return last.id;
      }
    }
    const r = this.#stmt.insertJob.run(fingerprint, seq, spec.type, JSON.stringify(spec), runAt, deliveryId ?? null, now, now);
    return Number(r.lastInsertRowid);
  }

  cancelPendingCreate(fingerprint: string, seq: number, now: number): boolean {
    return this.transaction(() => this.#stmt.cancelCreate.run(now, fingerprint, seq).changes > 0, 'crash');
  }

  /**
   * Jobs due now whose incident has nothing earlier pending or running,
   * marked running with attempts + 1 and committed before the GLPI call:
   * after a process crash the job is retried knowing an attempt may have landed.
   */
  claimReady(now: number, limit: number, busy: ReadonlySet<string>): Job[] {
    const rows = this.#stmt.ready.all(now, limit + busy.size).filter((r) => !busy.has(r.fingerprint)).slice(0, limit);
    if (rows.length === 0) return [];
    // No fsync: a claim lost to a power cut is covered by beginRun() at the next start.
    return this.transaction(() => {
      for (const r of rows) this.#stmt.claim.run(now, r.id);
      return rows.map((r) => toJob({ ...r, status: 'running', attempts: r.attempts + 1 }));
    }, 'crash');
  }

  /**
   * Called at start. If the previous run did not stop cleanly (crash, kill -9,
   * power cut), every queued ticket creation is treated as possibly sent: its
   * next run searches GLPI for its marker before creating. Then records that
   * this run is in progress. Returns whether the previous stop was unclean.
   */
  beginRun(now: number): boolean {
    return this.transaction(() => {
      const clean = this.#stmt.getMeta.get('clean_stop')?.value !== '0';
      if (!clean) this.#stmt.markCreatesUncertain.run(now);
      this.#stmt.putMeta.run('clean_stop', '0');
      return !clean;
    });
  }

  /** Called after a graceful stop has drained or parked its work. */
  endRun(): void {
    this.transaction(() => this.#stmt.putMeta.run('clean_stop', '1'));
  }

  nextDueAt(): number | undefined {
    return this.#stmt.nextDue.get()?.t ?? undefined;
  }

  /** Outcomes of jobs need no fsync: a job whose completion is lost is retried, and its retry checks GLPI first. */
  completeJob(id: number, now: number): void {
    this.transaction(() => this.#stmt.finish.run(now, id), 'crash');
  }

  rescheduleJob(id: number, at: number, error: string, now: number): void {
    this.transaction(() => this.#stmt.reschedule.run(at, error, now, id), 'crash');
  }

  buryJob(id: number, reason: string, now: number): void {
    this.transaction(() => this.#stmt.bury.run(reason, now, id), 'crash');
  }

  /** At start: jobs left running by a crash go back to pending (their attempt count says an attempt happened). */
  requeueRunning(now: number): number {
    return this.transaction(() => this.#stmt.requeueRunning.run(now).changes);
  }

  pruneFinished(before: number): number {
    return this.transaction(() => this.#stmt.deleteDone.run(before).changes, 'crash');
  }

  /** Forget processed deliveries older than `before`, except those of incidents still open (the poller builds their recoveries). */
  pruneDeliveries(before: number): number {
    return this.transaction(() => this.#stmt.pruneDeliveries.run(before).changes, 'crash');
  }

  /**
   * With store.max_size set: whether the file is so full that new alerts must
   * be refused, keeping room for deciding on the alerts already accepted (the
   * inbox backlog, which the processing thread may not have reached yet) and
   * the last 10 % for dispatching them.
   */
  nearlyFull(): boolean {
    if (this.#maxBytes <= 0) return false;
    const pages = this.db.pragma('page_count', { simple: true }) as number;
    const free = this.db.pragma('freelist_count', { simple: true }) as number;
    const size = this.db.pragma('page_size', { simple: true }) as number;
    // Deciding on an alert stores about as much again (the ticket draft in its job): keep room for the inbox's backlog.
    const inbox = this.#stmt.inboxBytes.get()?.n ?? 0;
    return (pages - free) * size + INBOX_GROWTH * inbox > this.#maxBytes * 0.9;
  }

  job(id: number): Job | undefined {
    const r = this.#stmt.jobById.get(id);
    return r ? toJob(r) : undefined;
  }

  jobs(status: JobStatus, limit = 1000): Job[] {
    return this.#stmt.jobsByStatus.all(status, limit).map(toJob);
  }

  retryDead(id: number | 'all', now: number): number {
    return this.transaction(() => (id === 'all' ? this.#stmt.retryAllDead.run(now, now).changes : this.#stmt.retryDead.run(now, now, id).changes));
  }

  putTicket(fingerprint: string, seq: number, ticketId: number, marker: string, now: number): void {
    this.transaction(() => this.#stmt.putTicket.run(fingerprint, seq, ticketId, marker, now), 'crash');
  }

  ticketId(fingerprint: string, seq: number): number | undefined {
    return this.#stmt.getTicket.get(fingerprint, seq)?.ticket_id;
  }

  stats(): QueueStats {
    const s = this.#stmt.stats.get();
    const unprocessed = this.#stmt.unprocessedCount.get()?.n ?? 0;
    return {
      pending: s?.pending ?? 0,
      running: s?.running ?? 0,
      dead: s?.dead ?? 0,
      ...(s?.oldest != null ? { oldestPendingAt: s.oldest } : {}),
      unprocessed,
    };
  }

  /** A real write, for readiness: throws when the file cannot be written. */
  checkWritable(now: number): void {
    this.transaction(() => this.#stmt.touch.run(String(now)), 'crash');
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
