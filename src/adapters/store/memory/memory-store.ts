import type { Alert } from '../../../core/alert.js';
import { laneOf, type LaneKind } from '../../../core/coalesce.js';
import type { EventChange, EventInfo, Incident, JobSpec, JobType } from '../../../core/decide.js';
import { fingerprintKey, problemDeliveryKey, updateKeyPrefix } from '../../../core/fingerprint.js';
import type {
  Accepted, ActionQueue, DecisionCursor, DecisionFilter, DecisionLog, DecisionRecord, Digests, Durability, IncidentRef, IncidentState, InboxReader, InboxWriter, Job, JobStatus, NewDelivery,
  OpenIncidentList, OpenIncidentView, ParkedDelivery, PendingDelivery, QueuedJob, QueueStats, RunRecord, StateTransactions, WatchCursor,
} from '../../../core/ports.js';
import { nodeDigests } from '../../digests.js';
import { announcedByEvent, announcedOn, type AnnouncedRow } from '../announced-rows.js';
import { openIncidentView } from '../decision-row.js';

/**
 * The store's ports in memory, for fast tests of the services: the same semantics as the SQLite store
 * (test/contract/ runs the same suite against both), none of its durability.
 *
 * - Two parts, as SQLite has two files: the inbox (deliveries, written by acceptDeliveries and
 *   pruneDeliveries) and the state (everything else). transaction() covers the state only, as
 *   SQLite's does: a throw inside `fn` undoes every state change made in it (an undo log), and a
 *   nested call joins the outer one (no savepoint: an inner throw caught by the outer `fn` undoes
 *   nothing by itself).
 * - Durability is accepted and ignored, except that a `power-safe` commit records the decided position
 *   as "on disk", because the inbox is pruned only behind that (see pruneDeliveries).
 * - Values are stored as JSON, as SQLite stores them: what comes back is a copy, and a property set to
 *   undefined comes back absent.
 * - No size cap (nearlyFull() is false), no StoreBusy, nothing survives the object.
 */

interface DeliveryRow {
  readonly id: number;
  readonly key: string;
  readonly receivedAt: number;
  readonly alert: string;
}

interface IncidentRow {
  readonly fingerprint: string;
  readonly status: Incident['status'];
  readonly state: string;
  readonly updatedAt: number;
  /** Insertion order (pruning walks ended incidents by time, then this). */
  readonly rowid: number;
}

interface EventRow {
  readonly key: string;
  readonly cycle: number;
  readonly open: boolean;
  /** Insertion order: an event recorded again keeps its place (SQLite's upsert keeps the rowid). */
  readonly rowid: number;
}

interface TicketRow {
  readonly ticketId: number;
  readonly marker: string;
  readonly createdAt: number;
}

interface JobRow {
  readonly id: number;
  readonly key: string;
  readonly lane: LaneKind;
  readonly cycle: number;
  readonly type: JobType;
  readonly spec: string;
  readonly status: JobStatus;
  readonly attempts: number;
  readonly nextAttemptAt: number;
  readonly lastError: string | undefined;
  readonly deliveryId: number | undefined;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** The state's single values (SQLite: the meta table and the jobs' AUTOINCREMENT sequence). */
interface Meta {
  processedThrough: number;
  /** The decided position as of the last `power-safe` commit. */
  decidedOnDisk: number;
  /** undefined: no run recorded yet (counts as a clean stop). */
  cleanStop: boolean | undefined;
  lastJobId: number;
  lastRowid: number;
  lastDecisionId: number;
  /** The GLPI read-back's cursor (WatchCursor). */
  glpiWatchCursor: string | undefined;
}

const ACTIVE: ReadonlySet<JobStatus> = new Set(['pending', 'running']);

export interface MemoryStoreOptions {
  /** The hashes incident keys are made of (default: Node's, as the SQLite store uses). */
  readonly digests?: Digests;
}

export class MemoryStore implements InboxWriter, InboxReader, DecisionCursor, IncidentState, ActionQueue, RunRecord, StateTransactions, DecisionLog, OpenIncidentList, WatchCursor {
  readonly #digests: Digests;

