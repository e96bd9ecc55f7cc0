// The PostgreSQL store (store.backend: postgres): the same ports and the same per-thread types as the SQLite
// store (IntakeStore for the main thread, ProcessingStore for the processing thread), over one database.
// Each open store is one worker thread with two connections (bridge.ts, store.ts); the schema is created or
// migrated forward when a store opens (schema.ts, under an advisory lock).
//
// Several bridges on one database (issue 15, phase 2): job claims are leases with fencing epochs (store.ts),
// renewed here while their jobs run.

import type { PendingDelivery, PollMemory } from '../../../core/ports.js';
import type { IntakeStore, ProcessingStore } from '../sqlite/index.js';
import { PgError, SyncPg, type PgConnectionConfig, type Statement } from './bridge.js';
import { DECIDER_LOCK, PgLeaderLock, POLLER_LOCK } from './leader.js';
import { clusterNodes, NodePresence, type ClusterNode } from './presence.js';
import { migrate } from './schema.js';
import { PgPollMemory, PgStorePorts } from './store.js';
import { markPostgresStore } from './kind.js';

export { PgError, PgUnavailable, SyncPg, type PgConnectionConfig } from './bridge.js';
export { migrate, PG_MIGRATIONS } from './schema.js';
export { DEFAULT_LEASE_MS, LeaseLost } from './store.js';
export { PgLeaderLock } from './leader.js';
export { NodeNameInUse, type ClusterNode } from './presence.js';

/** This node and the others the database knows (the status page, `status`, /readyz). */
export interface ClusterView {
  /** This node's name (store.postgres.node_name, or the host's name). */
  readonly node: string;
  /** Every node heard from within the last hour, this one included, with the roles it holds now. */
  readonly nodes: readonly ClusterNode[];
  /** Another instance took this node's name while this one was not heard from (stopped longer than a lease). */
  readonly nameLostTo?: { readonly host: string; readonly pid: number };
}

/** The marker key the bridges on a database share (meta marker_key: the first node's, or migrate-store's). */
const STORED_MARKER_KEY: Statement = { sql: "SELECT value FROM meta WHERE key = 'marker_key'" };

/**
 * The marker key stored in the database, read only (no schema made, nothing written: `explain`): undefined
 * when no bridge has started on it yet (no schema, or no key). PostgreSQL unreachable: thrown.
 */
export function readStoredMarkerKey(connection: PgConnectionConfig): string | undefined {
  const pg = new SyncPg(connection);
  try {
    const [r] = pg.run('read', [STORED_MARKER_KEY]);
    const v = r?.rows[0]?.value;
    return typeof v === 'string' ? v : undefined;
  } catch (e) {
    if (e instanceof PgError && e.code === '42P01') return undefined; // undefined_table: no bridge has made the schema yet
    throw e;
  } finally {
    pg.close();
  }
}

/** A decider-only commit was asked of a node that does not hold the decider lock (it was not committed). */
export class NotTheDecider extends Error {
  constructor() {
    super('this node does not hold the decider lock: not committed (the decider does it)');
    this.name = 'NotTheDecider';
  }
}

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
  /**
   * Take this node's name among the bridges on the database and keep it with a heartbeat (presence.ts): a
   * name another running bridge holds is refused (NodeNameInUse). Default: with the `poller` role (the main
   * thread: one per process).
   */
  readonly presence?: boolean;
}

