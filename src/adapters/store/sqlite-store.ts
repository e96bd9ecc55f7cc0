import type Database from 'better-sqlite3';
import { closeSync, fdatasync, openSync } from 'node:fs';
import type { Alert } from '../../core/alert.js';
import { laneOf, type LaneKind } from '../../core/coalesce.js';
import type { EventChange, EventInfo, Incident, JobSpec, JobType } from '../../core/decide.js';
import { StoreBusy } from '../../core/errors.js';
import { nodeDigests } from '../digests.js';
import { fingerprintKey, problemDeliveryKey, updateKeyPrefix } from '../../core/fingerprint.js';
import type {
  Accepted, ActionQueue, DecisionCursor, Durability, IncidentRef, IncidentState, InboxReader, InboxWriter, Job, JobStatus, NewDelivery,
  ParkedDelivery, PendingDelivery, QueuedJob, QueueStats, RunRecord, StateTransactions,
} from '../../core/ports.js';
import { BUSY_TIMEOUT_MS, openStoreFiles, usedBytes, type StoreOptions } from './sqlite/database.js';

export { inboxFileOf, type StoreOptions } from './sqlite/database.js';
export type { Accepted, Durability, IncidentRef, Job, JobStatus, NewDelivery, ParkedDelivery, PendingDelivery, QueueStats };

function keyOf(ref: IncidentRef): string {
  return typeof ref === 'string' ? fingerprintKey(ref, nodeDigests) : ref.key;
}








