// Group flush of a SQLite WAL: the inbox's before each 202 (inbox.ts syncInbox) and the state's before a job's
// request leaves (decisions.ts flushed, for the claims).

import { closeSync, fdatasync, openSync } from 'node:fs';
import type Database from 'better-sqlite3';

/**
 * Resolves calls once every commit made on the connection before them is on disk: an fdatasync of its WAL on
 * libuv's thread pool, so the thread keeps working meanwhile; calls made while one runs share the next one
 * (group commit). Same guarantee as SQLite's synchronous=FULL in WAL mode, which fsyncs that file at every
 * commit; a checkpoint syncs the WAL before and the database file after copying, so frames moved meanwhile
 * are on disk too.
 */
export class WalFlush {
  /** The WAL, opened for fdatasync: it exists while a connection has the database open, and fsync applies to the file, whichever descriptor. */
  #fd: number | undefined;
  #running = false;
  #waiters: { resolve: () => void; reject: (e: Error) => void }[] = [];

  constructor(
    private readonly db: Database.Database,
    private readonly file: string,
  ) {}

  flushed(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      if (!this.#running) this.#start();
    });
  }

  #start(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    this.#running = true;
    const done = (err: Error | null) => {
      this.#running = false;
      if (!this.db.open) this.close();
      for (const w of waiters) {
        if (err) w.reject(err);
        else w.resolve();
      }
      if (this.#waiters.length > 0) this.#start();
    };
    try {
      this.#fd ??= openSync(`${this.file}-wal`, 'r');
      fdatasync(this.#fd, done);
    } catch (e) {
      done(e as Error);
    }
  }

  /** Before the connection closes: a flush in flight closes the descriptor when it is done. */
  close(): void {
    if (this.#fd !== undefined && !this.#running) {
      closeSync(this.#fd);
      this.#fd = undefined;
    }
  }
}
