// Every port the SQLite store implements, over one PostgreSQL database (schema.ts), with the same contract
// (test/contract/*). Each thread that opens it gets its own worker and two connections (bridge.ts):
//
// - `inbox`: the intake's commits of deliveries (each one statement, committed with synchronous_commit on,
//   so on disk before the 202), the readiness write, pruning, the poller's memory. Separate from the state's
//   connection as the SQLite inbox is a separate file: a delivery accepted while a state transaction is open
//   is not part of it.
// - `state`: everything else, and the state transactions (StateTransactions), whose durability maps to
//   synchronous_commit (session.ts).
//
// Round trips per call are kept low: the decided position is read inside the statements that need it, batch
// writes are one statement (unnest), writes inside a transaction travel with the next read or the COMMIT.

import { announcedByEvent, type AnnouncedRow } from '../announced-rows.js';
import { decisionRecord, openIncidentView } from '../decision-row.js';
import { toJob, type JobRow } from '../job-row.js';
import type { Alert } from '../../../core/alert.js';
import { laneOf, type LaneKind } from '../../../core/coalesce.js';
import type { EventChange, EventInfo, Incident, JobSpec } from '../../../core/decide.js';
import { fingerprintKey, problemDeliveryKey, updateKeyPrefix } from '../../../core/fingerprint.js';
import type {
  Accepted, ActionQueue, CursorState, DecisionCursor, DecisionFilter, DecisionLog, DecisionRecord, Durability, IncidentRef, IncidentState, InboxHousekeeping,
  InboxReader, InboxWriter, Job, JobStatus, NewDelivery, OpenIncidentList, OpenIncidentView, ParkedDelivery, PendingDelivery, PollMemory, QueuedJob, QueueStats,
  RunRecord, StateTransactions, WatchCursor,
} from '../../../core/ports.js';
import { nodeDigests } from '../../digests.js';
import { PgError, type Statement, type SyncPg } from './bridge.js';
import { PgSession } from './session.js';

/** The key an incident's rows are filed under (as the SQLite store). */
function keyOf(ref: IncidentRef): string {
  return typeof ref === 'string' ? fingerprintKey(ref, nodeDigests) : ref.key;
}

/**
 * The intake's advisory locks ('zgbi', and the intake epoch as the second key): the decider's cursor over
 * delivery ids needs every id at or below the position it decides through to be final (visible, or never to
 * come). Commits of several nodes run side by side, so a later id can be visible before an earlier one.
 * Each intake commit holds the lock of the current epoch (meta intake_epoch) in SHARED mode from before it
 * draws ids until after its commit is visible. The decider moves its horizon on (intakeHorizon()) without
 * ever making an intake commit wait: it starts a new epoch and draws an id V in one transaction, then waits
 * (polling, never blocking) until no intake commit holds an older epoch's lock: every id below V was drawn by
 * a commit that held such a lock when V was drawn, so all of them are final then, and V is the horizon.
 * (Held exclusive by every commit, as first written, the nodes' intake commits took turns, each through its
 * WAL flush: two nodes accepted less than one; issue 15's benchmark. Taken exclusive by the decider for an
 * instant instead, each of its batches stalled both nodes' intake behind the commits in flight.)
 */
const INBOX_LOCK = 0x7a676269;

/**
 * One intake commit of a batch: one statement (its own transaction, synchronous_commit on: flushed before it
 * answers). The epoch's shared lock is taken before the insert draws any id (the CTE is materialised: a
 * volatile function). Rows of the snapshot (`old_id`) are earlier deliveries; `new_id` this one's.
 */
const ACCEPT_SQL = `WITH lock AS (SELECT pg_advisory_xact_lock_shared($5::int, COALESCE((SELECT value::int FROM meta WHERE key = 'intake_epoch'), 0))),
       input AS (SELECT t.k, t.r, t.s, t.a, t.n FROM lock, unnest($1::text[], $2::bigint[], $3::text[], $4::jsonb[]) WITH ORDINALITY AS t(k, r, s, a, n)),
       ins AS (INSERT INTO deliveries (delivery_key, received_at, source, alert) SELECT k, r, s, a FROM input ORDER BY n ON CONFLICT (delivery_key) DO NOTHING RETURNING id, delivery_key)
       SELECT input.k, ins.id AS new_id, d.id AS old_id FROM input LEFT JOIN ins ON ins.delivery_key = input.k LEFT JOIN deliveries d ON d.delivery_key = input.k ORDER BY input.n`;

/** A new intake epoch, and an id drawn in the same transaction (the horizon once the older epochs are drained). */
const NEW_EPOCH_SQL = `WITH e AS (INSERT INTO meta (key, value) VALUES ('intake_epoch', '1')
                  ON CONFLICT (key) DO UPDATE SET value = ((meta.value::int % 2000000000) + 1)::text RETURNING value::int AS epoch)
  SELECT e.epoch, nextval(pg_get_serial_sequence('deliveries', 'id')) AS through FROM e`;

/** Whether any intake commit still holds (or waits for) the lock of an epoch other than $2. */
const DRAINED_SQL = `SELECT NOT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::oid AND objsubid = 2 AND objid <> $2::oid
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) AS drained`;

/** Deliveries another node committed while this one's insert waited on their key (read in a later snapshot). */
const IDS_OF_KEYS_SQL = 'SELECT delivery_key, id FROM deliveries WHERE delivery_key = ANY($1::text[])';
type AcceptRow = { k: string; new_id: number | null; old_id: number | null };

function acceptParams(items: readonly NewDelivery[]): unknown[] {
  return [items.map((d) => d.key), items.map((d) => d.receivedAt), items.map((d) => d.alert.source), items.map((d) => json(d.alert)), INBOX_LOCK];
}

/** The answers of an intake commit; `missing`: the keys whose ids must be read again (committed by another node meanwhile). */
function acceptedOf(rows: readonly AcceptRow[]): { out: (Accepted | undefined)[]; missing: string[] } {
  const seen = new Set<string>();
  const out = rows.map((r): Accepted | undefined => {
    if (r.old_id !== null) return { deliveryId: r.old_id, duplicate: true };
    if (r.new_id === null) return undefined; // committed by another node meanwhile: read again
    const duplicate = seen.has(r.k);
    seen.add(r.k);
    return { deliveryId: r.new_id, duplicate };
  });
  return { out, missing: rows.filter((_, i) => out[i] === undefined).map((r) => r.k) };
}

