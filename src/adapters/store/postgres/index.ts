// The PostgreSQL store (store.backend: postgres): the same ports and the same per-thread types as the SQLite
// store (IntakeStore for the main thread, ProcessingStore for the processing thread), over one database.
// Each open store is one worker thread with two connections (bridge.ts, store.ts); the schema is created or
// migrated forward when a store opens (schema.ts, under an advisory lock).
//
// Several bridges on one database (issue 15, phase 2): job claims are leases with fencing epochs (store.ts),
// renewed here while their jobs run.

import type { PollMemory } from '../../../core/ports.js';
import type { IntakeStore, ProcessingStore } from '../sqlite/index.js';
import { SyncPg, type PgConnectionConfig } from './bridge.js';
import { migrate } from './schema.js';
import { PgPollMemory, PgStorePorts } from './store.js';

export { PgError, PgUnavailable, SyncPg, type PgConnectionConfig } from './bridge.js';
export { migrate, PG_MIGRATIONS } from './schema.js';
export { DEFAULT_LEASE_MS, LeaseLost } from './store.js';

export interface PgStoreOptions {
  readonly connection: PgConnectionConfig;
  /** What logs and the status say the store is (the database's address, never its password). */
  readonly label: string;
  /** This bridge's name among those sharing the database (store.postgres.node_name, or the host's name). */
  readonly node?: string;
  /** How long a job claim is leased (store.postgres.lease): longer than a GLPI request, renewed while it runs. */
  readonly leaseMs?: number;
}

/** Every port of both threads' stores over one worker (tools, `queue`, `status`, tests). */
// The methods are those of PgStorePorts (declaration merging: the interface adds IntakeStore's and ProcessingStore's extras).
export interface PostgresStore extends IntakeStore, ProcessingStore {}
export class PostgresStore extends PgStorePorts {
  readonly file: string;
  readonly #pg: SyncPg;
  #poll: PollMemory | undefined;
  readonly #renewal: NodeJS.Timeout;

  constructor(options: PgStoreOptions) {
    const pg = new SyncPg(options.connection);
    try {
      migrate(pg, 'state');
    } catch (e) {
      pg.close();
      throw e;
    }
    super(pg, { ...(options.node !== undefined ? { node: options.node } : {}), ...(options.leaseMs !== undefined ? { leaseMs: options.leaseMs } : {}) });
    this.#pg = pg;
    this.file = options.label;
    // The leases of the jobs this store claimed are renewed while they run (a run may take several GLPI requests
    // and quick retries). A node that stalls stops renewing: its claims lapse and another node retakes them.
    this.#renewal = setInterval(() => {
      try {
        this.renewLeases();
      } catch {
        // PostgreSQL unreachable: the next tick tries again; a claim that lapsed meanwhile is fenced (LeaseLost).
      }
    }, Math.max(100, Math.floor(this.leaseMs / 3)));
    this.#renewal.unref();
  }

  pollMemory(): PollMemory {
    return (this.#poll ??= new PgPollMemory(this.inboxSession));
  }

  /** PostgreSQL checkpoints itself. */
  checkpointInbox(): void {}

  close(): void {
    clearInterval(this.#renewal);
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
