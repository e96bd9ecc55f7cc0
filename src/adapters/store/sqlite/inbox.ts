// The inbox file (`bridge.inbox.db`): deliveries as accepted, in order. Written by the intake only (the main
// thread), fsynced before each 202 with one fdatasync shared by every webhook waiting meanwhile (group
// commit); read by both threads; its WAL is checkpointed by the processing thread.

import type Database from 'better-sqlite3';
import type { Alert } from '../../../core/alert.js';
import { StoreBusy } from '../../../core/errors.js';
import { problemDeliveryKey, updateKeyPrefix } from '../../../core/fingerprint.js';
import type { Accepted, InboxReader, InboxWriter, NewDelivery, PendingDelivery } from '../../../core/ports.js';
import { BUSY_TIMEOUT_MS, LimitedQuery, usedBytes, type StoreFiles } from './database.js';
import { WalFlush } from './wal-flush.js';

/**
 * Inbox WAL frames after which a checkpoint also restarts the WAL: the next
 * commit writes from its start again, over blocks the file already has, so
 * the fsync of a commit flushes data only (a growing file makes the
 * filesystem journal its size and extents as well, slowly).
 */
const INBOX_WAL_RESTART_FRAMES = 1000;
/** Bytes a delivery's decision adds to the store, per byte of the alert (jobs carry the rendered ticket). */
const INBOX_GROWTH = 2;

/** The decided position, read from the state file (decisions.ts). */
export interface DecidedPosition {
  /** Every delivery up to this id is decided. */
  processedThrough(): number;
  /** The decided position as of the last fsynced commit of the state file. */
  decidedOnDisk(): number;
}

/** The inbox as both threads read it. */
export class SqliteInboxReader implements InboxReader {
  readonly #decided: Pick<DecidedPosition, 'processedThrough'>;
  readonly #stmt;

  constructor(inbox: Database.Database, decided: Pick<DecidedPosition, 'processedThrough'>) {
    this.#decided = decided;
    this.#stmt = {
      deliveryByKey: inbox.prepare<[string], { id: number }>('SELECT id FROM deliveries WHERE delivery_key = ?'),
      deliveryAlert: inbox.prepare<[string], { alert: string }>('SELECT alert FROM deliveries WHERE delivery_key = ?'),
      deliveryAlertById: inbox.prepare<[number], { alert: string }>('SELECT alert FROM deliveries WHERE id = ?'),
      // A range of the delivery key's unique index: the updates of one event.
      updatesOf: inbox.prepare<[string, string, number], { id: number; alert: string; received_at: number }>(
        'SELECT id, alert, received_at FROM deliveries WHERE delivery_key > ? AND delivery_key < ? AND id < ? ORDER BY id',
      ),
      deliveriesAfter: new LimitedQuery<[number, number], { id: number; alert: string; received_at: number }>(inbox, 'SELECT id, alert, received_at FROM deliveries WHERE id > ? AND id <= ? ORDER BY id LIMIT ?'),
      lastDelivery: inbox.prepare<[], { id: number | null }>('SELECT MAX(id) AS id FROM deliveries'),
      alertBytes: inbox.prepare<[number, number], { bytes: number }>('SELECT COALESCE(SUM(octet_length(alert)), 0) AS bytes FROM deliveries WHERE id > ? AND id <= ?'),
    };
  }

  hasDelivery(key: string): boolean {
    return this.deliveryId(key) !== undefined;
  }

  /** The delivery id under this key, if any (e.g. to tell whether a recovery came before its problem). */
  deliveryId(key: string): number | undefined {
    return this.#stmt.deliveryByKey.get(key)?.id;
  }

  /** The alert first committed under this delivery key. */
  deliveryAlert(key: string): Alert | undefined {
    const r = this.#stmt.deliveryAlert.get(key);
    return r ? (JSON.parse(r.alert) as Alert) : undefined;
  }

  /** The alert of a delivery, by its id. */
  deliveryAlertById(id: number): Alert | undefined {
    const r = this.#stmt.deliveryAlertById.get(id);
    return r ? (JSON.parse(r.alert) as Alert) : undefined;
  }

  /** Updates of a problem event delivered before `beforeId` (Zabbix sent them before the problem's retry got through). */
  earlierUpdates(eventSource: string, eventId: string, beforeId: number): PendingDelivery[] {
    const prefix = updateKeyPrefix(eventSource, eventId);
    return this.#stmt.updatesOf
      .all(prefix, `${prefix}\uffff`, beforeId)
      .map((r) => ({ id: r.id, alert: JSON.parse(r.alert) as Alert, receivedAt: r.received_at }));
  }

  /** Deliveries not decided on yet, in id order, up to `throughId` (those known to be on disk). */
  unprocessedDeliveries(limit: number, throughId = Number.MAX_SAFE_INTEGER): PendingDelivery[] {
    return this.#stmt.deliveriesAfter.all(limit, this.#decided.processedThrough(), throughId).map((r) => ({ id: r.id, alert: JSON.parse(r.alert) as Alert, receivedAt: r.received_at }));
  }

  /** Id of the last delivery in the inbox (0 when empty). */
  lastDeliveryId(): number {
    return this.#stmt.lastDelivery.get()?.id ?? 0;
  }

  /**
   * How many deliveries wait after the decided position, without reading them: the ids are consecutive (the
   * intake never spends one on a duplicate, and only decided deliveries are pruned), so it is the last id less
   * the position. The queue's counts read it every second; counting the rows read the whole backlog each time
   * (600,000 undecided alerts, which a 30 s hold of a saturated intake leaves, took 90-120 ms a read).
   * An inbox written before 2026-12-03 may have gaps (a duplicate took an id): they are counted until decided.
   */
  undecidedCount(): number {
    return Math.max(0, this.lastDeliveryId() - this.#decided.processedThrough());
  }

  /** The bytes of the alerts after `afterId` up to `throughId` (reads every one of them). */
  alertBytes(afterId: number, throughId: number): number {
    return this.#stmt.alertBytes.get(afterId, throughId)?.bytes ?? 0;
  }
}

