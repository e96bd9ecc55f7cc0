// Opening the store's two SQLite files: pragmas, the migration runner, size accounting.

import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fingerprintKey } from '../../../core/fingerprint.js';
import { nodeDigests } from '../../digests.js';
import { INBOX_MIGRATIONS, STATE_MIGRATIONS } from './migrations/index.js';

export interface StoreOptions {
  readonly synchronous?: 'full' | 'normal';
  /** Cap on the two files together, in bytes (0: none). */
  readonly maxSizeBytes?: number;
  /**
   * Who checkpoints the inbox's WAL: 'auto' (SQLite, at commit) or
   * 'external' (the intake's connection: the processing thread calls
   * checkpointInbox(), so the thread answering Zabbix never copies pages;
   * and acceptDeliveries() throws StoreBusy instead of waiting for one).
   */
  readonly inboxCheckpoint?: 'auto' | 'external';
}

/** One schema step of a file; `withInbox`: the step reads or writes the inbox file too (attached as `inbox`). */
export interface Migration {
  /** The file's schema version (PRAGMA user_version) once the step has run: its place in the list, from 1. */
  readonly version: number;
  /** Its file under migrations/, without the extension. */
  readonly name: string;
  readonly sql: string;
  readonly withInbox?: boolean;
}

/**
 * Page cache of a connection that only appends and reads in order (issue 16: SQLite's default is 2 MB per
 * connection, held by malloc in the thread that opened it, and the daemon opens four): the inbox, whose
 * deliveries are written at the end and read in id order, and the intake's state connection, which reads a few
 * rows (the decided position, open incidents' events at pruning). The processing thread's state connection keeps
 * the default: it reads and writes incidents and jobs all over the file.
 */
const SMALL_CACHE_KIB = 512;

/** How long a write waits for another connection's lock (the intake's own inbox writes wait 0: see StoreBusy). */
export const BUSY_TIMEOUT_MS = 5000;

/** The inbox file next to the state file: bridge.db → bridge.inbox.db. */
export function inboxFileOf(stateFile: string): string {
  if (stateFile === ':memory:') return stateFile;
  return stateFile.endsWith('.db') ? `${stateFile.slice(0, -3)}.inbox.db` : `${stateFile}.inbox.db`;
}

/** A connection in WAL mode, commits not fsynced unless asked (see transaction() and syncInbox()), capped in size. */
export function openDatabase(file: string, maxSizeBytes: number): Database.Database {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  if (maxSizeBytes > 0) {
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    db.pragma(`max_page_count = ${Math.max(16, Math.floor(maxSizeBytes / pageSize))}`);
  }
  return db;
}

/** Bytes of a file's pages in use (free pages excluded). */
export function usedBytes(db: Database.Database): number {
  // Prepared once per connection (db.pragma() prepares its statement at every call; the intake asks per batch).
  let q = sizeQueries.get(db);
  if (!q) {
    q = db.prepare<[], number>('SELECT (page_count - freelist_count) * page_size FROM pragma_page_count(), pragma_freelist_count(), pragma_page_size()').pluck();
    sizeQueries.set(db, q);
  }
  return q.get() ?? 0;
}
const sizeQueries = new WeakMap<Database.Database, Database.Statement<[], number>>();

/**
 * A query ending in `LIMIT ?`, run with its limit written into the SQL. SQLite (3.53, in better-sqlite3 12) compiles
 * a statement again at every run when its LIMIT is a bound parameter: binding it marks the plan stale, even to the
 * same value. In a storm that was 8-9 % of the processing thread's CPU, in the dispatcher's ready query and the
 * decisions' inbox read (issue 16: perf, and a uprobe on sqlite3Reprepare counting one per run). One statement per
 * power of two at or above the limit (a handful, whatever the limits asked), its rows cut to the limit.
 */
export class LimitedQuery<P extends unknown[], R> {
  readonly #db: Database.Database;
  readonly #sql: string;
  readonly #byBound = new Map<number, Database.Statement<P, R>>();