function completed(rows: readonly AcceptRow[], out: readonly (Accepted | undefined)[], ids: ReadonlyMap<string, number>): Accepted[] {
  return out.map((a, i) => {
    if (a) return a;
    const id = ids.get(rows[i]?.k ?? '');
    if (id === undefined) throw new Error(`delivery ${rows[i]?.k} vanished`);
    return { deliveryId: id, duplicate: true };
  });
}
/** The status page asks for a few hundred; more than this is never read at once. */
const MAX_READ = 1000;

const DECIDED = `COALESCE((SELECT value::bigint FROM meta WHERE key = 'processed_through'), 0)`;
const DECIDED_ON_DISK = `COALESCE((SELECT value::bigint FROM meta WHERE key = 'processed_through_on_disk'), 0)`;

/** At every power-safe commit: the decided position goes to disk with it, so the inbox may be pruned behind it (as decisions.ts). */
const RECORD_DECIDED_ON_DISK: Statement = {
  sql: `INSERT INTO meta (key, value) SELECT 'processed_through_on_disk', value FROM meta WHERE key = 'processed_through'
        ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE meta.value IS DISTINCT FROM excluded.value`,
};

const JOB_COLUMNS = `j.id, j.fp_key, j.lane, j.seq, j.type, j.payload, j.status, j.attempts, j.next_attempt_at, j.last_error, j.delivery_id, j.created_at,
  (SELECT i.state->>'fingerprint' FROM incidents i WHERE i.fp_key = j.fp_key) AS fingerprint`;

/**
 * PostgreSQL's text and jsonb cannot hold U+0000 (SQLite's can): a NUL in an alert's text is kept as U+FFFD,
 * here in JSON and in session.ts in every text parameter, so that one such alert is stored (and its
 * redeliveries recognised) instead of failing the intake's whole batch, or the decisions, again and again.
 */
function json(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'string' ? v.replace(/\u0000/g, '\ufffd') : v));
}

type DeliveryRow = { id: number; alert: Alert; received_at: number };
const toPending = (r: DeliveryRow): PendingDelivery => ({ id: r.id, alert: r.alert, receivedAt: r.received_at });

/** A job claim is a lease of this long unless told otherwise (store.postgres.lease; longer than a GLPI request). */
export const DEFAULT_LEASE_MS = 60_000;

/**
 * A node recorded the outcome of a job whose claim it no longer holds: its lease expired (the node was paused,
 * partitioned or PostgreSQL unreachable longer than the lease) and another claim took the job over. Nothing was
 * recorded; the newer claim's run decides (it checks GLPI before sending again).
 */
export class LeaseLost extends Error {
  readonly code = 'PG_LEASE_LOST';
  constructor(
    readonly jobId: number,
    readonly epoch: number,
  ) {
    super(`job ${jobId}: this node's claim (epoch ${epoch}) expired and was taken over by a newer claim; its outcome is not recorded`);
    this.name = 'LeaseLost';
  }
}

export interface PgNodeOptions {
  /** Who claims (jobs.claimed_by, logs, metrics): store.postgres.node_name or the host's name. */
  readonly node?: string;
  /** How long a claim is leased, renewed while its job runs (renewLeases). */
  readonly leaseMs?: number;
}

/** An event's updates delivered before a delivery, by their keys' prefix (earlierUpdates): a range on the "C" index. */
export const EARLIER_UPDATES_SQL =
  'SELECT id, alert, received_at FROM deliveries WHERE delivery_key COLLATE "C" >= $1 AND delivery_key COLLATE "C" < $2 AND id < $3 ORDER BY id';