/** What the writer needs besides the inbox: the decided position, and the open incidents' events (both in the state file). */
export interface InboxWriterContext {
  readonly decided: DecidedPosition;
  readonly reader: SqliteInboxReader;
  /** Problem events of open incidents: their deliveries are kept (the poller builds their recoveries from them). */
  openIncidentEvents(): string[];
}

/** What one intake transaction committed: the answers, its new alerts' size (characters of their JSON, about bytes) and last id. */
interface Inserted {
  readonly accepted: Accepted[];
  readonly bytes: number;
  readonly through: number;
}

/** How often nearlyFull() reads the size of the undecided alerts the inbox held before this writer's first commit. */
const BACKLOG_READ_EVERY_MS = 1_000;

/**
 * The size of the undecided alerts, kept as the intake commits them instead of summed over the inbox: the sum
 * read every undecided row (on the intake's thread, once a second: 90-120 ms with 600,000 undecided, which a
 * 30 s hold of a saturated intake leaves). Alerts this writer committed are counted per commit: a commit is
 * dropped once the decided position passes its last id, so a commit decided in part still counts whole (the
 * reserve errs on the safe side by at most one batch). Alerts already in the inbox when the writer started are
 * summed from the inbox, once a second, until the decided position passes them.
 */
class UndecidedBytes {
  /** Commits not wholly decided yet, oldest first: their last id, and the running total through them. */
  readonly #commits: { through: number; total: number }[] = [];
  /** Bytes of every commit so far, and of those dropped (wholly decided). */
  #total = 0;
  #dropped = 0;
  /** The last id in the inbox before this writer's first commit, and that older backlog's size as last read. */
  readonly #before: number;
  #older: { at: number; bytes: number } | undefined;

  constructor(before: number) {
    this.#before = before;
  }

  committed(through: number, bytes: number): void {
    if (bytes === 0) return;
    this.#total += bytes;
    this.#commits.push({ through, total: this.#total });
  }

