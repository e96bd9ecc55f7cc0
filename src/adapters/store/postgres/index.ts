// The PostgreSQL store (store.backend: postgres): the same ports and the same per-thread types as the SQLite
// store (IntakeStore for the main thread, ProcessingStore for the processing thread), over one database.
// Each open store is one worker thread with two connections (bridge.ts, store.ts); the schema is created or
// migrated forward when a store opens (schema.ts, under an advisory lock).
//
// Phase 1 of issue 15: one bridge per database. Several bridges on one database need the decider's and the
// claims' leases (phase 2); until then a second node would decide the same deliveries twice.

import type { PollMemory } from '../../../core/ports.js';
import type { IntakeStore, ProcessingStore } from '../sqlite/index.js';
import { SyncPg, type PgConnectionConfig } from './bridge.js';
import { migrate } from './schema.js';
import { PgPollMemory, PgStorePorts } from './store.js';

export { PgError, PgUnavailable, SyncPg, type PgConnectionConfig } from './bridge.js';
export { migrate, PG_MIGRATIONS } from './schema.js';

export interface PgStoreOptions {
  readonly connection: PgConnectionConfig;
  /** What logs and the status say the store is (the database's address, never its password). */
  readonly label: string;
}

/** Every port of both threads' stores over one worker (tools, `queue`, `status`, tests). */
// The methods are those of PgStorePorts (declaration merging: the interface adds IntakeStore's and ProcessingStore's extras).
export interface PostgresStore extends IntakeStore, ProcessingStore {}
export class PostgresStore extends PgStorePorts {
  readonly file: string;
  readonly #pg: SyncPg;
  #poll: PollMemory | undefined;

  constructor(options: PgStoreOptions) {
    const pg = new SyncPg(options.connection);
    try {
      migrate(pg, 'state');
    } catch (e) {
      pg.close();
      throw e;
    }
    super(pg);
    this.#pg = pg;
    this.file = options.label;
  }

  pollMemory(): PollMemory {
    return (this.#poll ??= new PgPollMemory(this.inboxSession));
  }

  /** PostgreSQL checkpoints itself. */
  checkpointInbox(): void {}

  close(): void {
    this.#pg.close();
  }
}

/** The main thread's store (the intake's connections). */
export function openPostgresIntakeStore(options: PgStoreOptions): IntakeStore {
  return new PostgresStore(options);
}

/** The processing thread's store. */
export function openPostgresProcessingStore(options: PgStoreOptions): ProcessingStore {
  return new PostgresStore(options);
}