  // The inbox.
  readonly #deliveries = new Map<number, DeliveryRow>();
  readonly #deliveryByKey = new Map<string, number>();
  /** Delivery ids are never reused, even once pruned (SQLite: AUTOINCREMENT). */
  #lastDeliveryId = 0;

  // The state.
  readonly #incidents = new Map<string, IncidentRow>();
  readonly #events = new Map<string, EventRow>();
  /** By `${key}\n${cycle}`. */
  readonly #tickets = new Map<string, TicketRow>();
  readonly #jobs = new Map<number, JobRow>();
  readonly #parked = new Map<number, ParkedDelivery>();
  readonly #meta: Meta = { processedThrough: 0, decidedOnDisk: 0, cleanStop: undefined, lastJobId: 0, lastRowid: 0, lastDecisionId: 0, glpiWatchCursor: undefined };
  /** The decision log, by id (ids only grow). */
  readonly #decisionLog = new Map<number, DecisionRecord>();

  /** The open transaction's undo log (undefined: none open). */
  #undo: (() => void)[] | undefined;

  constructor(options: MemoryStoreOptions = {}) {
    this.#digests = options.digests ?? nodeDigests;
  }

  // -------------------------------------------------------------------------
  // Transactions

  /** Run fn as one atomic change of the state; a nested call joins the outer one. */
  transaction<T>(fn: () => T, durability: Durability = 'power-safe'): T {
    if (this.#undo !== undefined) return fn();
    const undo: (() => void)[] = [];
    this.#undo = undo;
    try {
      const result = fn();
      // As better-sqlite3: the work after an await would run outside the transaction.
      if (isThenable(result)) throw new TypeError('Transaction function cannot return a promise');
      if (durability === 'power-safe') this.#setMeta('decidedOnDisk', this.#meta.processedThrough);
      return result;
    } catch (e) {
      for (let i = undo.length - 1; i >= 0; i--) undo[i]?.();
      throw e;
    } finally {
      this.#undo = undefined;
    }
  }

  #logUndo(step: () => void): void {
    if (this.#undo === undefined) throw new Error('MemoryStore: state written outside a transaction');
    this.#undo.push(step);
  }

  #put<K, V>(map: Map<K, V>, key: K, value: V): void {
    const had = map.has(key);
    const old = map.get(key);
    this.#logUndo(() => (had ? map.set(key, old as V) : map.delete(key)));
    map.set(key, value);
  }