  /** The undecided alerts' bytes with deliveries through `decided` decided; `read` sums the older backlog's. */
  bytes(decided: number, now: number, read: (afterId: number, throughId: number) => number): number {
    while (this.#commits.length > 0 && this.#commits[0]!.through <= decided) this.#dropped = this.#commits.shift()!.total;
    let older = 0;
    if (decided < this.#before) {
      if (this.#older === undefined || now - this.#older.at >= BACKLOG_READ_EVERY_MS) this.#older = { at: now, bytes: read(decided, this.#before) };
      older = this.#older.bytes;
    }
    return older + this.#total - this.#dropped;
  }
}

/**
 * The intake's side of the inbox: commits, the group-commit fdatasync, the
 * size check that refuses webhooks, pruning and the readiness write check.
 * On the intake's connection (StoreOptions.inboxCheckpoint 'external'), a
 * commit meeting a checkpoint throws StoreBusy at once instead of waiting.
 */
export class SqliteInboxWriter implements InboxWriter {
  readonly #files: StoreFiles;
  readonly #inbox: Database.Database;
  readonly #ctx: InboxWriterContext;
  readonly #stmt;
  /** The group fdatasync of the inbox's WAL (see syncInbox). */
  readonly #flush: WalFlush;
  /** The undecided alerts' size, for nearlyFull(). */
  readonly #undecided: UndecidedBytes;
  /** The intake's transaction, built once: it runs for every batch of webhooks. */
  readonly #insertTx: Database.Transaction<(items: readonly NewDelivery[]) => Inserted>;

  constructor(files: StoreFiles, ctx: InboxWriterContext) {
    this.#files = files;
    this.#inbox = files.inbox;
    this.#ctx = ctx;
    this.#flush = new WalFlush(files.inbox, files.inboxFile);
    const inbox = files.inbox;
    this.#stmt = {
      // Run only for a key not in the inbox (see #insertTx): INSERT OR IGNORE would spend an id on a redelivery
      // (AUTOINCREMENT), and the undecided count (undecidedCount) relies on consecutive ids.
      insertDelivery: inbox.prepare('INSERT INTO deliveries (delivery_key, received_at, source, alert) VALUES (?, ?, ?, ?)'),
      firstAfter: inbox.prepare<[number], { received_at: number }>('SELECT received_at FROM deliveries WHERE id > ? ORDER BY id LIMIT 1'),
      pruneDeliveries: inbox.prepare(
        'DELETE FROM deliveries WHERE id <= ? AND received_at < ? AND delivery_key NOT IN (SELECT value FROM json_each(?))',
      ),
      touchInbox: inbox.prepare("INSERT INTO meta (key, value) VALUES ('last_write_check', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"),
    };
    const reader = ctx.reader;
    this.#undecided = new UndecidedBytes(reader.lastDeliveryId());
    this.#insertTx = inbox.transaction((items: readonly NewDelivery[]): Inserted => {
      const inserted = { accepted: [] as Accepted[], bytes: 0, through: 0 };
      for (const d of items) {
        // The look-up first, the insert only when it finds nothing (one writer, inside the transaction): about
        // 0.3 µs more per alert than INSERT OR IGNORE here, which spends ids on redeliveries. (INSERT … SELECT …
        // WHERE NOT EXISTS keeps ids too, but SQLite stages such a row in a temporary table: 50-80 % slower.)
        const existing = reader.deliveryId(d.key);
        if (existing !== undefined) {
          inserted.accepted.push({ deliveryId: existing, duplicate: true });
          continue;
        }
        const json = JSON.stringify(d.alert);
        const id = Number(this.#stmt.insertDelivery.run(d.key, d.receivedAt, d.alert.source, json).lastInsertRowid);
        inserted.accepted.push({ deliveryId: id, duplicate: false });
        inserted.bytes += json.length;
        inserted.through = id;
      }
      return inserted;
    });
  }