  constructor(db: Database.Database, sql: string) {
    if (!/LIMIT \?\s*$/.test(sql)) throw new Error(`LimitedQuery: the SQL must end with "LIMIT ?": ${sql}`);
    this.#db = db;
    this.#sql = sql.replace(/\?\s*$/, '');
  }

  /** The first `limit` rows (none when limit < 1). */
  all(limit: number, ...params: P): R[] {
    const n = Math.floor(limit);
    if (!(n >= 1)) return [];
    const bound = 2 ** Math.ceil(Math.log2(n));
    let statement = this.#byBound.get(bound);
    if (!statement) {
      statement = this.#db.prepare<P, R>(`${this.#sql}${bound}`);
      this.#byBound.set(bound, statement);
    }
    const rows = statement.all(...params);
    return rows.length > n ? rows.slice(0, n) : rows;
  }
}

/** Run the steps a file has not had yet (by its user_version), each in its own transaction with its version. */
export function migrate(db: Database.Database, migrations: readonly Migration[], inboxFile: string): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration ${m.name} is listed as step ${i + 1} but numbered ${m.version}`);
  });
  const version = db.pragma('user_version', { simple: true }) as number;
  migrations.slice(version).forEach((m, i) => {
    // ATTACH is not allowed inside a transaction.
    if (m.withInbox) db.prepare('ATTACH DATABASE ? AS inbox').run(inboxFile);
    try {
      db.transaction(() => {
        db.exec(m.sql);
        db.pragma(`user_version = ${version + i + 1}`);
      })();
    } finally {
      if (m.withInbox) db.exec('DETACH DATABASE inbox');
    }
  });
}

/** A file's `meta` table (key → text). */
export class MetaTable {
  readonly #get;
  readonly #put;

  constructor(db: Database.Database) {
    this.#get = db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?');
    this.#put = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
  }

  get(key: string): string | undefined {
    return this.#get.get(key)?.value;
  }

  put(key: string, value: string): void {
    this.#put.run(key, value);
  }
}

/** The two files of a store, open and migrated, with the options they were opened with. */
export interface StoreFiles {
  /** The state file (`bridge.db`). */
  readonly file: string;
  readonly state: Database.Database;
  /** The inbox file (`bridge.inbox.db`). */
  readonly inboxFile: string;
  readonly inbox: Database.Database;
  /** store.synchronous is full: power-safe commits and the inbox are fsynced. */
  readonly fullSync: boolean;
  readonly maxBytes: number;
  /** The intake's connection to the inbox (inboxCheckpoint 'external'): it never checkpoints, nor waits for a lock. */
  readonly intakeConnection: boolean;
}

/**
 * Open (create, migrate) the inbox, then the state file: the state's second
 * migration reads the inbox. Migrations may call fingerprint_key(text), the
 * state connection's own SQL function (fingerprintKey).
 */
export function openStoreFiles(file: string, options: StoreOptions = {}): StoreFiles {
  const { synchronous = 'full', maxSizeBytes = 0 } = options;
  const inboxFile = inboxFileOf(file);
  // Commits to the inbox are not fsynced by SQLite; syncInbox() does it off the event loop.
  const inbox = openDatabase(inboxFile, maxSizeBytes);
  inbox.pragma(`cache_size = -${SMALL_CACHE_KIB}`);
  const intakeConnection = options.inboxCheckpoint === 'external';
  if (intakeConnection) {
    inbox.pragma('wal_autocheckpoint = 0');
    inbox.pragma('busy_timeout = 0');
  }
  migrate(inbox, INBOX_MIGRATIONS, inboxFile);
  const state = openDatabase(file, maxSizeBytes);
  state.pragma('foreign_keys = ON');
  if (intakeConnection) state.pragma(`cache_size = -${SMALL_CACHE_KIB}`);
  state.function('fingerprint_key', { deterministic: true }, (fp: unknown) => fingerprintKey(String(fp), nodeDigests));
  migrate(state, STATE_MIGRATIONS, inboxFile);
  return { file, state, inboxFile, inbox, fullSync: synchronous === 'full', maxBytes: maxSizeBytes, intakeConnection };
}