/** Every port of the store over one worker's two connections. */
export class PgStorePorts
  implements InboxWriter, InboxReader, InboxHousekeeping, DecisionCursor, IncidentState, ActionQueue, RunRecord, StateTransactions, DecisionLog, OpenIncidentList, WatchCursor
{
  readonly #s: PgSession;
  readonly #w: PgSession;
  /** The intake's commits sent without blocking (acceptDeliveriesAsync): a connection of their own. */
  readonly #intake: PgSession;
  /** The largest delivery id the decider may decide through (intakeHorizon()). */
  #horizon = 0;
  /** The epoch this decider started and the id drawn with it, until the older epochs' intake commits are over. */
  #draining: { readonly epoch: number; readonly through: number } | undefined;
  /** The last read below the horizon gave all there was (fewer than asked). */
  #caughtUp = true;
  readonly #pg: SyncPg;
  readonly node: string;
  readonly leaseMs: number;
  /**
   * The claims this store holds: job id → epoch of its claim. The fencing token: an outcome is recorded only
   * while the job's row still carries this epoch (no other claim since). The ports stay those of the SQLite
   * store (one node, no epoch to pass): the store that claimed is the one that completes.
   */
  readonly #held = new Map<number, number>();
  /** When each held claim's lease was last set (this node's clock, taken before asking: the lease runs from a later instant). */
  readonly #leasedFrom = new Map<number, number>();
  /** Jobs this store claimed since it opened (zgb_job_claims_total, by node). */
  claimsMade = 0;

  constructor(pg: SyncPg, options: PgNodeOptions = {}) {
    this.#s = new PgSession(pg, 'state', (d) => (d === 'power-safe' ? [RECORD_DECIDED_ON_DISK] : []));
    this.#w = new PgSession(pg, 'inbox');
    this.#intake = new PgSession(pg, 'intake');
    this.#pg = pg;
    this.node = options.node ?? 'bridge';
    this.leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  }

  /** Jobs this store has claimed and not yet recorded an outcome for. */
  get heldClaims(): number {
    return this.#held.size;
  }

  /**
   * Extend the lease of every claim this store holds (called every third of a lease while jobs run). A claim
   * already taken over is left as it is: its outcome will fail with LeaseLost. Returns how many were renewed.
   */
  renewLeases(): number {
    if (this.#held.size === 0) return 0;
    const ids = [...this.#held.keys()];
    const asked = Date.now();
    const renewed = this.#s.query<{ id: number }>(
      `UPDATE jobs j SET lease_until = clock_timestamp() + $3 * interval '1 millisecond'
         FROM unnest($1::bigint[], $2::bigint[]) AS h(id, epoch)
        WHERE j.id = h.id AND j.epoch = h.epoch AND j.status = 'running' RETURNING j.id`,
      [ids, ids.map((id) => this.#held.get(id)), this.leaseMs],
    );
    for (const r of renewed) if (this.#held.has(r.id)) this.#leasedFrom.set(r.id, asked);
    return renewed.length;
  }

  /**
   * Whether this store's claim on the job may have lapsed: not renewed for two thirds of a lease by this
   * node's clock (a node that was stopped, or cut off from PostgreSQL). No request may then be sent for the
   * job: another node may be running it under a newer claim. Renewal every third of a lease keeps a live
   * node's claims well within this.
   */
  claimLapsed?(id: number): boolean {
    const from = this.#leasedFrom.get(id);
    return !this.#held.has(id) || from === undefined || Date.now() - from > (this.leaseMs * 2) / 3;
  }

  /**
   * Record a job's outcome (`set`: the columns, from parameter $3 on). Claimed by this store: only while its
   * claim stands (same epoch), else LeaseLost. Not claimed by this store (a job a stopped run left running,
   * found at start): only once no live lease holds it, so another node's running job is never touched.
   */
  #finish(id: number, set: string, params: readonly unknown[]): void {
    const epoch = this.#held.get(id);
    // Whatever happens to this commit, the lease is no longer renewed: a failed commit lets it lapse and the
    // job is retaken (and checked in GLPI before anything is sent again).
    this.#held.delete(id);
    this.#leasedFrom.delete(id);
    this.#s.transaction(() => {
      if (epoch === undefined) {
        // $2 (no epoch) keeps the parameters' numbering of the statement below.
        this.#s.exec(`UPDATE jobs SET ${set}, lease_until = NULL WHERE id = $1 AND NOT (status = 'running' AND COALESCE(lease_until, '-infinity') >= clock_timestamp() AND epoch IS DISTINCT FROM $2::bigint)`, [id, null, ...params]);
        return;
      }
      const n = this.#s.count(`UPDATE jobs SET ${set}, lease_until = NULL WHERE id = $1 AND status = 'running' AND epoch = $2`, [id, epoch, ...params]);
      if (n === 0) throw new LeaseLost(id, epoch);
    }, 'crash-safe');
  }

  /** The inbox's connection (the poller's memory lives there, as in the SQLite inbox file). */
  get inboxSession(): PgSession {
    return this.#w;
  }

  // ---- StateTransactions

  transaction<T>(fn: () => T, durability: Durability = 'power-safe'): T {
    return this.#s.transaction(fn, durability);
  }

  // ---- InboxWriter

  acceptDeliveries(items: readonly NewDelivery[]): Accepted[] {
    if (items.length === 0) return [];
    const rows = this.#w.query<AcceptRow>(ACCEPT_SQL, acceptParams(items));
    const { out, missing } = acceptedOf(rows);
    if (missing.length === 0) return out as Accepted[];
    return completed(rows, out, new Map(this.#w.query<{ delivery_key: string; id: number }>(IDS_OF_KEYS_SQL, [missing]).map((r) => [r.delivery_key, r.id])));
  }

  /**
   * acceptDeliveries() without blocking the calling thread (the webhook thread parses and batches meanwhile),
   * on the intake's own connection, so a blocking call of the same thread never waits behind it. Resolves
   * once the batch is committed and flushed (synchronous_commit on), as acceptDeliveries() returns.
   */
  async acceptDeliveriesAsync(items: readonly NewDelivery[]): Promise<Accepted[]> {
    if (items.length === 0) return [];
    const rows = await this.#intake.queryAsync<AcceptRow>(ACCEPT_SQL, acceptParams(items));
    const { out, missing } = acceptedOf(rows);
    if (missing.length === 0) return out as Accepted[];
    const again = await this.#intake.queryAsync<{ delivery_key: string; id: number }>(IDS_OF_KEYS_SQL, [missing]);
    return completed(rows, out, new Map(again.map((r) => [r.delivery_key, r.id])));
  }

  /** Every commit of a delivery was flushed before it answered (synchronous_commit on): nothing left to sync. */
  syncInbox(): Promise<void> {
    return Promise.resolve();
  }

  /** store.max_size caps the SQLite files only: PostgreSQL's disk is the database administrator's. */
  nearlyFull(_now: number): boolean {
    return false;
  }

  // ---- InboxHousekeeping

  lastDeliveryId(): number {
    return this.#s.query<{ id: number }>('SELECT COALESCE(MAX(id), 0)::bigint AS id FROM deliveries')[0]?.id ?? 0;
  }

  /** As the SQLite store: behind the decided position on disk only, retention counted from the first undecided delivery. */
  pruneDeliveries(now: number, retentionMs: number): number {
    const keep = this.openIncidentEvents().map((id) => problemDeliveryKey('0', id));
    return this.#w.count(
      `WITH pos AS (SELECT LEAST(${DECIDED}, ${DECIDED_ON_DISK}) AS through),
            waiting AS (SELECT received_at FROM deliveries, pos WHERE id > pos.through ORDER BY id LIMIT 1)
       DELETE FROM deliveries d USING pos
        WHERE d.id <= pos.through AND d.received_at < LEAST($1::bigint, COALESCE((SELECT received_at FROM waiting), $1::bigint)) - $2::bigint
          AND d.delivery_key <> ALL($3::text[])`,
      [now, retentionMs, keep],
    );
  }

  /** A real write through the intake's connection, for readiness. */
  checkWritable(now: number): void {
    this.#w.exec("INSERT INTO meta (key, value) VALUES ('last_write_check', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [String(now)]);
  }

  // ---- InboxReader

  hasDelivery(key: string): boolean {
    return this.deliveryId(key) !== undefined;
  }

  deliveryId(key: string): number | undefined {
    return this.#s.query<{ id: number }>('SELECT id FROM deliveries WHERE delivery_key = $1', [key])[0]?.id;
  }

  deliveryAlert(key: string): Alert | undefined {
    return this.#s.query<{ alert: Alert }>('SELECT alert FROM deliveries WHERE delivery_key = $1', [key])[0]?.alert;
  }

  deliveryAlertById(id: number): Alert | undefined {
    return this.#s.query<{ alert: Alert }>('SELECT alert FROM deliveries WHERE id = $1', [id])[0]?.alert;
  }

  earlierUpdates(eventSource: string, eventId: string, beforeId: number): PendingDelivery[] {
    const prefix = updateKeyPrefix(eventSource, eventId);
    // The keys that start with the prefix, as a range in byte order: the "C" index (migration 5) serves it whatever
    // the database's collation (the SQLite store's range of its index; the same rows).
    const after = `${prefix.slice(0, -1)}${String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1)}`;
    return this.#s
      .query<DeliveryRow>(EARLIER_UPDATES_SQL, [prefix, after, beforeId])
      .map(toPending);
  }

  unprocessedDeliveries(limit: number, throughId = Number.MAX_SAFE_INTEGER): PendingDelivery[] {
    return this.#undecided(limit, throughId);
  }

  #undecided(limit: number, throughId: number): PendingDelivery[] {
    return this.#s
      .query<DeliveryRow>(`SELECT id, alert, received_at FROM deliveries WHERE id > ${DECIDED} AND id <= $1 ORDER BY id LIMIT $2`, [throughId, limit])
      .map(toPending);
  }

  /**
   * Deliveries after the decided position, from every node's intake, only up to the horizon below which
   * every id is final (INBOX_LOCK). The horizon is moved on once everything below it is decided: a new epoch
   * is started, and the call after the older epochs' commits have ended (usually this one) reads up to it.
   */
  protected deliveriesOfEveryNode(limit: number): PendingDelivery[] {
    // Caught up with the horizon: nothing below it is left to read until it moves (no read for nothing).
    if (this.#caughtUp && !this.#intakeHorizon()) return [];
    const ready = this.#undecided(limit, this.#horizon);
    this.#caughtUp = ready.length < limit;
    return ready;
  }

  /** Moves #horizon on if it can now (true when it moved); never waits for an intake commit. */
  #intakeHorizon(): boolean {
    if (this.#s.inTransaction) return false;
    if (this.#draining === undefined) {
      // One hop; nothing to keep across a crash (a restarted decider starts an epoch of its own): no WAL flush waited for.
      let started: Record<string, unknown> | undefined;
      try {
        started = this.#pg.run('state', [{ sql: 'BEGIN; SET LOCAL synchronous_commit TO off' }, { sql: NEW_EPOCH_SQL }, { sql: 'COMMIT' }])[1]?.rows[0];
      } catch (e) {
        // A statement refused inside the transaction: end it, so that the connection can be used again.
        if (e instanceof PgError) this.#pg.run('state', [{ sql: 'ROLLBACK' }]);
        throw e;
      }
      if (!started) return false;
      this.#draining = { epoch: Number(started.epoch), through: Number(started.through) };
    }
    const drained = this.#s.query<{ drained: boolean }>(DRAINED_SQL, [INBOX_LOCK, this.#draining.epoch])[0]?.drained === true;
    if (!drained) return false;
    const moved = this.#draining.through > this.#horizon;
    this.#horizon = Math.max(this.#horizon, this.#draining.through);
    this.#draining = undefined;
    return moved;
  }

  // ---- DecisionCursor

  processedThrough(): number {
    return this.#s.query<{ n: number }>(`SELECT ${DECIDED} AS n`)[0]?.n ?? 0;
  }

  markProcessed(id: number): void {
    this.#s.transaction(() => {
      // Several nodes: a decision commits only while its node is the decider (PostgresStore, leader.ts).
      const fence = this.decisionFence();
      if (fence) this.#s.exec(fence.sql, fence.params);
      this.#s.exec(
        `INSERT INTO meta (key, value) VALUES ('processed_through', $1::bigint::text)
         ON CONFLICT (key) DO UPDATE SET value = GREATEST(meta.value::bigint, excluded.value::bigint)::text`,
        [id],
      );
    }, 'crash-safe');
  }

  /** A statement failing the decision's commit unless this node may decide (none: one node, or a tool). */
  protected decisionFence(): Statement | undefined {
    return undefined;
  }

  // ---- Handovers (several nodes: a ticket found closed by a node that is not the decider)

  /** Leave the incident's handover to the decider. */
  deferHandover(fingerprint: string, cycle: number, ticketId: number, now: number): void {
    this.#s.exec('INSERT INTO handovers (fingerprint, seq, ticket_id, node, created_at) VALUES ($1, $2, $3, $4, $5)', [fingerprint, cycle, ticketId, this.node, now]);
  }

  /** Handovers left by any node, oldest first. */
  pendingHandovers(limit = 100): { id: number; fingerprint: string; cycle: number; ticketId: number }[] {
    return this.#s
      .query<{ id: number; fingerprint: string; seq: number; ticket_id: number }>('SELECT id, fingerprint, seq, ticket_id FROM handovers ORDER BY id LIMIT $1', [limit])
      .map((r) => ({ id: r.id, fingerprint: r.fingerprint, cycle: r.seq, ticketId: r.ticket_id }));
  }

  dropHandover(id: number): void {
    this.#s.exec('DELETE FROM handovers WHERE id = $1', [id]);
  }

  syncDecided(): void {
    const r = this.#s.query<{ through: number; disk: number }>(`SELECT ${DECIDED} AS through, ${DECIDED_ON_DISK} AS disk`)[0];
    if (r && r.through === r.disk) return;
    this.#s.transaction(() => undefined, 'power-safe');
  }

  parkDelivery(deliveryId: number, eventId: string, kind: string, error: string, now: number): void {
    this.#s.transaction(
      () =>
        this.#s.exec(
          `INSERT INTO parked_deliveries (delivery_id, event_id, kind, error, parked_at) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (delivery_id) DO UPDATE SET event_id = excluded.event_id, kind = excluded.kind, error = excluded.error, parked_at = excluded.parked_at`,
          [deliveryId, eventId, kind, error, now],
        ),
      'crash-safe',
    );
  }

  parkedDeliveries(limit = 1000): ParkedDelivery[] {
    return this.#s
      .query<{ delivery_id: number; event_id: string; kind: string; error: string; parked_at: number }>('SELECT * FROM parked_deliveries ORDER BY delivery_id LIMIT $1', [limit])
      .map((r) => ({ deliveryId: r.delivery_id, eventId: r.event_id, kind: r.kind, error: r.error, parkedAt: r.parked_at }));
  }

  // ---- IncidentState

  getIncident(incident: IncidentRef): Incident | undefined {
    return this.#s.query<{ state: Incident }>('SELECT state FROM incidents WHERE fp_key = $1', [keyOf(incident)])[0]?.state;
  }

  putIncident(incident: Incident, now: number): void {
    this.#s.transaction(
      () =>
        this.#s.exec(
          `INSERT INTO incidents (fp_key, status, state, updated_at) VALUES ($1, $2, $3::jsonb, $4)
           ON CONFLICT (fp_key) DO UPDATE SET status = excluded.status, state = excluded.state, updated_at = excluded.updated_at`,
          [fingerprintKey(incident.fingerprint, nodeDigests), incident.status, json(incident), now],
        ),
      'crash-safe',
    );
  }

  eventInfo(eventId: string): EventInfo | undefined {
    const r = this.#s.query<{ fingerprint: string; seq: number; open: boolean }>(
      "SELECT i.state->>'fingerprint' AS fingerprint, e.seq, e.open FROM incident_events e JOIN incidents i ON i.fp_key = e.fp_key WHERE e.event_id = $1",
      [eventId],
    )[0];
    return r ? { fingerprint: r.fingerprint, cycle: r.seq, open: r.open } : undefined;
  }

  putEvents(incident: IncidentRef, changes: readonly EventChange[]): void {
    if (changes.length === 0) return;
    // One statement may not change a row twice: the last change of an event wins, as one upsert after another would.
    const last = new Map<string, EventChange>();
    for (const c of changes) {
      last.delete(c.eventId);
      last.set(c.eventId, c);
    }
    const list = [...last.values()];
    this.#s.transaction(
      () =>
        this.#s.exec(
          `INSERT INTO incident_events (event_id, fp_key, seq, open)
             SELECT e, $2, c, o FROM unnest($1::text[], $3::int[], $4::boolean[]) WITH ORDINALITY AS t(e, c, o, n) ORDER BY n
           ON CONFLICT (event_id) DO UPDATE SET fp_key = excluded.fp_key, seq = excluded.seq, open = excluded.open`,
          [list.map((c) => c.eventId), keyOf(incident), list.map((c) => c.cycle), list.map((c) => c.open)],
        ),
      'crash-safe',
    );
  }

  moveOpenEvents(incident: IncidentRef, fromCycle: number, toCycle: number): void {
    this.#s.transaction(() => this.#s.exec('UPDATE incident_events SET seq = $1 WHERE fp_key = $2 AND seq = $3 AND open', [toCycle, keyOf(incident), fromCycle]), 'crash-safe');
  }

  latestOpenEvent(incident: IncidentRef, cycle: number): string | undefined {
    return this.#s.query<{ event_id: string }>('SELECT event_id FROM incident_events WHERE fp_key = $1 AND seq = $2 AND open ORDER BY ord DESC LIMIT 1', [keyOf(incident), cycle])[0]
      ?.event_id;
  }

  openIncidentEvents(): string[] {
    return this.#s.query<{ event_id: string }>('SELECT event_id FROM incident_events WHERE open').map((r) => r.event_id);
  }

  announcedOnOpenEvents(prefix: string): Map<string, string[]> {
    return announcedByEvent(
      this.#s.query<AnnouncedRow>(
        `SELECT e.event_id, a.entry FROM incident_events e JOIN incidents i ON i.fp_key = e.fp_key
           CROSS JOIN LATERAL jsonb_array_elements_text(COALESCE(i.state->'announced', '[]'::jsonb)) WITH ORDINALITY AS a(entry, n)
          WHERE e.open AND starts_with(a.entry, e.event_id || ':' || $1) ORDER BY e.event_id, a.n`,
        [prefix],
      ),
    );
  }

  openIncidentDefinitions(): string[][] {
    return this.#s
      .query<{ fields: string[] | null }>("SELECT DISTINCT state->'fields' AS fields FROM incidents WHERE status = 'open'")
      .flatMap((r) => (r.fields ? [r.fields] : []));
  }

  pruneIncidents(before: number, limit = 5000): string[] {
    return this.#s.transaction(
      () =>
        this.#s
          .query<{ fingerprint: string }>(
            `WITH ended AS (
               SELECT i.fp_key, i.state->>'fingerprint' AS fingerprint, i.updated_at, i.ord FROM incidents i
                WHERE i.status <> 'open' AND i.updated_at < $1
                  AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.fp_key = i.fp_key AND j.status IN ('pending', 'running', 'dead'))
                ORDER BY i.updated_at, i.ord LIMIT $2),
             a AS (DELETE FROM incidents WHERE fp_key IN (SELECT fp_key FROM ended)),
             b AS (DELETE FROM tickets WHERE fp_key IN (SELECT fp_key FROM ended)),
             c AS (DELETE FROM incident_events WHERE fp_key IN (SELECT fp_key FROM ended))
             SELECT fingerprint FROM ended ORDER BY updated_at, ord`,
            [before, limit],
          )
          .map((r) => r.fingerprint),
      'crash-safe',
    );
  }

  putTicket(incident: IncidentRef, cycle: number, ticketId: number, marker: string, now: number): void {
    this.#s.transaction(
      () =>
        this.#s.exec(
          `INSERT INTO tickets (fp_key, seq, ticket_id, marker, created_at) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (fp_key, seq) DO UPDATE SET ticket_id = excluded.ticket_id, marker = excluded.marker, created_at = excluded.created_at`,
          [keyOf(incident), cycle, ticketId, marker, now],
        ),
      'crash-safe',
    );
  }

  ticketId(incident: IncidentRef, cycle: number): number | undefined {
    return this.#s.query<{ ticket_id: number }>('SELECT ticket_id FROM tickets WHERE fp_key = $1 AND seq = $2', [keyOf(incident), cycle])[0]?.ticket_id;
  }

  cycleHasTicket(incident: IncidentRef, cycle: number): boolean {
    return (
      this.#s.query<{ has: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM tickets WHERE fp_key = $1 AND seq = $2)
             OR EXISTS (SELECT 1 FROM jobs WHERE fp_key = $1 AND seq = $2 AND type = 'create_ticket' AND status IN ('pending', 'running', 'dead')) AS has`,
        [keyOf(incident), cycle],
      )[0]?.has ?? false
    );
  }

  // ---- ActionQueue

  enqueue(incident: IncidentRef, cycle: number, spec: JobSpec, runAt: number, now: number, deliveryId?: number): number {
    return this.#s.transaction(() => {
      const r = this.#s.query<{ id: number }>(
        `INSERT INTO jobs (fp_key, lane, seq, type, payload, status, next_attempt_at, delivery_id, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5::jsonb, 'pending', $6, $7, $8, $8) RETURNING id`,
        [keyOf(incident), laneOf(spec), cycle, spec.type, json(spec), runAt, deliveryId ?? null, now],
      );
      return r[0]?.id ?? 0;
    }, 'crash-safe');
  }

  lastQueued(incident: IncidentRef, lane: LaneKind): QueuedJob | undefined {
    type Row = { id: number; seq: number; payload: JobSpec; status: string; attempts: number };
    // Inside a transaction (storm control, which may merge into it), a pending newest job is locked until the
    // commit: another node's claim passes it over (SKIP LOCKED) instead of sending it while it is rewritten.
    // A claim that got there first leaves nothing pending to lock: the plain read then says it is running.
    const params = [keyOf(incident), lane];
    const locked = this.#s.inTransaction
      ? this.#s.query<Row>(
          `SELECT id, seq, payload, status, attempts FROM jobs
            WHERE id = (SELECT max(id) FROM jobs WHERE fp_key = $1 AND lane = $2 AND status IN ('pending', 'running')) AND status = 'pending'
            FOR UPDATE`,
          params,
        )[0]
      : undefined;
    const last =
      locked ??
      this.#s.query<Row>("SELECT id, seq, payload, status, attempts FROM jobs WHERE fp_key = $1 AND lane = $2 AND status IN ('pending', 'running') ORDER BY id DESC LIMIT 1", params)[0];
    if (!last) return undefined;
    return { id: last.id, cycle: last.seq, spec: last.payload, status: last.status === 'running' ? 'running' : 'pending', attempts: last.attempts };
  }

  cancelCycle(incident: IncidentRef, cycle: number, now: number): number {
    return this.#s.transaction(
      () => this.#s.count("UPDATE jobs SET status = 'cancelled', updated_at = $1 WHERE fp_key = $2 AND lane = 'glpi' AND seq = $3 AND status = 'pending'", [now, keyOf(incident), cycle]),
      'crash-safe',
    );
  }

  /**
   * Storm control merges into a job not tried yet: with several nodes another one may claim it meanwhile, so
   * the merge lands only on a job not running (lastQueued locked it for the caller's transaction); a job
   * claimed before the lock fails the merge loudly rather than losing what was merged.
   */
  replaceJobSpec(id: number, spec: JobSpec, now: number): void {
    this.#s.transaction(() => {
      const n = this.#s.count("UPDATE jobs SET type = $1, payload = $2::jsonb, updated_at = $3 WHERE id = $4 AND status <> 'running'", [spec.type, json(spec), now, id]);
      if (n === 0 && this.#s.query<{ n: number }>("SELECT count(*) AS n FROM jobs WHERE id = $1 AND status = 'running'", [id])[0]?.n) {
        throw new Error(`job ${id} was claimed while its content was being replaced`);
      }
    });
  }

  /**
   * The due heads of their lanes (nothing earlier pending or running), not busy, no create held back past
   * the horizon, marked running with attempts + 1 in one short power-safe commit before any runs. FOR UPDATE
   * SKIP LOCKED: a claim another node is making is passed over, not waited for. Each claim is a lease (on the
   * database's clock) with a new epoch; a job whose lease expired (its node died or stalled) is due again for
   * any node, as the head of its lane — the jobs behind it wait, so an incident's order holds across nodes.
   * A retaken job's last error says so without a landing note: its run checks GLPI before sending again.
   */
  claimReady(now: number, limit: number, busy: ReadonlySet<string>, createHorizon = now): Job[] {
    if (limit <= 0) return [];
    const asked = Date.now();
    const rows = this.#s.transaction(
      () =>
        this.#s.query<JobRow<JobSpec> & { epoch: number }>(
          `WITH ready AS (
             SELECT j.id, j.status AS was FROM jobs j
              WHERE ((j.status = 'pending' AND j.next_attempt_at <= $1) OR (j.status = 'running' AND COALESCE(j.lease_until, '-infinity') < clock_timestamp()))
                AND NOT EXISTS (SELECT 1 FROM jobs k WHERE k.fp_key = j.fp_key AND k.lane = j.lane AND k.status IN ('pending', 'running') AND k.id < j.id)
                AND NOT (j.lane || ':' || j.fp_key = ANY($3::text[]))
                AND (j.type <> 'create_ticket' OR j.next_attempt_at <= $4 OR j.attempts > 0)
              ORDER BY j.next_attempt_at, j.id LIMIT $2
              FOR UPDATE OF j SKIP LOCKED),
           claimed AS (
             UPDATE jobs SET status = 'running', attempts = attempts + 1, updated_at = $1, epoch = jobs.epoch + 1,
                    lease_until = clock_timestamp() + $5 * interval '1 millisecond', claimed_by = $6,
                    last_error = CASE WHEN ready.was = 'running' THEN 'the lease of ' || COALESCE(jobs.claimed_by, 'another node') || ' expired: retaken by ' || $6 ELSE jobs.last_error END
               FROM ready WHERE jobs.id = ready.id RETURNING jobs.*)
           SELECT ${JOB_COLUMNS}, j.epoch FROM claimed j ORDER BY j.next_attempt_at, j.id`,
          [now, limit, [...busy], this.#createHorizon(createHorizon), this.leaseMs, this.node],
        ),
      'power-safe',
    );
    this.claimsMade += rows.length;
    for (const r of rows) {
      this.#held.set(r.id, r.epoch);
      this.#leasedFrom.set(r.id, asked);
    }
    return rows.map(toJob);
  }

  /**
   * A held-back create may run once every alert received before its hold-down ended is decided. The caller
   * knows its own node's deliveries; with several nodes the inbox is shared, so the first delivery not decided
   * yet, whichever node took it, bounds the horizon too.
   */
  #createHorizon(given: number): number {
    const first = this.#s.query<{ received_at: number }>(`SELECT received_at FROM deliveries WHERE id > ${DECIDED} ORDER BY id LIMIT 1`)[0]?.received_at;
    return first === undefined ? given : Math.min(given, first);
  }

  nextDueAt(): number | undefined {
    return this.#s.query<{ t: number | null }>("SELECT MIN(next_attempt_at) AS t FROM jobs WHERE status = 'pending'")[0]?.t ?? undefined;
  }

  /** Throws LeaseLost when this store's claim was taken over (see #finish). */
  completeJob(id: number, now: number): void {
    this.#finish(id, "status = 'done', last_error = NULL, updated_at = $3", [now]);
  }

  rescheduleJob(id: number, at: number, error: string, now: number): void {
    this.#finish(id, "status = 'pending', next_attempt_at = $3, last_error = $4, updated_at = $5", [at, error, now]);
  }

  buryJob(id: number, reason: string, now: number): void {
    this.#finish(id, "status = 'dead', last_error = $3, updated_at = $4", [reason, now]);
  }

  /** This store's own claims, and claims whose lease expired (their node is gone); never another node's live claim. */
  requeueRunning(now: number): number {
    const ids = [...this.#held.keys()];
    const epochs = ids.map((id) => this.#held.get(id));
    this.#held.clear();
    this.#leasedFrom.clear();
    return this.#s.transaction(() =>
      this.#s.count(
        `UPDATE jobs SET status = 'pending', updated_at = $1, lease_until = NULL
          WHERE status = 'running'
            AND (COALESCE(lease_until, '-infinity') < clock_timestamp() OR (id, epoch) IN (SELECT * FROM unnest($2::bigint[], $3::bigint[])))`,
        [now, ids, epochs],
      ),
    );
  }

  pruneFinished(before: number): number {
    return this.#s.transaction(() => this.#s.count("DELETE FROM jobs WHERE status IN ('done', 'cancelled') AND updated_at < $1", [before]), 'crash-safe');
  }

  job(id: number): Job | undefined {
    const r = this.#s.query<JobRow<JobSpec>>(`SELECT ${JOB_COLUMNS} FROM jobs j WHERE j.id = $1`, [id])[0];
    return r ? toJob(r) : undefined;
  }

  jobs(status: JobStatus, limit = 1000): Job[] {
    return this.#s.query<JobRow<JobSpec>>(`SELECT ${JOB_COLUMNS} FROM jobs j WHERE j.status = $1 ORDER BY j.id LIMIT $2`, [status, limit]).map(toJob);
  }

  retryDead(id: number | 'all', now: number): number {
    return this.#s.transaction(() =>
      id === 'all'
        ? this.#s.count("UPDATE jobs SET status = 'pending', next_attempt_at = $1, updated_at = $1 WHERE status = 'dead'", [now])
        : this.#s.count("UPDATE jobs SET status = 'pending', next_attempt_at = $1, updated_at = $1 WHERE id = $2 AND status = 'dead'", [now, id]),
    );
  }

  /** The queue, the undecided deliveries and the parked ones, in one statement. */
  stats(): QueueStats {
    const s = this.#s.query<{ pending: number; running: number; dead: number; oldest: number | null; unprocessed: number; parked: number }>(
      `SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
              count(*) FILTER (WHERE status = 'running') AS running,
              count(*) FILTER (WHERE status = 'dead') AS dead,
              MIN(created_at) FILTER (WHERE status IN ('pending', 'running')) AS oldest,
              (SELECT count(*) FROM deliveries WHERE id > ${DECIDED}) AS unprocessed,
              (SELECT count(*) FROM parked_deliveries) AS parked
         FROM jobs WHERE status IN ('pending', 'running', 'dead')`,
    )[0];
    return {
      pending: s?.pending ?? 0,
      running: s?.running ?? 0,
      dead: s?.dead ?? 0,
      ...(s?.oldest != null ? { oldestPendingAt: s.oldest } : {}),
      unprocessed: s?.unprocessed ?? 0,
      parked: s?.parked ?? 0,
    };
  }

  // ---- RunRecord

  /** Each node's own run record (meta `clean_stop:<node>`; the one-node key `clean_stop` of version 1 is read as a fallback). */
  recordStart(now: number): boolean {
    const key = `clean_stop:${this.node}`;
    return this.#s.transaction(() => {
      const clean = this.#s.query<{ value: string }>("SELECT COALESCE((SELECT value FROM meta WHERE key = $1), (SELECT value FROM meta WHERE key = 'clean_stop')) AS value", [key])[0]?.value !== '0';
      if (!clean) this.#s.exec("UPDATE jobs SET attempts = GREATEST(attempts, 1), updated_at = $1 WHERE type = 'create_ticket' AND status IN ('pending', 'running')", [now]);
      this.#s.exec("INSERT INTO meta (key, value) VALUES ($1, '0') ON CONFLICT (key) DO UPDATE SET value = excluded.value", [key]);
      return !clean;
    });
  }

  recordCleanStop(): void {
    this.#s.transaction(() => this.#s.exec("INSERT INTO meta (key, value) VALUES ($1, '1') ON CONFLICT (key) DO UPDATE SET value = excluded.value", [`clean_stop:${this.node}`]));
  }

  // ---- The marker key, one for the cluster

  /**
   * The key every node renders ticket markers with (adapters/marker-key.ts): the first node to start offers its
   * data_dir's key (or migrate-store puts the SQLite bridge's here) and every node uses the one stored. Each node
   * keeping its own file would render other markers than the node that opened a ticket, and a marker search
   * after a decider change would miss it and open a second one.
   */
  sharedMarkerKey(offered: string): string {
    return this.#s.transaction(() => {
      this.#s.exec("INSERT INTO meta (key, value) VALUES ('marker_key', $1) ON CONFLICT (key) DO NOTHING", [offered]);
      return this.#s.query<{ value: string }>("SELECT value FROM meta WHERE key = 'marker_key'")[0]!.value;
    }, 'crash-safe');
  }

  // ---- WatchCursor

  glpiWatchCursor(): string | undefined {
    return this.#s.query<{ value: string }>("SELECT value FROM meta WHERE key = 'glpi_watch_cursor'")[0]?.value;
  }

  putGlpiWatchCursor(dateMod: string): void {
    this.#s.transaction(() => this.#s.exec("INSERT INTO meta (key, value) VALUES ('glpi_watch_cursor', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [dateMod]), 'crash-safe');
  }

  // ---- DecisionLog

  recordDecisions(records: readonly DecisionRecord[], keep: number): void {
    if (records.length === 0) return;
    const col = <K extends keyof DecisionRecord>(k: K) => records.map((r) => r[k] ?? null);
    this.#s.transaction(() => {
      this.#s.exec(
        `INSERT INTO decision_log (at, delivery_id, event_id, kind, host, fingerprint, category, severity, action, reason, jobs)
           SELECT at, d, e, k, h, f, c, s, a, r, j FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::jsonb[])
             WITH ORDINALITY AS t(at, d, e, k, h, f, c, s, a, r, j, n) ORDER BY n`,
        [col('at'), col('deliveryId'), col('eventId'), col('kind'), col('host'), col('fingerprint'), col('category'), col('severity'), col('action'), col('reason'), records.map((r) => json(r.jobs))],
      );
      // The newest `keep` stay. Identity values have gaps (a rolled-back insert keeps its ids used): cut at the
      // id `keep` rows down, not at MAX(id) - keep.
      this.#s.exec('DELETE FROM decision_log WHERE id <= (SELECT id FROM decision_log ORDER BY id DESC OFFSET $1 LIMIT 1)', [Math.max(0, keep)]);
    }, 'crash-safe');
  }

  recentDecisions(filter: DecisionFilter = {}): DecisionRecord[] {
    const limit = Math.max(0, Math.min(MAX_READ, filter.limit ?? 300));
    return this.#s
      .query<{ at: number; delivery_id: number | null; event_id: string; kind: string; host: string; fingerprint: string; category: string; severity: string; action: string; reason: string; jobs: string[] }>(
        `SELECT at, delivery_id, event_id, kind, host, fingerprint, category, severity, action, reason, jobs FROM decision_log
          WHERE ($1 = '' OR host = $1) AND ($2 = '' OR category = $2) AND ($3 = '' OR action = $3)
          ORDER BY id DESC LIMIT $4`,
        [filter.host ?? '', filter.category ?? '', filter.action ?? '', limit],
      )
      .map(decisionRecord);
  }

  // ---- OpenIncidentList

  openIncidentCount(): number {
    return this.#s.query<{ n: number }>("SELECT count(*) AS n FROM incidents WHERE status = 'open'")[0]?.n ?? 0;
  }

  openIncidents(offset: number, limit: number): OpenIncidentView[] {
    return this.#s
      .query<{ state: { fingerprint: string; cycle: number; category: string; severity: string; occurrences: number; openedAt: number; ticketId?: number }; ticket_id: number | null }>(
        `SELECT i.state, t.ticket_id FROM incidents i
           LEFT JOIN tickets t ON t.fp_key = i.fp_key AND t.seq = (i.state->>'cycle')::int
          WHERE i.status = 'open' ORDER BY i.updated_at DESC, i.ord DESC LIMIT $1 OFFSET $2`,
        [Math.max(0, Math.min(MAX_READ, limit)), Math.max(0, offset)],
      )
      .map(({ state, ticket_id }) => openIncidentView(state, ticket_id));
  }
}

/** The poller's memory (as the SQLite PollCursor), on the intake's connection. */
export class PgPollMemory implements PollMemory {
  readonly #w: PgSession;

  constructor(w: PgSession) {
    this.#w = w;
  }

  state(): CursorState | undefined {
    return this.#w.query<{ value: CursorState }>("SELECT value FROM poll_cursor WHERE key = 'cursor'")[0]?.value;
  }

  baseline(): Set<string> {
    return new Set(this.#w.query<{ eventid: string }>('SELECT eventid FROM poll_baseline').map((r) => r.eventid));
  }

  /** The first sweep and its baseline in one power-safe commit (flushed when it returns). */
  async record(state: CursorState, eventIds: readonly string[], now: number): Promise<void> {
    this.#w.transaction(() => {
      this.#w.exec('INSERT INTO poll_baseline (eventid, recorded_at) SELECT unnest($1::text[]), $2 ON CONFLICT (eventid) DO NOTHING', [[...eventIds], now]);
      this.#w.exec("INSERT INTO poll_cursor (key, value) VALUES ('cursor', $1::jsonb) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [json(state)]);
    }, 'power-safe');
  }

  forget(eventIds: readonly string[]): void {
    if (eventIds.length === 0) return;
    this.#w.exec('DELETE FROM poll_baseline WHERE eventid = ANY($1::text[])', [[...eventIds]]);
  }
}
