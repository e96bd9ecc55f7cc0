import type Database from 'better-sqlite3';
import type { BaselineMode, CursorState, PollMemory } from '../../../core/ports.js';
import { BUSY_TIMEOUT_MS } from './database.js';

export type { BaselineMode, CursorState };

/** Where the poll cursor lives: the intake's connection to the inbox, and its fsync (InboxWriter.syncInbox). */
export interface PollCursorHost {
  readonly inbox: Database.Database;
  syncInbox(): Promise<void>;
}

/**
 * The poller's durable memory, kept in the inbox file (the poller runs on
 * the main thread, which is the inbox's only writer): whether it has swept
 * its scope before, and the baseline — problems already open in Zabbix at
 * that first sweep, which never become tickets (`zabbix.poll.baseline:
 * skip`). A baseline event is forgotten once Zabbix says it is resolved.
 *
 * Own tables, created if missing (no schema version of the store involved).
 * Writes wait for a checkpoint of the inbox like the store's own do: the
 * intake's connection otherwise fails at once with SQLITE_BUSY.
 */
export class PollCursor implements PollMemory {
  readonly #db: Database.Database;
  readonly #host: PollCursorHost;
  readonly #stmt;

  constructor(host: PollCursorHost) {
    this.#host = host;
    this.#db = host.inbox;
    this.#write(() =>
      this.#db.exec(`
        CREATE TABLE IF NOT EXISTS poll_cursor (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS poll_baseline (eventid TEXT PRIMARY KEY, recorded_at INTEGER NOT NULL);
      `),
    );
    this.#stmt = {
      getCursor: this.#db.prepare<[], { value: string }>("SELECT value FROM poll_cursor WHERE key = 'cursor'"),
      putCursor: this.#db.prepare("INSERT INTO poll_cursor (key, value) VALUES ('cursor', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"),
      baseline: this.#db.prepare<[], { eventid: string }>('SELECT eventid FROM poll_baseline'),
      addBaseline: this.#db.prepare('INSERT OR IGNORE INTO poll_baseline (eventid, recorded_at) VALUES (?, ?)'),
      forget: this.#db.prepare('DELETE FROM poll_baseline WHERE eventid = ?'),
    };
  }

  /** Run a write on the inbox connection, waiting for a checkpoint in progress instead of failing with SQLITE_BUSY. */
  #write<T>(fn: () => T): T {
    const before = this.#db.pragma('busy_timeout', { simple: true }) as number;
    if (before >= BUSY_TIMEOUT_MS) return fn();
    this.#db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    try {
      return fn();
    } finally {
      this.#db.pragma(`busy_timeout = ${before}`);
    }
  }

  /** The recorded first sweep, or undefined when the poller never swept (first start). */
  state(): CursorState | undefined {
    const r = this.#stmt.getCursor.get();
    return r ? (JSON.parse(r.value) as CursorState) : undefined;
  }

  /** Event ids of the baseline. */
  baseline(): Set<string> {
    return new Set(this.#stmt.baseline.all().map((r) => r.eventid));
  }

  /**
   * Record the first sweep of a scope and its baseline in one transaction,
   * and resolve once it is on disk (a baseline lost to a power cut would be
   * taken again later, swallowing the problems that started in between).
   */
  async record(state: CursorState, eventIds: readonly string[], now: number): Promise<void> {
    this.#write(() =>
      this.#db
        .transaction(() => {
          for (const id of eventIds) this.#stmt.addBaseline.run(id, now);
          this.#stmt.putCursor.run(JSON.stringify(state));
        })
        .immediate(),
    );
    await this.#host.syncInbox();
  }

  /** Drop baseline events Zabbix reports resolved (event ids are never reused). */
  forget(eventIds: readonly string[]): void {
    if (eventIds.length === 0) return;
    this.#write(() =>
      this.#db
        .transaction(() => {
          for (const id of eventIds) this.#stmt.forget.run(id);
        })
        .immediate(),
    );
  }
}