/** Every port of both threads' stores over one worker (tools, `queue`, `status`, tests). */
// The methods are those of PgStorePorts (declaration merging: the interface adds IntakeStore's and ProcessingStore's extras).
// acceptDeliveriesAsync: optional in the port, always there here.
export interface PostgresStore extends Omit<IntakeStore, 'acceptDeliveriesAsync'>, ProcessingStore {}
export class PostgresStore extends PgStorePorts {
  readonly file: string;
  readonly #pg: SyncPg;
  #poll: PollMemory | undefined;
  readonly #renewal: NodeJS.Timeout;
  /** The lock of this store's role, if it has one. */
  readonly lock: PgLeaderLock | undefined;
  readonly #tenureListeners: (() => void)[] = [];
  readonly #nameLostListeners: ((to: { readonly host: string; readonly pid: number }) => void)[] = [];
  #tenureSeen = 0;
  /** This node's name held in the database (the main thread's store), with its heartbeat. */
  readonly presence: NodePresence | undefined;
  readonly #heartbeat: NodeJS.Timeout | undefined;
  /** The instance this node's start took its name over from (gone: not heard from, or its session ended), for the log. */
  readonly nameTakenOver: { readonly host: string; readonly pid: number; readonly why: string } | undefined;

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
    markPostgresStore(this);
    this.file = options.label;
    // A holder silent for a lease is stuck: taken over (leader.ts), as its jobs' claims would be.
    this.lock = options.role === undefined ? undefined : new PgLeaderLock(pg, options.role, options.role === 'decider' ? DECIDER_LOCK : POLLER_LOCK, this.leaseMs, this.node);
    // Before anything of this node runs (the processing thread's requeue at start reads claims by name):
    // a name another running bridge holds is refused here, and the process does not start.
    if (options.presence ?? options.role === 'poller') {
      const presence = new NodePresence(pg, 'state', this.node, this.leaseMs);
      try {
        this.nameTakenOver = presence.claim();
      } catch (e) {
        pg.close();
        throw e;
      }
      this.presence = presence;
      // Every few seconds, well within a lease (a node silent for a lease may lose its name to a new start);
      // sent without blocking the thread (its webhooks), one at a time.
      let beating = false;
      this.#heartbeat = setInterval(() => {
        if (beating) return;
        beating = true;
        const had = presence.lost;
        presence.beatAsync().then(
          (held) => {
            beating = false;
            if (!held && !had) for (const l of this.#nameLostListeners) l(presence.lost!);
          },
          () => {
            // PostgreSQL unreachable: the next beat tries again (a killed node's session ends; this one's is back).
            beating = false;
          },
        );
      }, Math.min(5000, Math.max(250, Math.floor(this.leaseMs / 4))));
      this.#heartbeat.unref();
    }
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

  /** Called when the heartbeat finds this node's name taken by another instance (it was not heard from for a lease). */
  onNameLost(listener: (to: { readonly host: string; readonly pid: number }) => void): void {
    this.#nameLostListeners.push(listener);
  }

  /** Called when this node becomes the decider again: what it remembers from an earlier tenure may be stale. */
  onNewTenure(listener: () => void): void {
    this.#tenureListeners.push(listener);
  }

  /**
   * The decider's store: deliveries are handed out only while this node holds the decider lock (checked on
   * every batch), and every one committed is durable (synchronous_commit on), whichever node took it, so the
   * caller's `throughId` (its own intake's) does not bound them; they are bounded instead by the ids every
   * node's intake has finished committing below (store.ts, deliveriesOfEveryNode). A new tenure is announced
   * first, before the batch reads anything.
   */
  override unprocessedDeliveries(limit: number, throughId?: number): PendingDelivery[] {
    if (this.lock?.what !== 'decider') return super.unprocessedDeliveries(limit, throughId);
    return this.holdRole() ? this.deliveriesOfEveryNode(limit) : [];
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

  /**
   * fn in one state transaction that commits only while this node holds the decider lock, fenced as a
   * decision is (zgb_assert_lock in the same transaction): the hand-over of a closed ticket's incident (a new
   * cycle, its jobs) is a decision. A node that lost the lock without knowing fails the commit, and nothing
   * of fn is kept; one that knows it does not hold the lock throws NotTheDecider before running fn.
   *
   * The fence rides on markProcessed: recording the decided position again, unchanged (GREATEST keeps it),
   * is the store's one fenced write (store.ts), and it joins this transaction.
   */
  deciderTransaction<T>(fn: () => T): T {
    if (this.lock?.what !== 'decider' || this.lock.fenceStatement() === undefined) throw new NotTheDecider();
    return this.transaction(() => {
      this.markProcessed(this.processedThrough());
      return fn();
    }, 'crash-safe');
  }

  /** The marker key the bridges on this database share, read only (undefined: none stored yet). */
  storedMarkerKey(): string | undefined {
    const v = this.#pg.run('state', [STORED_MARKER_KEY])[0]?.rows[0]?.value;
    return typeof v === 'string' ? v : undefined;
  }

  /** This node and the others on the database, with their roles now (one query, on the state connection). */
  clusterView(): ClusterView {
    const lost = this.presence?.lost;
    return { node: this.node, nodes: clusterNodes(this.#pg, 'state'), ...(lost ? { nameLostTo: { host: lost.host, pid: lost.pid } } : {}) };
  }

  close(): void {
    clearInterval(this.#renewal);
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.lock?.release();
    this.presence?.release();
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

export { asPostgresStore, clusterRole } from './kind.js';