interface JobRow {
  id: number;
  fp_key: string;
  lane: string;
  /** From the incident row (NULL once the incident is forgotten). */
  fingerprint: string | null;
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

function laneName(r: Pick<JobRow, 'fp_key' | 'lane'>): string {
  return `${r.lane}:${r.fp_key}`;
}

function toJob(r: JobRow): Job {
  return {
    id: r.id,
    fingerprint: r.fingerprint ?? `(forgotten incident ${r.fp_key})`,
    key: r.fp_key,
    lane: laneName(r),
    cycle: r.seq,
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



/** Meta key: the decided position (processed_through) as of the last fsynced commit of the state file. */
const DECIDED_ON_DISK = 'processed_through_on_disk';
/**
 * Inbox WAL frames after which a checkpoint also restarts the WAL: the next
 * commit writes from its start again, over blocks the file already has, so
 * the fsync of a commit flushes data only (a growing file makes the
 * filesystem journal its size and extents as well, slowly).
 */
const INBOX_WAL_RESTART_FRAMES = 1000;
/** Bytes a delivery's decision adds to the store, per byte of the alert (jobs carry the rendered ticket). */
const INBOX_GROWTH = 2;

/**
 * The embedded durable store, two SQLite files in WAL mode, each with one
 * writer so that neither ever waits for the other's lock:
 *
 * - the inbox (`bridge.inbox.db`): deliveries as accepted, written only by
 *   the intake (fsynced before the 202);
 * - the state (`bridge.db`): the position up to which deliveries are decided,
 *   incidents, ticket ids and the GLPI action queue, written by the
 *   processing thread (and by `queue retry`, briefly).
 *
 * Every method is one transaction unless called inside transaction().
 */
export class SqliteStore implements InboxWriter, InboxReader, DecisionCursor, IncidentState, ActionQueue, RunRecord, StateTransactions {
  /** The state file. */
  readonly db: Database.Database;
  /** The inbox file. */
  readonly inbox: Database.Database;
  readonly inboxFile: string;
  readonly #stmt;
  readonly #fullSync: boolean;
  readonly #maxBytes: number;
  #sync = 'NORMAL';
  /** The inbox's WAL, opened for fdatasync (see syncInbox). */
  #inboxWal: number | undefined;
  #syncing = false;
  readonly #intakeConnection: boolean;
  #syncWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  /** The intake's transaction, built once: it runs for every batch of webhooks. */
  readonly #insertTx: Database.Transaction<(items: readonly NewDelivery[]) => Accepted[]>;

  constructor(readonly file: string, options: StoreOptions = {}) {
    const files = openStoreFiles(file, options);
    this.#fullSync = files.fullSync;
    this.#maxBytes = files.maxBytes;
    this.inboxFile = files.inboxFile;
    this.inbox = files.inbox;
    this.#intakeConnection = files.intakeConnection;
    this.db = files.state;
    const db = this.db;
    const inbox = this.inbox;
    this.#stmt = {
      insertDelivery: inbox.prepare('INSERT OR IGNORE INTO deliveries (delivery_key, received_at, source, alert) VALUES (?, ?, ?, ?)'),
      deliveryByKey: inbox.prepare<[string], { id: number }>('SELECT id FROM deliveries WHERE delivery_key = ?'),
      deliveryAlert: inbox.prepare<[string], { alert: string }>('SELECT alert FROM deliveries WHERE delivery_key = ?'),
      deliveryAlertById: inbox.prepare<[number], { alert: string }>('SELECT alert FROM deliveries WHERE id = ?'),
      // A range of the delivery key's unique index: the updates of one event.
      updatesOf: inbox.prepare<[string, string, number], { id: number; alert: string; received_at: number }>(
        'SELECT id, alert, received_at FROM deliveries WHERE delivery_key > ? AND delivery_key < ? AND id < ? ORDER BY id',
      ),
      deliveriesAfter: inbox.prepare<[number, number, number], { id: number; alert: string; received_at: number }>(
        'SELECT id, alert, received_at FROM deliveries WHERE id > ? AND id <= ? ORDER BY id LIMIT ?',
      ),
      lastDelivery: inbox.prepare<[], { id: number | null }>('SELECT MAX(id) AS id FROM deliveries'),
      firstAfter: inbox.prepare<[number], { received_at: number }>('SELECT received_at FROM deliveries WHERE id > ? ORDER BY id LIMIT 1'),
      inboxBacklog: inbox.prepare<[number], { n: number; bytes: number }>('SELECT COUNT(*) AS n, COALESCE(SUM(octet_length(alert)), 0) AS bytes FROM deliveries WHERE id > ?'),
      pruneDeliveries: inbox.prepare(
        'DELETE FROM deliveries WHERE id <= ? AND received_at < ? AND delivery_key NOT IN (SELECT value FROM json_each(?))',
      ),
      touchInbox: inbox.prepare("INSERT INTO meta (key, value) VALUES ('last_write_check', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"),
      openEvents: db.prepare<[], { event_id: string }>('SELECT event_id FROM incident_events WHERE open = 1'),
      openDefinitions: db.prepare<[], { fields: string | null }>("SELECT DISTINCT json_extract(state, '$.fields') AS fields FROM incidents WHERE status = 'open'"),
      // An event is filed with its incident and forgotten with it: the readable fingerprint comes from the incident row.
      eventInfo: db.prepare<[string], { fingerprint: string; seq: number; open: number }>(
        "SELECT json_extract(i.state, '$.fingerprint') AS fingerprint, e.seq, e.open FROM incident_events e JOIN incidents i ON i.fp_key = e.fp_key WHERE e.event_id = ?",
      ),
      putEvent: db.prepare('INSERT INTO incident_events (event_id, fp_key, seq, open) VALUES (?, ?, ?, ?) ON CONFLICT(event_id) DO UPDATE SET fp_key = excluded.fp_key, seq = excluded.seq, open = excluded.open'),
      moveOpenEvents: db.prepare('UPDATE incident_events SET seq = ? WHERE fp_key = ? AND seq = ? AND open = 1'),
      latestOpenEvent: db.prepare<[string, number], { event_id: string }>('SELECT event_id FROM incident_events WHERE fp_key = ? AND seq = ? AND open = 1 ORDER BY rowid DESC LIMIT 1'),
      endedIncidents: db.prepare<[number, number], { fp_key: string; fingerprint: string }>(
        `SELECT i.fp_key, json_extract(i.state, '$.fingerprint') AS fingerprint FROM incidents i INDEXED BY incidents_ended WHERE i.status <> 'open' AND i.updated_at < ?
           AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.fp_key = i.fp_key AND j.status IN ('pending', 'running', 'dead'))
           LIMIT ?`,
      ),
      deleteIncident: db.prepare('DELETE FROM incidents WHERE fp_key = ?'),
      deleteTickets: db.prepare('DELETE FROM tickets WHERE fp_key = ?'),
      deleteEvents: db.prepare('DELETE FROM incident_events WHERE fp_key = ?'),
      park: db.prepare('INSERT OR REPLACE INTO parked_deliveries (delivery_id, event_id, kind, error, parked_at) VALUES (?, ?, ?, ?, ?)'),
      parkedList: db.prepare<[number], { delivery_id: number; event_id: string; kind: string; error: string; parked_at: number }>('SELECT * FROM parked_deliveries ORDER BY delivery_id LIMIT ?'),
      parkedCount: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM parked_deliveries'),
      getIncident: db.prepare<[string], { state: string }>('SELECT state FROM incidents WHERE fp_key = ?'),
      putIncident: db.prepare(
        'INSERT INTO incidents (fp_key, status, state, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT(fp_key) DO UPDATE SET status = excluded.status, state = excluded.state, updated_at = excluded.updated_at',
      ),
      lastActiveJob: db.prepare<[string, string], { id: number; seq: number; payload: string; status: string; attempts: number }>(
        "SELECT id, seq, payload, status, attempts FROM jobs WHERE fp_key = ? AND lane = ? AND status IN ('pending', 'running') ORDER BY id DESC LIMIT 1",
      ),
      insertJob: db.prepare(
        "INSERT INTO jobs (fp_key, lane, seq, type, payload, status, next_attempt_at, delivery_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
      ),
      updatePayload: db.prepare('UPDATE jobs SET type = ?, payload = ?, updated_at = ? WHERE id = ?'),
      cancelCycle: db.prepare("UPDATE jobs SET status = 'cancelled', updated_at = ? WHERE fp_key = ? AND lane = 'glpi' AND seq = ? AND status = 'pending'"),
      // Walks due jobs in order and stops after LIMIT heads: no per-lane aggregate over the whole queue.
      ready: db.prepare<[number, number], JobRow>(
        `SELECT j.*, json_extract(i.state, '$.fingerprint') AS fingerprint FROM jobs j INDEXED BY jobs_ready
          LEFT JOIN incidents i ON i.fp_key = j.fp_key
          WHERE j.status = 'pending' AND j.next_attempt_at <= ?
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
      jobById: db.prepare<[number], JobRow>("SELECT j.*, json_extract(i.state, '$.fingerprint') AS fingerprint FROM jobs j LEFT JOIN incidents i ON i.fp_key = j.fp_key WHERE j.id = ?"),
      jobsByStatus: db.prepare<[string, number], JobRow>(
        "SELECT j.*, json_extract(i.state, '$.fingerprint') AS fingerprint FROM jobs j LEFT JOIN incidents i ON i.fp_key = j.fp_key WHERE j.status = ? ORDER BY j.id LIMIT ?",
      ),
      retryDead: db.prepare("UPDATE jobs SET status = 'pending', next_attempt_at = ?, updated_at = ? WHERE id = ? AND status = 'dead'"),
      retryAllDead: db.prepare("UPDATE jobs SET status = 'pending', next_attempt_at = ?, updated_at = ? WHERE status = 'dead'"),
      putTicket: db.prepare('INSERT OR REPLACE INTO tickets (fp_key, seq, ticket_id, marker, created_at) VALUES (?, ?, ?, ?, ?)'),
      getTicket: db.prepare<[string, number], { ticket_id: number }>('SELECT ticket_id FROM tickets WHERE fp_key = ? AND seq = ?'),
      cycleCreate: db.prepare<[string, number], { id: number }>(
        "SELECT id FROM jobs WHERE fp_key = ? AND seq = ? AND type = 'create_ticket' AND status IN ('pending', 'running', 'dead') LIMIT 1",
      ),
      stats: db.prepare<[], { pending: number; running: number; dead: number; oldest: number | null }>(
        `SELECT
           COALESCE(SUM(status = 'pending'), 0) AS pending,
           COALESCE(SUM(status = 'running'), 0) AS running,
           COALESCE(SUM(status = 'dead'), 0) AS dead,
           MIN(CASE WHEN status IN ('pending', 'running') THEN created_at END) AS oldest
         FROM jobs WHERE status IN ('pending', 'running', 'dead')`,
      ),
      getMeta: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
      putMeta: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
      markCreatesUncertain: db.prepare(
        "UPDATE jobs SET attempts = MAX(attempts, 1), updated_at = ? WHERE type = 'create_ticket' AND status IN ('pending', 'running')",
      ),
    };
    this.#insertTx = inbox.transaction((items: readonly NewDelivery[]): Accepted[] =>
      items.map((d) => {
        const r = this.#stmt.insertDelivery.run(d.key, d.receivedAt, d.alert.source, JSON.stringify(d.alert));
        if (r.changes === 1) return { deliveryId: Number(r.lastInsertRowid), duplicate: false };
        const existing = this.#stmt.deliveryByKey.get(d.key);
        if (!existing) throw new Error(`delivery ${d.key} vanished`);
        return { deliveryId: existing.id, duplicate: true };
      }),
    );
  }

  /**
   * Run fn in one write transaction of the state file; `power-safe` durability fsyncs at commit when store.synchronous is full.
   * A `power-safe` commit also records the decided position it makes durable (see pruneDeliveries).
   */
  transaction<T>(fn: () => T, durability: Durability = 'power-safe'): T {
    if (this.db.inTransaction) return fn();
    const sync = durability === 'power-safe' && this.#fullSync ? 'FULL' : 'NORMAL';
    if (this.#sync !== sync) this.db.pragma(`synchronous = ${sync}`);
    this.#sync = sync;
    if (durability !== 'power-safe') return this.db.transaction(fn).immediate();
    return this.db
      .transaction(() => {
        const result = fn();
        this.#recordDecidedOnDisk();
        return result;
      })
      .immediate();
  }

  /**
   * Inside a `power-safe` commit: the decided position now goes to disk with it
   * (an fsync of the WAL covers every earlier commit), so record it as the
   * position the inbox may be pruned behind. Only ever a copy of an earlier
   * processed_through, and rolled back with it.
   */
  #recordDecidedOnDisk(): void {
    const through = String(this.processedThrough());
    if (this.#stmt.getMeta.get(DECIDED_ON_DISK)?.value !== through) this.#stmt.putMeta.run(DECIDED_ON_DISK, through);
  }

  /** Decided position known to be on disk (recorded by the last `power-safe` commit). */
  #decidedOnDisk(): number {
    return Number(this.#stmt.getMeta.get(DECIDED_ON_DISK)?.value ?? 0);
  }

  /**
   * Put the decided position on disk (one fsync when it moved): the
   * processing thread's housekeeping calls it, so the inbox can be pruned
   * behind the decisions even while no job is claimed.
   */
  syncDecided(): void {
    if (this.#decidedOnDisk() === this.processedThrough()) return;
    this.transaction(() => undefined, 'power-safe');
  }

  /**
   * Commit new deliveries to the inbox; a key seen before answers with the
   * first delivery's id. Durable against a power cut only once syncInbox()
   * resolves.
   */
  acceptDeliveries(items: readonly NewDelivery[]): Accepted[] {
    try {
      return this.#insertDeliveries(items);
    } catch (e) {
      if ((e as { code?: string }).code === 'SQLITE_BUSY' && this.#intakeConnection) throw new StoreBusy();
      throw e;
    }
  }

  #insertDeliveries(items: readonly NewDelivery[]): Accepted[] {
    return this.#insertTx.immediate(items);
  }


  /**
   * Resolves when every inbox commit made before the call is on disk (when
   * store.synchronous is full): an fdatasync of the inbox's WAL on libuv's
   * thread pool, so the event loop keeps taking requests meanwhile. Calls
   * made while one runs share the next one (group commit). Same guarantee
   * as SQLite's synchronous=FULL in WAL mode, which fsyncs that file at
   * every commit; a checkpoint syncs the WAL before and the database file
   * after copying, so frames moved meanwhile are on disk too.
   */
  syncInbox(): Promise<void> {
    if (!this.#fullSync || this.inboxFile === ':memory:') return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#syncWaiters.push({ resolve, reject });
      if (!this.#syncing) this.#startSync();
    });
  }

  #startSync(): void {
    const waiters = this.#syncWaiters;
    this.#syncWaiters = [];
    this.#syncing = true;
    const done = (err: Error | null) => {
      this.#syncing = false;
      if (!this.inbox.open && this.#inboxWal !== undefined) {
        closeSync(this.#inboxWal);
        this.#inboxWal = undefined;
      }
      for (const w of waiters) {
        if (err) w.reject(err);
        else w.resolve();
      }
      if (this.#syncWaiters.length > 0) this.#startSync();
    };
    try {
      // The WAL exists while a connection has the inbox open; fsync applies to the file, whichever descriptor.
      this.#inboxWal ??= openSync(`${this.inboxFile}-wal`, 'r');
      fdatasync(this.#inboxWal, done);
    } catch (e) {
      done(e as Error);
    }
  }

  /** Id of the last delivery in the inbox (0 when empty). */
  lastDeliveryId(): number {
    return this.#stmt.lastDelivery.get()?.id ?? 0;
  }

  /**
   * Copy the inbox's WAL into its file (PASSIVE: never waits for, nor
   * blocks, the intake); once the WAL is long, also restart it (RESTART:
   * holds the intake's commits back for the few frames written meanwhile).
   */
  checkpointInbox(): void {
    const [r] = this.inbox.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
    if ((r?.log ?? 0) >= INBOX_WAL_RESTART_FRAMES) this.inbox.pragma('wal_checkpoint(RESTART)');
  }

  /** Other writes to the inbox on the intake's connection wait for a checkpoint like any connection. */
  #waitingInbox<T>(fn: () => T): T {
    if (!this.#intakeConnection) return fn();
    this.inbox.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    try {
      return fn();
    } finally {
      this.inbox.pragma('busy_timeout = 0');
    }
  }

  hasDelivery(key: string): boolean {
    return this.deliveryId(key) !== undefined;
  }

  /** The alert first committed under this delivery key. */
  deliveryAlert(key: string): Alert | undefined {
    const r = this.#stmt.deliveryAlert.get(key);
    return r ? (JSON.parse(r.alert) as Alert) : undefined;
  }

  /** Problem event ids the bridge holds open (in every incident). */
  openIncidentEvents(): string[] {
    return this.#stmt.openEvents.all().map((r) => r.event_id);
  }

  /** Updates of a problem event delivered before `beforeId` (Zabbix sent them before the problem's retry got through). */
  earlierUpdates(eventSource: string, eventId: string, beforeId: number): PendingDelivery[] {
    const prefix = updateKeyPrefix(eventSource, eventId);
    return this.#stmt.updatesOf
      .all(prefix, `${prefix}\uffff`, beforeId)
      .map((r) => ({ id: r.id, alert: JSON.parse(r.alert) as Alert, receivedAt: r.received_at }));
  }

  /** The alert of a delivery, by its id. */
  deliveryAlertById(id: number): Alert | undefined {
    const r = this.#stmt.deliveryAlertById.get(id);
    return r ? (JSON.parse(r.alert) as Alert) : undefined;
  }

  /** The distinct fingerprint definitions (field lists) of open incidents that recorded theirs. */
  openIncidentDefinitions(): string[][] {
    return this.#stmt.openDefinitions
      .all()
      .flatMap((r) => (r.fields ? [JSON.parse(r.fields) as string[]] : []));
  }

  /** The delivery id under this key, if any (e.g. to tell whether a recovery came before its problem). */
  deliveryId(key: string): number | undefined {
    return this.#stmt.deliveryByKey.get(key)?.id;
  }

  /** Which incident cycle a problem event belongs to (by its readable fingerprint), and whether it is still open. */
  eventInfo(eventId: string): EventInfo | undefined {
    const r = this.#stmt.eventInfo.get(eventId);
    return r ? { fingerprint: r.fingerprint, cycle: r.seq, open: r.open === 1 } : undefined;
  }

  /** Record events of an incident; written with the incident itself (putIncident), in the same transaction. */
  putEvents(incident: IncidentRef, changes: readonly EventChange[]): void {
    const key = keyOf(incident);
    this.transaction(() => {
      for (const c of changes) this.#stmt.putEvent.run(c.eventId, key, c.cycle, c.open ? 1 : 0);
    }, 'crash-safe');
  }

  /** A new cycle takes over the open events of an old one (its ticket was closed in GLPI). */
  moveOpenEvents(incident: IncidentRef, fromCycle: number, toCycle: number): void {
    this.transaction(() => this.#stmt.moveOpenEvents.run(toCycle, keyOf(incident), fromCycle), 'crash-safe');
  }

  /** The most recent open problem event of an incident cycle. */
  latestOpenEvent(incident: IncidentRef, cycle: number): string | undefined {
    return this.#stmt.latestOpenEvent.get(keyOf(incident), cycle)?.event_id;
  }

  /**
   * Forget incidents whose cycle ended before `before` (the reopen window)
   * and that have no job left, with their ticket ids and events: the state
   * file does not grow with history. Safe because markers never repeat
   * across cycles (see ticketMarker). Returns the (readable) fingerprints forgotten.
   */
  pruneIncidents(before: number, limit = 5000): string[] {
    return this.transaction(() => {
      const ended = this.#stmt.endedIncidents.all(before, limit);
      for (const { fp_key: key } of ended) {
        this.#stmt.deleteIncident.run(key);
        this.#stmt.deleteTickets.run(key);
        this.#stmt.deleteEvents.run(key);
      }
      return ended.map((r) => r.fingerprint);
    }, 'crash-safe');
  }

  /** Keep a delivery whose decision failed aside, for the operator (queue shows it). */
  parkDelivery(deliveryId: number, eventId: string, kind: string, error: string, now: number): void {
    this.transaction(() => this.#stmt.park.run(deliveryId, eventId, kind, error, now), 'crash-safe');
  }

  parkedDeliveries(limit = 1000): ParkedDelivery[] {
    return this.#stmt.parkedList.all(limit).map((r) => ({ deliveryId: r.delivery_id, eventId: r.event_id, kind: r.kind, error: r.error, parkedAt: r.parked_at }));
  }

  /** Id of the last delivery decided on (deliveries are decided in id order). */
  processedThrough(): number {
    return Number(this.#stmt.getMeta.get('processed_through')?.value ?? 0);
  }

  /** Deliveries not decided on yet, in id order, up to `throughId` (those known to be on disk). */
  unprocessedDeliveries(limit: number, throughId = Number.MAX_SAFE_INTEGER): PendingDelivery[] {
    return this.#stmt.deliveriesAfter.all(this.processedThrough(), throughId, limit).map((r) => ({ id: r.id, alert: JSON.parse(r.alert) as Alert, receivedAt: r.received_at }));
  }

  /** Deliveries up to this id are decided on: commit it with the decisions' effects. */
  markProcessed(id: number): void {
    this.transaction(() => {
      if (id > this.processedThrough()) this.#stmt.putMeta.run('processed_through', String(id));
    }, 'crash-safe');
  }

  getIncident(incident: IncidentRef): Incident | undefined {
    const r = this.#stmt.getIncident.get(keyOf(incident));
    return r ? (JSON.parse(r.state) as Incident) : undefined;
  }

  /** The incident's row, filed under its key; its state (JSON) is the one place its readable fingerprint is kept. */
  putIncident(incident: Incident, now: number): void {
    this.transaction(() => this.#stmt.putIncident.run(fingerprintKey(incident.fingerprint, nodeDigests), incident.status, JSON.stringify(incident), now), 'crash-safe');
  }

  /**
   * Queue a job for an incident, in the lane of its type (see Job.lane),
   * merging it into the lane's last queued job when that one has not
   * started (storm control). Returns the job id.
   */
  enqueue(incident: IncidentRef, cycle: number, spec: JobSpec, runAt: number, now: number, deliveryId?: number): number {
    return this.transaction(() => this.#enqueue(keyOf(incident), cycle, spec, runAt, now, deliveryId), 'crash-safe');
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
    return this.transaction(() => this.#stmt.cancelCycle.run(now, keyOf(incident), cycle).changes, 'crash-safe');
  }

  /** Replace a job's payload (a dead create re-rendered with the rules in force). */
  replaceJobSpec(id: number, spec: JobSpec, now: number): void {
    this.transaction(() => this.#stmt.updatePayload.run(spec.type, JSON.stringify(spec), now, id));
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
      .all(now, limit + busy.size)
      .filter((r) => !busy.has(laneName(r)) && (r.type !== 'create_ticket' || r.next_attempt_at <= createHorizon || r.attempts > 0))
      .slice(0, limit);
    if (rows.length === 0) return [];
    // Fsynced (one flush per batch of claims): a job reaches GLPI only once its claim — and with it the
    // decision that queued it, the job's payload and its id — is on disk. A power cut can then roll back
    // only decisions whose jobs never ran, which are simply taken again; a job that ran comes back as
    // attempted, and checks GLPI before sending again (its tag, its marker, the ticket's status).
    return this.transaction(() => {
      for (const r of rows) this.#stmt.claim.run(now, r.id);
      return rows.map((r) => toJob({ ...r, status: 'running', attempts: r.attempts + 1 }));
    }, 'power-safe');
  }

  /**
   * Called at start. If the previous run did not stop cleanly (crash, kill -9,
   * power cut), every queued ticket creation is treated as possibly sent: its
   * next run searches GLPI for its marker before creating. Then records that
   * this run is in progress. Returns whether the previous stop was unclean.
   */
  recordStart(now: number): boolean {
    return this.transaction(() => {
      const clean = this.#stmt.getMeta.get('clean_stop')?.value !== '0';
      if (!clean) this.#stmt.markCreatesUncertain.run(now);
      this.#stmt.putMeta.run('clean_stop', '0');
      return !clean;
    });
  }

  /** Called after a graceful stop has drained or parked its work. */
  recordCleanStop(): void {
    this.transaction(() => this.#stmt.putMeta.run('clean_stop', '1'));
  }

  nextDueAt(): number | undefined {
    return this.#stmt.nextDue.get()?.t ?? undefined;
  }

  /** Outcomes of jobs need no fsync: a job whose completion is lost is retried, and its retry checks GLPI first. */
  completeJob(id: number, now: number): void {
    this.transaction(() => this.#stmt.finish.run(now, id), 'crash-safe');
  }

  rescheduleJob(id: number, at: number, error: string, now: number): void {
    this.transaction(() => this.#stmt.reschedule.run(at, error, now, id), 'crash-safe');
  }

  buryJob(id: number, reason: string, now: number): void {
    this.transaction(() => this.#stmt.bury.run(reason, now, id), 'crash-safe');
  }

  /** At start: jobs left running by a crash go back to pending (their attempt count says an attempt happened). */
  requeueRunning(now: number): number {
    return this.transaction(() => this.#stmt.requeueRunning.run(now).changes);
  }

  pruneFinished(before: number): number {
    return this.transaction(() => this.#stmt.deleteDone.run(before).changes, 'crash-safe');
  }

  /**
   * Forget decided deliveries (decided on disk: see syncDecided) received `retentionMs` before now, except the
   * problems of incidents still open (the poller builds their recoveries
   * from them). The retention counts from the first alert still to decide,
   * if one waits: a recovery kept as a tombstone must outlive the decision
   * on a problem delivered after it. Writes the inbox: call it on the
   * intake's thread.
   */
  pruneDeliveries(now: number, retentionMs: number): number {
    // Only behind the decided position on disk, not processed_through: decisions are committed without fsync, and
    // a power cut takes them back to be decided again from the inbox — whose deletions meanwhile reached the disk
    // with the next intake fsync. Pruning behind processed_through lost those alerts (found by the model test: a
    // recovery and an acknowledgement decided late, pruned, then rolled back; the incident stayed open forever).
    const through = Math.min(this.processedThrough(), this.#decidedOnDisk());
    const waiting = this.#stmt.firstAfter.get(through)?.received_at;
    const before = Math.min(now, waiting ?? now) - retentionMs;
    const keep = JSON.stringify(this.openIncidentEvents().map((id) => problemDeliveryKey('0', id)));
    return this.#waitingInbox(() => this.inbox.transaction(() => this.#stmt.pruneDeliveries.run(through, before, keep).changes).immediate());
  }

  /**
   * With store.max_size set: whether the file is so full that new alerts must
   * be refused, keeping room for deciding on the alerts already accepted (the
   * inbox backlog, which the processing thread may not have reached yet) and
   * the last 10 % for dispatching them.
   */
  nearlyFull(): boolean {
    if (this.#maxBytes <= 0) return false;
    // Deciding on an alert stores about as much again (the ticket draft in its job): keep room for the inbox's backlog.
    const backlog = this.#stmt.inboxBacklog.get(this.processedThrough())?.bytes ?? 0;
    return usedBytes(this.inbox) + usedBytes(this.db) + INBOX_GROWTH * backlog > this.#maxBytes * 0.9;
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

  putTicket(incident: IncidentRef, cycle: number, ticketId: number, marker: string, now: number): void {
    this.transaction(() => this.#stmt.putTicket.run(keyOf(incident), cycle, ticketId, marker, now), 'crash-safe');
  }

  /** Whether a ticket cycle has its ticket, or a create that may still make it. */
  cycleHasTicket(incident: IncidentRef, cycle: number): boolean {
    const key = keyOf(incident);
    return this.#stmt.getTicket.get(key, cycle) !== undefined || this.#stmt.cycleCreate.get(key, cycle) !== undefined;
  }

  ticketId(incident: IncidentRef, cycle: number): number | undefined {
    return this.#stmt.getTicket.get(keyOf(incident), cycle)?.ticket_id;
  }

  stats(): QueueStats {
    const s = this.#stmt.stats.get();
    const unprocessed = this.#stmt.inboxBacklog.get(this.processedThrough())?.n ?? 0;
    return {
      pending: s?.pending ?? 0,
      running: s?.running ?? 0,
      dead: s?.dead ?? 0,
      ...(s?.oldest != null ? { oldestPendingAt: s.oldest } : {}),
      unprocessed,
      parked: this.#stmt.parkedCount.get()?.n ?? 0,
    };
  }

  /** A real write to the inbox, for readiness: throws when alerts cannot be accepted. */
  checkWritable(now: number): void {
    this.#waitingInbox(() => this.inbox.transaction(() => this.#stmt.touchInbox.run(String(now))).immediate());
  }

  close(): void {
    // A sync in flight closes the descriptor when it is done.
    if (this.#inboxWal !== undefined && !this.#syncing) {
      closeSync(this.#inboxWal);
      this.#inboxWal = undefined;
    }
    if (this.db.open) this.db.close();
    if (this.inbox.open) this.inbox.close();
  }
}
