// The cursor between the inbox and the state (how far the deliveries are decided), the deliveries parked aside,
// and the state file's transactions with their durability. Written by the processing thread only.

import type Database from 'better-sqlite3';
import type { DecisionCursor, Durability, ParkedDelivery, StateTransactions } from '../../../core/ports.js';
import type { MetaTable } from './database.js';
import { WalFlush } from './wal-flush.js';

/** Meta key: every delivery up to this id is decided (its jobs queued in the same commit). */
const DECIDED = 'processed_through';
/** Meta key: the decided position (processed_through) as of the last fsynced commit of the state file. */
const DECIDED_ON_DISK = 'processed_through_on_disk';

/** Id of the last delivery decided on (deliveries are decided in id order). */
function decided(meta: MetaTable): number {
  return Number(meta.get(DECIDED) ?? 0);
}

/**
 * Every commit to the state file goes through transaction(): one per port
 * call, or one around many (the processing thread's whole batch: incidents,
 * events, jobs and the decided position commit together).
 */
export class SqliteStateTransactions implements StateTransactions {
  readonly #db: Database.Database;
  readonly #meta: MetaTable;
  readonly #fullSync: boolean;
  #sync = 'NORMAL';
  /** The group fdatasync of the state's WAL (see flushed()). */
  readonly #flush: WalFlush;

  constructor(db: Database.Database, meta: MetaTable, fullSync: boolean) {
    this.#db = db;
    this.#meta = meta;
    this.#fullSync = fullSync;
    this.#flush = new WalFlush(db, db.name);
  }

  /**
   * Run fn in one write transaction of the state file; `power-safe` durability fsyncs at commit when store.synchronous is full.
   * A `power-safe` commit also records the decided position it makes durable (see pruneDeliveries).
   */
  transaction<T>(fn: () => T, durability: Durability = 'power-safe'): T {
    if (this.#db.inTransaction) return fn();
    const sync = durability === 'power-safe' && this.#fullSync ? 'FULL' : 'NORMAL';
    if (this.#sync !== sync) this.#db.pragma(`synchronous = ${sync}`);
    this.#sync = sync;
    if (durability !== 'power-safe') return this.#db.transaction(fn).immediate();
    return this.#db
      .transaction(() => {
        const result = fn();
        this.#recordDecidedOnDisk();
        return result;
      })
      .immediate();
  }

  /**
   * Resolves once every commit made before the call is on disk (store.synchronous full): the WAL's group
   * fdatasync (wal-flush.ts), as the intake's syncInbox() for the inbox. The job claims use it (action-queue.ts claimsOnDisk): a claim committed
   * with an fsync held the processing thread 12 ms on average (up to 250 ms) and flushed once per job, on the
   * disk the intake's fsyncs wait for (issue 16). Same guarantee as a `power-safe` commit, except that it does
   * not record the decided position as on disk (syncDecided, the housekeeping's, does).
   */
  flushed(): Promise<void> {
    if (!this.#fullSync || this.#db.memory) return Promise.resolve();
    return this.#flush.flushed();
  }

  /** Before the connection closes. */
  close(): void {
    this.#flush.close();
  }

  /**
   * Inside a `power-safe` commit: the decided position now goes to disk with it
   * (an fsync of the WAL covers every earlier commit), so record it as the
   * position the inbox may be pruned behind. Only ever a copy of an earlier
   * processed_through, and rolled back with it.
   */
  #recordDecidedOnDisk(): void {
    const through = String(decided(this.#meta));
    if (this.#meta.get(DECIDED_ON_DISK) !== through) this.#meta.put(DECIDED_ON_DISK, through);
  }
}

/** Where the decisions stand in the inbox, and the deliveries whose decision threw. */
export class SqliteDecisionCursor implements DecisionCursor {
  readonly #meta: MetaTable;
  readonly #tx: StateTransactions;
  readonly #stmt;

  constructor(db: Database.Database, meta: MetaTable, tx: StateTransactions) {
    this.#meta = meta;
    this.#tx = tx;
    this.#stmt = {
      park: db.prepare('INSERT OR REPLACE INTO parked_deliveries (delivery_id, event_id, kind, error, parked_at) VALUES (?, ?, ?, ?, ?)'),
      parkedList: db.prepare<[number], { delivery_id: number; event_id: string; kind: string; error: string; parked_at: number }>('SELECT * FROM parked_deliveries ORDER BY delivery_id LIMIT ?'),
      parkedCount: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM parked_deliveries'),
    };
  }

  /** Id of the last delivery decided on (deliveries are decided in id order). */
  processedThrough(): number {
    return decided(this.#meta);
  }

  /** Decided position known to be on disk (recorded by the last `power-safe` commit): the inbox is pruned behind it. */
  decidedOnDisk(): number {
    return Number(this.#meta.get(DECIDED_ON_DISK) ?? 0);
  }

  /** Deliveries up to this id are decided on: commit it with the decisions' effects. */
  markProcessed(id: number): void {
    this.#tx.transaction(() => {
      if (id > this.processedThrough()) this.#meta.put(DECIDED, String(id));
    }, 'crash-safe');
  }

  /**
   * Put the decided position on disk (one fsync when it moved): the
   * processing thread's housekeeping calls it, so the inbox can be pruned
   * behind the decisions even while no job is claimed.
   */
  syncDecided(): void {
    if (this.decidedOnDisk() === this.processedThrough()) return;
    this.#tx.transaction(() => undefined, 'power-safe');
  }

  /** Keep a delivery whose decision failed aside, for the operator (queue shows it). */
  parkDelivery(deliveryId: number, eventId: string, kind: string, error: string, now: number): void {
    this.#tx.transaction(() => this.#stmt.park.run(deliveryId, eventId, kind, error, now), 'crash-safe');
  }

  parkedDeliveries(limit = 1000): ParkedDelivery[] {
    return this.#stmt.parkedList.all(limit).map((r) => ({ deliveryId: r.delivery_id, eventId: r.event_id, kind: r.kind, error: r.error, parkedAt: r.parked_at }));
  }

  parkedCount(): number {
    return this.#stmt.parkedCount.get()?.n ?? 0;
  }
}
