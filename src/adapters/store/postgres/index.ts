// The PostgreSQL store (store.backend: postgres): the same ports and the same per-thread types as the SQLite
// store (IntakeStore for the main thread, ProcessingStore for the processing thread), over one database.
// Each open store is one worker thread with two connections (bridge.ts, store.ts); the schema is created or
// migrated forward when a store opens (schema.ts, under an advisory lock).
//
// Several bridges on one database (issue 15, phase 2): job claims are leases with fencing epochs (store.ts),
// renewed here while their jobs run.

import type { PendingDelivery, PollMemory } from '../../../core/ports.js';
import type { IntakeStore, ProcessingStore } from '../sqlite/index.js';
import { SyncPg, type PgConnectionConfig, type Statement } from './bridge.js';
import { DECIDER_LOCK, PgLeaderLock, POLLER_LOCK } from './leader.js';
import { migrate } from './schema.js';
import { PgPollMemory, PgStorePorts } from './store.js';

export { PgError, PgUnavailable, SyncPg, type PgConnectionConfig } from './bridge.js';
export { migrate, PG_MIGRATIONS } from './schema.js';
export { DEFAULT_LEASE_MS, LeaseLost } from './store.js';
export { PgLeaderLock } from './leader.js';

export interface PgStoreOptions {
  readonly connection: PgConnectionConfig;
  /** What logs and the status say the store is (the database's address, never its password). */
  readonly label: string;
  /** This bridge's name among those sharing the database (store.postgres.node_name, or the host's name). */
  readonly node?: string;
  /** How long a job claim is leased (store.postgres.lease): longer than a GLPI request, renewed while it runs. */
  readonly leaseMs?: number;
  /**
   * The one-at-a-time role this store's thread plays when it holds its lock (leader.ts): `decider` (the
   * processing thread: decisions, and the GLPI read-back), `poller` (the main thread: the Zabbix poller).
   */
  readonly role?: 'decider' | 'poller';
}

/** Every port of both threads' stores over one worker (tools, `queue`, `status`, tests). */
// The methods are those of PgStorePorts (declaration merging: the interface adds IntakeStore's and ProcessingStore's extras).
export interface PostgresStore extends IntakeStore, ProcessingStore {}
export class PostgresStore extends PgStorePorts {
  readonly file: string;
  readonly #pg: SyncPg;
  #poll: PollMemory | undefined;
  readonly #renewal: NodeJS.Timeout;
  /** The lock of this store's role, if it has one. */
  readonly lock: PgLeaderLock | undefined;
  readonly #tenureListeners: (() => void)[] = [];
  #tenureSeen = 0;

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
    // A holder silent for a lease is stuck: taken over (leader.ts), as its jobs' claims would be.
    this.lock = options.role === undefined ? undefined : new PgLeaderLock(pg, options.role, options.role === 'decider' ? DECIDER_LOCK : POLLER_LOCK, this.leaseMs);
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

  /** Called when this node becomes the decider again: what it remembers from an earlier tenure may be stale. */
  onNewTenure(listener: () => void): void {
    this.#tenureListeners.push(listener);
  }

  /**
   * The decider's store: deliveries are handed out only while this node holds the decider lock (checked on
   * every batch), and every one committed is durable (synchronous_commit on), whichever node took it, so the
   * caller's `throughId` (its own intake's) does not bound them. A new tenure is announced first, before the
   * batch reads anything.
   */
  override unprocessedDeliveries(limit: number, throughId?: number): PendingDelivery[] {
    if (this.lock?.what !== 'decider') return super.unprocessedDeliveries(limit, throughId);
    return this.holdRole() ? super.unprocessedDeliveries(limit) : [];
  }

  /** Take or confirm this store's role (false: another node holds it, or PostgreSQL is unreachable); a new tenure is announced first. */
  holdRole(): boolean {
    if (!this.lock?.hold()) return false;
    if (this.#tenureSeen !== this.lock.tenure) {
      this.#tenureSeen = this.lock.tenure;
      for (const l of this.#tenureListeners) l();
    }
    return true;
  }

  protected override decisionFence(): Statement | undefined {
    return this.lock?.what === 'decider' ? this.lock.fenceStatement() : undefined;
  }

  close(): void {
    clearInterval(this.#renewal);
    this.lock?.release();
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

/** The cluster role of a store (undefined: SQLite, or a PostgreSQL store opened without one). */
export function clusterRole(store: object): PostgresStore | undefined {
  return store instanceof PostgresStore && store.lock !== undefined ? store : undefined;
}