  /**
   * Commit new deliveries to the inbox; a key seen before answers with the
   * first delivery's id. Durable against a power cut only once syncInbox()
   * resolves.
   */
  acceptDeliveries(items: readonly NewDelivery[]): Accepted[] {
    try {
      const { accepted, through, bytes } = this.#insertTx.immediate(items);
      // Committed (a transaction that threw was rolled back, and counts for nothing).
      this.#undecided.committed(through, bytes);
      return accepted;
    } catch (e) {
      if ((e as { code?: string }).code === 'SQLITE_BUSY' && this.#files.intakeConnection) throw new StoreBusy();
      throw e;
    }
  }

  /**
   * Resolves when every inbox commit made before the call is on disk (when
   * store.synchronous is full): the WAL's group fdatasync (wal-flush.ts), so
   * the event loop keeps taking requests meanwhile.
   */
  syncInbox(): Promise<void> {
    if (!this.#files.fullSync || this.#files.inboxFile === ':memory:') return Promise.resolve();
    return this.#flush.flushed();
  }

  /**
   * With store.max_size set: whether the file is so full that new alerts must
   * be refused, keeping room for deciding on the alerts already accepted (the
   * inbox backlog, which the processing thread may not have reached yet) and
   * the last 10 % for dispatching them. `now` is the caller's clock (the intake's Clock): it paces the backlog's read.
   */
  nearlyFull(now: number): boolean {
    if (this.#files.maxBytes <= 0) return false;
    // Deciding on an alert stores about as much again (the ticket draft in its job): keep room for the inbox's backlog
    // (UndecidedBytes); the files' own sizes are read at every batch.
    const backlog = this.#undecided.bytes(this.#ctx.decided.processedThrough(), now, (after, through) => this.#ctx.reader.alertBytes(after, through));
    return usedBytes(this.#inbox) + usedBytes(this.#files.state) + INBOX_GROWTH * backlog > this.#files.maxBytes * 0.9;
  }

  /**
   * Forget decided deliveries (decided on disk: see syncDecided) received `retentionMs` before now, except the
   * problems of incidents still open (the poller builds their recoveries
   * from them). The retention counts from the first alert still to decide,
   * if one waits: a recovery kept as a tombstone must outlive the decision
   * on a problem delivered after it.
   */
  pruneDeliveries(now: number, retentionMs: number): number {
    // Only behind the decided position on disk, not processed_through: decisions are committed without fsync, and
    // a power cut takes them back to be decided again from the inbox — whose deletions meanwhile reached the disk
    // with the next intake fsync. Pruning behind processed_through lost those alerts (found by the model test: a
    // recovery and an acknowledgement decided late, pruned, then rolled back; the incident stayed open forever).
    const through = Math.min(this.#ctx.decided.processedThrough(), this.#ctx.decided.decidedOnDisk());
    const waiting = this.#stmt.firstAfter.get(through)?.received_at;
    const before = Math.min(now, waiting ?? now) - retentionMs;
    const keep = JSON.stringify(this.#ctx.openIncidentEvents().map((id) => problemDeliveryKey('0', id)));
    return this.#waitingInbox(() => this.#inbox.transaction(() => this.#stmt.pruneDeliveries.run(through, before, keep).changes).immediate());
  }

  /** A real write to the inbox, for readiness: throws when alerts cannot be accepted. */
  checkWritable(now: number): void {
    this.#waitingInbox(() => this.#inbox.transaction(() => this.#stmt.touchInbox.run(String(now))).immediate());
  }

  /** Other writes to the inbox on the intake's connection wait for a checkpoint like any connection. */
  #waitingInbox<T>(fn: () => T): T {
    if (!this.#files.intakeConnection) return fn();
    this.#inbox.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    try {
      return fn();
    } finally {
      this.#inbox.pragma('busy_timeout = 0');
    }
  }

  /** Before the connections close: a sync in flight closes the WAL's descriptor when it is done. */
  close(): void {
    this.#flush.close();
  }
}

/**
 * Copy the inbox's WAL into its file (PASSIVE: never waits for, nor
 * blocks, the intake); once the WAL is long, also restart it (RESTART:
 * holds the intake's commits back for the few frames written meanwhile).
 * The processing thread does it: the intake's connection never checkpoints.
 */
export function checkpointInbox(inbox: Database.Database): void {
  const [r] = inbox.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
  if ((r?.log ?? 0) >= INBOX_WAL_RESTART_FRAMES) inbox.pragma('wal_checkpoint(RESTART)');
}
