// One connection of the bridge as the store's parts use it: queries, transactions with their durability,
// and writes held back until something needs an answer (or the COMMIT), so a transaction of writes costs
// one hop to the worker thread.

import type { Durability } from '../../../core/ports.js';
import { PgUnavailable, type Statement, type SyncPg } from './bridge.js';

/**
 * `power-safe`: the commit waits for its WAL record to be flushed (synchronous_commit on, PostgreSQL's
 * default): it survives a power cut of the database host. `crash-safe`: synchronous_commit off: the commit
 * returns before the flush (PostgreSQL's walwriter flushes within 3 × wal_writer_delay); it survives the
 * bridge or PostgreSQL crashing, not the host losing power — exactly what the SQLite store's NORMAL gives.
 */
function beginFor(durability: Durability): Statement {
  return { sql: `BEGIN; SET LOCAL synchronous_commit TO ${durability === 'power-safe' ? 'on' : 'off'}` };
}

/** PostgreSQL's text cannot hold U+0000: kept as U+FFFD (see store.ts, json()), the same way every time. */
function textSafe(p: unknown): unknown {
  if (typeof p === 'string') return p.includes('\u0000') ? p.replace(/\u0000/g, '\ufffd') : p;
  return Array.isArray(p) ? p.map(textSafe) : p;
}

function isThenable(v: unknown): boolean {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as { then?: unknown }).then === 'function';
}

export class PgSession {
  readonly #pg: SyncPg;
  readonly #conn: string;
  /** Statements sent with the next one that needs an answer (inside a transaction only). */
  #pending: Statement[] = [];
  #inTx = false;
  /** BEGIN has reached the server (a rollback then needs a ROLLBACK). */
  #begun = false;
  /** Run at COMMIT of the outermost transaction of this durability (e.g. the decided position on disk). */
  readonly #onCommit: ((durability: Durability) => Statement[]) | undefined;

  constructor(pg: SyncPg, conn: string, onCommit?: (durability: Durability) => Statement[]) {
    this.#pg = pg;
    this.#conn = conn;
    this.#onCommit = onCommit;
  }

  get inTransaction(): boolean {
    return this.#inTx;
  }

  /** Rows of a statement (writes held back so far go first, on the same connection). */
  query<R>(sql: string, params?: readonly unknown[]): R[] {
    return this.#send({ sql, ...(params ? { params: params.map(textSafe) } : {}) }).rows as R[];
  }

  /**
   * Rows of a statement, without blocking the calling thread (SyncPg.runAsync): for a connection that holds
   * no transaction open across calls (the intake's), so a statement is its own commit.
   */
  async queryAsync<R>(sql: string, params?: readonly unknown[]): Promise<R[]> {
    if (this.#inTx) throw new Error('queryAsync inside a transaction');
    const results = await this.#pg.runAsync(this.#conn, [{ sql, ...(params ? { params: params.map(textSafe) } : {}) }]);
    return (results[results.length - 1]?.rows ?? []) as R[];
  }

  /** How many rows a statement changed (sent now). */
  count(sql: string, params?: readonly unknown[]): number {
    return this.#send({ sql, ...(params ? { params: params.map(textSafe) } : {}) }).rowCount;
  }

  /** A write whose answer is not needed: held back inside a transaction, else its own commit. */
  exec(sql: string, params?: readonly unknown[]): void {
    const st: Statement = { sql, ...(params ? { params: params.map(textSafe) } : {}) };
    if (this.#inTx) this.#pending.push(st);
    else this.#send(st);
  }

  /**
   * fn in one transaction of this connection (joined when one is open). A throw rolls everything back and is
   * rethrown; a promise returned is refused (its awaited part would run outside), like better-sqlite3.
   */
  transaction<T>(fn: () => T, durability: Durability = 'power-safe'): T {
    if (this.#inTx) return fn();
    this.#inTx = true;
    this.#begun = false;
    this.#pending = [beginFor(durability)];
    try {
      const result = fn();
      if (isThenable(result)) throw new TypeError('Transaction function cannot return a promise');
      const steps = [...this.#pending, ...(this.#onCommit?.(durability) ?? []), { sql: 'COMMIT' }];
      this.#pending = [];
      this.#begun = true;
      this.#pg.run(this.#conn, steps);
      this.#begun = false;
      return result;
    } catch (e) {
      this.#rollback();
      throw e;
    } finally {
      this.#inTx = false;
      this.#pending = [];
    }
  }

  #rollback(): void {
    const begun = this.#begun;
    this.#pending = [];
    this.#begun = false;
    if (!begun) return; // nothing reached the server
    try {
      this.#pg.run(this.#conn, [{ sql: 'ROLLBACK' }]);
    } catch (e) {
      // The connection is gone (nothing to roll back) or in a state we cannot trust: close it, which rolls back.
      if (!(e instanceof PgUnavailable)) this.#pg.drop(this.#conn);
    }
  }

  #send(st: Statement): { rows: unknown[]; rowCount: number } {
    const steps = [...this.#pending, st];
    const hadBegin = this.#inTx && !this.#begun;
    this.#pending = [];
    if (hadBegin) this.#begun = true; // from here on the server may hold an open transaction
    const results = this.#pg.run(this.#conn, steps);
    const last = results[results.length - 1];
    return { rows: last?.rows ?? [], rowCount: last?.rowCount ?? 0 };
  }
}