  #remove<K, V>(map: Map<K, V>, key: K): void {
    if (!map.has(key)) return;
    const old = map.get(key) as V;
    this.#logUndo(() => map.set(key, old));
    map.delete(key);
  }

  #setMeta<K extends keyof Meta>(name: K, value: Meta[K]): void {
    const old = this.#meta[name];
    if (old === value) return;
    this.#logUndo(() => {
      this.#meta[name] = old;
    });
    this.#meta[name] = value;
  }

  #nextRowid(): number {
    this.#setMeta('lastRowid', this.#meta.lastRowid + 1);
    return this.#meta.lastRowid;
  }

  #keyOf(ref: IncidentRef): string {
    return typeof ref === 'string' ? fingerprintKey(ref, this.#digests) : ref.key;
  }

  // -------------------------------------------------------------------------
  // The inbox

  /** Commit new deliveries (all or none); a key seen before, in this batch or earlier, answers with the first delivery's id. */
  acceptDeliveries(items: readonly NewDelivery[]): Accepted[] {
    const added: number[] = [];
    const lastId = this.#lastDeliveryId;
    try {
      return items.map((d) => {
        const existing = this.#deliveryByKey.get(d.key);
        if (existing !== undefined) return { deliveryId: existing, duplicate: true };
        const row: DeliveryRow = { id: this.#lastDeliveryId + 1, key: d.key, receivedAt: d.receivedAt, alert: JSON.stringify(d.alert) };
        this.#lastDeliveryId = row.id;
        this.#deliveries.set(row.id, row);
        this.#deliveryByKey.set(row.key, row.id);
        added.push(row.id);
        return { deliveryId: row.id, duplicate: false };
      });
    } catch (e) {
      for (const id of added) {
        const row = this.#deliveries.get(id);
        if (row) this.#deliveryByKey.delete(row.key);
        this.#deliveries.delete(id);
      }
      this.#lastDeliveryId = lastId;
      throw e;
    }
  }

  /** Nothing to flush. */
  syncInbox(): Promise<void> {
    return Promise.resolve();
  }

  /** No size cap. */
  nearlyFull(): boolean {
    return false;
  }

  hasDelivery(key: string): boolean {
    return this.#deliveryByKey.has(key);
  }

  deliveryId(key: string): number | undefined {
    return this.#deliveryByKey.get(key);
  }

  /** The alert first accepted under this key. */
  deliveryAlert(key: string): Alert | undefined {
    const id = this.#deliveryByKey.get(key);
    return id === undefined ? undefined : this.deliveryAlertById(id);
  }

  deliveryAlertById(id: number): Alert | undefined {
    const row = this.#deliveries.get(id);
    return row ? (JSON.parse(row.alert) as Alert) : undefined;
  }

  /** Id of the last delivery in the inbox (0 when empty). */
  lastDeliveryId(): number {
    let last = 0;
    for (const id of this.#deliveries.keys()) last = Math.max(last, id);
    return last;
  }

  earlierUpdates(eventSource: string, eventId: string, beforeId: number): PendingDelivery[] {
    const prefix = updateKeyPrefix(eventSource, eventId);
    const end = `${prefix}\uffff`;
    return this.#sortedDeliveries()
      .filter((r) => r.id < beforeId && r.key > prefix && r.key < end)
      .map(pending);
  }

  unprocessedDeliveries(limit: number, throughId = Number.MAX_SAFE_INTEGER): PendingDelivery[] {
    const after = this.processedThrough();
    return this.#sortedDeliveries()
      .filter((r) => r.id > after && r.id <= throughId)
      .slice(0, Math.max(0, limit))
      .map(pending);
  }

  #sortedDeliveries(): DeliveryRow[] {
    return [...this.#deliveries.values()].sort((a, b) => a.id - b.id);
  }

  /**
   * Forget deliveries decided before the decided position on disk, received `retentionMs` before now (or
   * before the first delivery still to decide, if one waits), except the problems of open events. Writes
   * the inbox, not the state: not part of a state transaction. Same rule as SqliteStore.pruneDeliveries.
   */
  pruneDeliveries(now: number, retentionMs: number): number {
    const through = Math.min(this.#meta.processedThrough, this.#meta.decidedOnDisk);
    const waiting = this.#sortedDeliveries().find((r) => r.id > through)?.receivedAt;
    const before = Math.min(now, waiting ?? now) - retentionMs;
    const keep = new Set(this.openIncidentEvents().map((id) => problemDeliveryKey('0', id)));
    let n = 0;
    for (const r of [...this.#deliveries.values()]) {
      if (r.id <= through && r.receivedAt < before && !keep.has(r.key)) {
        this.#deliveries.delete(r.id);
        this.#deliveryByKey.delete(r.key);
        n++;
      }
    }
    return n;
  }

  // -------------------------------------------------------------------------
  // The decided position

  processedThrough(): number {
    return this.#meta.processedThrough;
  }

  markProcessed(id: number): void {
    this.transaction(() => {
      if (id > this.#meta.processedThrough) this.#setMeta('processedThrough', id);
    }, 'crash-safe');
  }

  syncDecided(): void {
    if (this.#meta.decidedOnDisk === this.#meta.processedThrough) return;
    this.transaction(() => undefined, 'power-safe');
  }

  parkDelivery(deliveryId: number, eventId: string, kind: string, error: string, now: number): void {
    this.transaction(() => this.#put(this.#parked, deliveryId, { deliveryId, eventId, kind, error, parkedAt: now }), 'crash-safe');
  }

  parkedDeliveries(limit = 1000): ParkedDelivery[] {
    return [...this.#parked.values()]
      .sort((a, b) => a.deliveryId - b.deliveryId)
      .slice(0, Math.max(0, limit))
      .map((p) => ({ ...p }));
  }

  // -------------------------------------------------------------------------
  // Incidents, events, tickets

  getIncident(incident: IncidentRef): Incident | undefined {
    const row = this.#incidents.get(this.#keyOf(incident));
    return row ? (JSON.parse(row.state) as Incident) : undefined;
  }

  putIncident(incident: Incident, now: number): void {
    const key = this.#keyOf(incident.fingerprint);
    this.transaction(() => {
      const rowid = this.#incidents.get(key)?.rowid ?? this.#nextRowid();
      this.#put(this.#incidents, key, { fingerprint: incident.fingerprint, status: incident.status, state: JSON.stringify(incident), updatedAt: now, rowid });
    }, 'crash-safe');
  }

  /** An event is found through its incident: none while the incident row is missing (as SQLite's join). */
  eventInfo(eventId: string): EventInfo | undefined {
    const e = this.#events.get(eventId);
    const incident = e ? this.#incidents.get(e.key) : undefined;
    return e && incident ? { fingerprint: incident.fingerprint, cycle: e.cycle, open: e.open } : undefined;
  }

  putEvents(incident: IncidentRef, changes: readonly EventChange[]): void {
    const key = this.#keyOf(incident);
    this.transaction(() => {
      for (const c of changes) {
        const rowid = this.#events.get(c.eventId)?.rowid ?? this.#nextRowid();
        this.#put(this.#events, c.eventId, { key, cycle: c.cycle, open: c.open, rowid });
      }
    }, 'crash-safe');
  }

  moveOpenEvents(incident: IncidentRef, fromCycle: number, toCycle: number): void {
    const key = this.#keyOf(incident);
    this.transaction(() => {
      for (const [id, e] of [...this.#events]) {
        if (e.key === key && e.cycle === fromCycle && e.open) this.#put(this.#events, id, { ...e, cycle: toCycle });
      }
    }, 'crash-safe');
  }

  /** The open event of the cycle recorded first most recently (by when it was first recorded). */
  latestOpenEvent(incident: IncidentRef, cycle: number): string | undefined {
    const key = this.#keyOf(incident);
    let latest: [string, number] | undefined;
    for (const [id, e] of this.#events) {
      if (e.key === key && e.cycle === cycle && e.open && (latest === undefined || e.rowid > latest[1])) latest = [id, e.rowid];
    }
    return latest?.[0];
  }

  openIncidentEvents(): string[] {
    return [...this.#events].filter(([, e]) => e.open).map(([id]) => id);
  }

  announcedOnOpenEvents(prefix: string): Map<string, string[]> {
    const rows: AnnouncedRow[] = [];
    for (const [id, e] of [...this.#events].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const row = e.open ? this.#incidents.get(e.key) : undefined;
      const announced = row ? ((JSON.parse(row.state) as Incident).announced ?? []) : [];
      for (const entry of announced) if (announcedOn(id, entry, prefix)) rows.push({ event_id: id, entry });
    }
    return announcedByEvent(rows);
  }

  openIncidentDefinitions(): string[][] {
    const seen = new Map<string, string[]>();
    for (const row of this.#incidents.values()) {
      if (row.status !== 'open') continue;
      const fields = (JSON.parse(row.state) as Incident).fields;
      if (fields) seen.set(JSON.stringify(fields), [...fields]);
    }
    return [...seen.values()];
  }

  pruneIncidents(before: number, limit = 5000): string[] {
    return this.transaction(() => {
      const keeping = new Set([...this.#jobs.values()].filter((j) => j.status === 'pending' || j.status === 'running' || j.status === 'dead').map((j) => j.key));
      const ended = [...this.#incidents]
        .filter(([key, r]) => r.status !== 'open' && r.updatedAt < before && !keeping.has(key))
        .sort(([, a], [, b]) => a.updatedAt - b.updatedAt || a.rowid - b.rowid)
        .slice(0, Math.max(0, limit));
      for (const [key] of ended) {
        this.#remove(this.#incidents, key);
        for (const t of [...this.#tickets.keys()]) if (t.startsWith(`${key}\n`)) this.#remove(this.#tickets, t);
        for (const [id, e] of [...this.#events]) if (e.key === key) this.#remove(this.#events, id);
      }
      return ended.map(([, r]) => r.fingerprint);
    }, 'crash-safe');
  }

  putTicket(incident: IncidentRef, cycle: number, ticketId: number, marker: string, now: number): void {
    this.transaction(() => this.#put(this.#tickets, `${this.#keyOf(incident)}\n${cycle}`, { ticketId, marker, createdAt: now }), 'crash-safe');
  }

  ticketId(incident: IncidentRef, cycle: number): number | undefined {
    return this.#tickets.get(`${this.#keyOf(incident)}\n${cycle}`)?.ticketId;
  }

  cycleHasTicket(incident: IncidentRef, cycle: number): boolean {
    const key = this.#keyOf(incident);
    if (this.#tickets.has(`${key}\n${cycle}`)) return true;
    for (const j of this.#jobs.values()) {
      if (j.key === key && j.cycle === cycle && j.type === 'create_ticket' && (j.status === 'pending' || j.status === 'running' || j.status === 'dead')) return true;
    }
    return false;
  }

  // -------------------------------------------------------------------------
  // The action queue

  enqueue(incident: IncidentRef, cycle: number, spec: JobSpec, runAt: number, now: number, deliveryId?: number): number {
    const key = this.#keyOf(incident);
    return this.transaction(() => {
      const id = this.#meta.lastJobId + 1;
      this.#setMeta('lastJobId', id);
      this.#put(this.#jobs, id, {
        id, key, lane: laneOf(spec), cycle, type: spec.type, spec: JSON.stringify(spec), status: 'pending', attempts: 0,
        nextAttemptAt: runAt, lastError: undefined, deliveryId, createdAt: now, updatedAt: now,
      });
      return id;
    }, 'crash-safe');
  }

  #update(id: number, change: Partial<JobRow>, now: number, onlyIf?: JobStatus): number {
    const row = this.#jobs.get(id);
    if (!row || (onlyIf !== undefined && row.status !== onlyIf)) return 0;
    this.#put(this.#jobs, id, { ...row, ...change, updatedAt: now });
    return 1;
  }

  cancelCycle(incident: IncidentRef, cycle: number, now: number): number {
    const key = this.#keyOf(incident);
    return this.transaction(() => {
      let n = 0;
      for (const j of this.#sortedJobs()) {
        if (j.key === key && j.lane === 'glpi' && j.cycle === cycle && j.status === 'pending') n += this.#update(j.id, { status: 'cancelled' }, now);
      }
      return n;
    }, 'crash-safe');
  }

  /** The payload and type change; the lane stays the one the job was queued in. */
  replaceJobSpec(id: number, spec: JobSpec, now: number): void {
    this.transaction(() => this.#update(id, { type: spec.type, spec: JSON.stringify(spec) }, now));
  }

  lastQueued(incident: IncidentRef, lane: LaneKind): QueuedJob | undefined {
    const key = this.#keyOf(incident);
    let last: JobRow | undefined;
    for (const j of this.#jobs.values()) {
      if (j.key === key && j.lane === lane && ACTIVE.has(j.status) && (last === undefined || j.id > last.id)) last = j;
    }
    if (!last) return undefined;
    return { id: last.id, cycle: last.cycle, spec: JSON.parse(last.spec) as JobSpec, status: last.status === 'running' ? 'running' : 'pending', attempts: last.attempts };
  }

  claimReady(now: number, limit: number, busy: ReadonlySet<string>, createHorizon = now): Job[] {
    // The head of each lane: its first job pending or running. A lane whose head runs has nothing to claim.
    const heads = new Map<string, JobRow>();
    for (const j of this.#sortedJobs()) {
      const lane = laneName(j);
      if (ACTIVE.has(j.status) && !heads.has(lane)) heads.set(lane, j);
    }
    const rows = [...heads.values()]
      .filter((j) => j.status === 'pending' && j.nextAttemptAt <= now && (j.type !== 'create_ticket' || j.nextAttemptAt <= createHorizon || j.attempts > 0))
      .sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || a.id - b.id)
      // As SqliteStore: the due heads (held creates left out) are read `limit + busy.size` at a time, then the busy lanes.
      .slice(0, Math.max(0, limit + busy.size))
      .filter((j) => !busy.has(laneName(j)))
      .slice(0, Math.max(0, limit));
    if (rows.length === 0) return [];
    return this.transaction(() => {
      for (const r of rows) this.#update(r.id, { status: 'running', attempts: r.attempts + 1 }, now, 'pending');
      return rows.map((r) => this.#toJob(this.#jobs.get(r.id) as JobRow));
    }, 'power-safe');
  }

  completeJob(id: number, now: number): void {
    this.transaction(() => this.#update(id, { status: 'done', lastError: undefined }, now), 'crash-safe');
  }

  rescheduleJob(id: number, at: number, error: string, now: number): void {
    this.transaction(() => this.#update(id, { status: 'pending', nextAttemptAt: at, lastError: error }, now), 'crash-safe');
  }

  buryJob(id: number, reason: string, now: number): void {
    this.transaction(() => this.#update(id, { status: 'dead', lastError: reason }, now), 'crash-safe');
  }

  requeueRunning(now: number): number {
    return this.transaction(() => {
      let n = 0;
      for (const j of this.#sortedJobs()) if (j.status === 'running') n += this.#update(j.id, { status: 'pending' }, now);
      return n;
    });
  }

  nextDueAt(): number | undefined {
    let next: number | undefined;
    for (const j of this.#jobs.values()) if (j.status === 'pending' && (next === undefined || j.nextAttemptAt < next)) next = j.nextAttemptAt;
    return next;
  }

  pruneFinished(before: number): number {
    return this.transaction(() => {
      let n = 0;
      for (const j of [...this.#jobs.values()]) {
        if ((j.status === 'done' || j.status === 'cancelled') && j.updatedAt < before) {
          this.#remove(this.#jobs, j.id);
          n++;
        }
      }
      return n;
    }, 'crash-safe');
  }

  job(id: number): Job | undefined {
    const row = this.#jobs.get(id);
    return row ? this.#toJob(row) : undefined;
  }

  jobs(status: JobStatus, limit = 1000): Job[] {
    return this.#sortedJobs()
      .filter((j) => j.status === status)
      .slice(0, Math.max(0, limit))
      .map((j) => this.#toJob(j));
  }

  retryDead(id: number | 'all', now: number): number {
    return this.transaction(() => {
      const ids = id === 'all' ? this.#sortedJobs().map((j) => j.id) : [id];
      let n = 0;
      for (const i of ids) n += this.#update(i, { status: 'pending', nextAttemptAt: now }, now, 'dead');
      return n;
    });
  }

  stats(): QueueStats {
    let pending = 0;
    let running = 0;
    let dead = 0;
    let oldest: number | undefined;
    for (const j of this.#jobs.values()) {
      if (j.status === 'pending') pending++;
      else if (j.status === 'running') running++;
      else if (j.status === 'dead') dead++;
      if (ACTIVE.has(j.status) && (oldest === undefined || j.createdAt < oldest)) oldest = j.createdAt;
    }
    const after = this.processedThrough();
    let unprocessed = 0;
    for (const id of this.#deliveries.keys()) if (id > after) unprocessed++;
    return { pending, running, dead, ...(oldest !== undefined ? { oldestPendingAt: oldest } : {}), unprocessed, parked: this.#parked.size };
  }

  #sortedJobs(): JobRow[] {
    return [...this.#jobs.values()].sort((a, b) => a.id - b.id);
  }

  #toJob(r: JobRow): Job {
    return {
      id: r.id,
      fingerprint: this.#incidents.get(r.key)?.fingerprint ?? `(forgotten incident ${r.key})`,
      key: r.key,
      lane: laneName(r),
      cycle: r.cycle,
      type: r.type,
      spec: JSON.parse(r.spec) as JobSpec,
      status: r.status,
      attempts: r.attempts,
      nextAttemptAt: r.nextAttemptAt,
      ...(r.lastError !== undefined ? { lastError: r.lastError } : {}),
      ...(r.deliveryId !== undefined ? { deliveryId: r.deliveryId } : {}),
      createdAt: r.createdAt,
    };
  }

  // -------------------------------------------------------------------------
  // The run record

  recordStart(now: number): boolean {
    return this.transaction(() => {
      const unclean = this.#meta.cleanStop === false;
      if (unclean) {
        for (const j of this.#sortedJobs()) {
          if (j.type === 'create_ticket' && ACTIVE.has(j.status)) this.#update(j.id, { attempts: Math.max(j.attempts, 1) }, now);
        }
      }
      this.#setMeta('cleanStop', false);
      return unclean;
    });
  }

  recordCleanStop(): void {
    this.transaction(() => this.#setMeta('cleanStop', true));
  }

  // -------------------------------------------------------------------------
  // WatchCursor

  glpiWatchCursor(): string | undefined {
    return this.#meta.glpiWatchCursor;
  }

  putGlpiWatchCursor(dateMod: string): void {
    this.transaction(() => this.#setMeta('glpiWatchCursor', dateMod), 'crash-safe');
  }

  // -------------------------------------------------------------------------
  // The decision log and the open incidents (the status page)

  recordDecisions(records: readonly DecisionRecord[], keep: number): void {
    if (records.length === 0) return;
    this.transaction(() => {
      for (const r of records) {
        this.#setMeta('lastDecisionId', this.#meta.lastDecisionId + 1);
        this.#put(this.#decisionLog, this.#meta.lastDecisionId, { ...r, jobs: [...r.jobs] });
      }
      const cut = this.#meta.lastDecisionId - Math.max(0, keep);
      for (const id of [...this.#decisionLog.keys()]) if (id <= cut) this.#remove(this.#decisionLog, id);
    }, 'crash-safe');
  }

  recentDecisions(filter: DecisionFilter = {}): DecisionRecord[] {
    const limit = Math.max(0, Math.min(1000, filter.limit ?? 300));
    const out: DecisionRecord[] = [];
    for (const id of [...this.#decisionLog.keys()].sort((a, b) => b - a)) {
      if (out.length >= limit) break;
      const r = this.#decisionLog.get(id) as DecisionRecord;
      if (filter.host && r.host !== filter.host) continue;
      if (filter.category && r.category !== filter.category) continue;
      if (filter.action && r.action !== filter.action) continue;
      out.push({ ...r, jobs: [...r.jobs] });
    }
    return out;
  }

  openIncidentCount(): number {
    let n = 0;
    for (const row of this.#incidents.values()) if (row.status === 'open') n++;
    return n;
  }

  openIncidents(offset: number, limit: number): OpenIncidentView[] {
    return [...this.#incidents.entries()]
      .filter(([, row]) => row.status === 'open')
      .sort(([, a], [, b]) => b.updatedAt - a.updatedAt || b.rowid - a.rowid)
      .slice(Math.max(0, offset), Math.max(0, offset) + Math.max(0, Math.min(1000, limit)))
      .map(([key, row]) => {
        const s = JSON.parse(row.state) as Incident;
        return openIncidentView(s, this.#tickets.get(`${key}\n${s.cycle}`)?.ticketId);
      });
  }

  /** Nothing to release (the same shape as SqliteStore). */
  close(): void {}
}

function pending(r: DeliveryRow): PendingDelivery {
  return { id: r.id, alert: JSON.parse(r.alert) as Alert, receivedAt: r.receivedAt };
}

function laneName(r: Pick<JobRow, 'key' | 'lane'>): string {
  return `${r.lane}:${r.key}`;
}

function isThenable(value: unknown): boolean {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}
