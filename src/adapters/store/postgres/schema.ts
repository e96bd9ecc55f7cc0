// The PostgreSQL store's schema, created and migrated forward at start. Forward only: a migration that shipped
// is never edited; a change is a new entry with the next version. Every node runs migrate() when it opens
// the store; the steps run in one transaction under a transaction-scoped advisory lock, so two nodes
// starting at once migrate once (the second waits for the first's commit, then finds nothing to do).
//
// One database holds what the SQLite store keeps in two files: the inbox (deliveries, the poller's memory)
// and the state. Ids come from identity columns; JSON is jsonb. Designed for several nodes later (issue 15,
// phase 2): deliveries are unique by key across nodes; the job claim selects with FOR UPDATE SKIP LOCKED;
// version 2 adds the claims' leases and fencing epochs, and the fence of the decider's and poller's locks.

import type { SyncPg } from './bridge.js';

export interface PgMigration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** pg_advisory_xact_lock key of the migrations ('zgbm' as a number; any fixed bigint shared by every node). */
export const MIGRATION_LOCK = 0x7a67626d;

export const PG_MIGRATIONS: readonly PgMigration[] = [
  {
    version: 1,
    name: 'pg-001-initial',
    sql: `
    CREATE TABLE deliveries (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      delivery_key text NOT NULL UNIQUE,
      received_at bigint NOT NULL,
      source text NOT NULL,
      alert jsonb NOT NULL
    );
    CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
    CREATE TABLE incidents (
      fp_key text PRIMARY KEY,
      status text NOT NULL,
      state jsonb NOT NULL,
      updated_at bigint NOT NULL,
      -- Insertion order (a tiebreak of the open list; kept by an upsert).
      ord bigint GENERATED ALWAYS AS IDENTITY
    );
    CREATE INDEX incidents_ended ON incidents (updated_at) WHERE status <> 'open';
    CREATE INDEX incidents_open_by_time ON incidents (updated_at DESC, ord DESC) WHERE status = 'open';
    CREATE TABLE tickets (
      fp_key text NOT NULL,
      seq integer NOT NULL,
      ticket_id bigint NOT NULL,
      marker text NOT NULL,
      created_at bigint NOT NULL,
      PRIMARY KEY (fp_key, seq)
    );
    CREATE TABLE incident_events (
      event_id text PRIMARY KEY,
      fp_key text NOT NULL,
      seq integer NOT NULL,
      open boolean NOT NULL,
      ord bigint GENERATED ALWAYS AS IDENTITY
    );
    CREATE INDEX incident_events_by_cycle ON incident_events (fp_key, seq) WHERE open;
    CREATE INDEX incident_events_by_key ON incident_events (fp_key);
    CREATE TABLE jobs (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      fp_key text NOT NULL,
      lane text NOT NULL,
      seq integer NOT NULL,
      type text NOT NULL,
      payload jsonb NOT NULL,
      status text NOT NULL,
      attempts integer NOT NULL DEFAULT 0,
      next_attempt_at bigint NOT NULL,
      last_error text,
      delivery_id bigint,
      created_at bigint NOT NULL,
      updated_at bigint NOT NULL
    );
    CREATE INDEX jobs_by_lane ON jobs (fp_key, lane, id) WHERE status IN ('pending', 'running');
    CREATE INDEX jobs_by_key_any ON jobs (fp_key, status);
    CREATE INDEX jobs_ready ON jobs (next_attempt_at, id) WHERE status = 'pending';
    CREATE INDEX jobs_by_status ON jobs (status, id);
    CREATE TABLE parked_deliveries (
      delivery_id bigint PRIMARY KEY,
      event_id text NOT NULL,
      kind text NOT NULL,
      error text NOT NULL,
      parked_at bigint NOT NULL
    );
    CREATE TABLE decision_log (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      at bigint NOT NULL,
      delivery_id bigint,
      event_id text NOT NULL,
      kind text NOT NULL,
      host text NOT NULL,
      fingerprint text NOT NULL,
      category text NOT NULL,
      severity text NOT NULL,
      action text NOT NULL,
      reason text NOT NULL,
      jobs jsonb NOT NULL
    );
    CREATE TABLE poll_cursor (key text PRIMARY KEY, value jsonb NOT NULL);
    CREATE TABLE poll_baseline (eventid text PRIMARY KEY, recorded_at bigint NOT NULL);
    `,
  },
  {
    // Several bridges on one database (issue 15, phase 2). A claim is a lease: `lease_until` on the
    // database's clock (the nodes' clocks may disagree), renewed while the job runs; `epoch` counts claims,
    // so a node whose lease expired and was taken over cannot record its outcome over the newer claim
    // (store.ts). zgb_assert_lock fences a commit on a session advisory lock held by a given backend
    // (the decider's and the poller's, leader.ts): a node that lost its lock fails the commit, clearly.
    version: 2,
    name: 'pg-002-leases',
    sql: `
    ALTER TABLE jobs ADD COLUMN epoch bigint NOT NULL DEFAULT 0, ADD COLUMN lease_until timestamptz, ADD COLUMN claimed_by text;
    CREATE INDEX jobs_leased ON jobs (lease_until) WHERE status = 'running';
    CREATE FUNCTION zgb_assert_lock(lock_key bigint, holder integer, what text) RETURNS boolean LANGUAGE plpgsql AS $fn$
    BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_locks
                      WHERE locktype = 'advisory' AND granted AND pid = holder AND objsubid = 1
                        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                        AND ((classid::bigint << 32) | objid::bigint) = lock_key) THEN
        RAISE EXCEPTION 'this node no longer holds the % lock (its session ended): another node may have taken over', what
          USING ERRCODE = 'ZG001';
      END IF;
      RETURN true;
    END
    $fn$;
    `,
  },
  {
    // A job that finds its ticket closed in GLPI hands the incident over to a new cycle: a decision, so the
    // decider's (leader.ts). A node that is not the decider leaves it here; the decider takes it (store.ts).
    version: 3,
    name: 'pg-003-handovers',
    sql: `
    CREATE TABLE handovers (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      fingerprint text NOT NULL,
      seq integer NOT NULL,
      ticket_id bigint NOT NULL,
      node text NOT NULL,
      created_at bigint NOT NULL
    );
    `,
  },
  {
    // Which bridges share the database (issue 15, gaps): one row per store.postgres.node_name, held by one
    // running instance at a time (presence.ts). A node writes its instance id, host, pid and start, and a
    // heartbeat on its main thread's state connection; a node starting under a name another live instance
    // holds refuses to start (NODE_NAME_IN_USE). backend_pid/backend_start are the heartbeat's session (a
    // killed node's session ends at once: its name is free before its heartbeat ages). decider_backend and
    // poller_backend are the sessions that took those locks (leader.ts): the status joins them with pg_locks,
    // so a role shown is a lock held now, not one remembered.
    version: 4,
    name: 'pg-004-nodes',
    sql: `
    CREATE TABLE nodes (
      name text PRIMARY KEY,
      instance text NOT NULL,
      host text NOT NULL,
      pid integer NOT NULL,
      started_at timestamptz NOT NULL,
      heartbeat timestamptz NOT NULL,
      stopped_at timestamptz,
      backend_pid integer,
      backend_start timestamptz,
      decider_backend integer,
      poller_backend integer
    );
    `,
  },
  {
    // earlierUpdates() reads the updates of one event by a prefix of their delivery key. The UNIQUE index serves a
    // prefix range only when the database's collation is C; under en_US.UTF-8 (Debian's default) every decision
    // on a problem scanned the whole inbox (18-110 ms with 30,000 deliveries, found by the issue 15 benchmark).
    version: 5,
    name: 'pg-005-delivery-key-prefix',
    sql: 'CREATE INDEX deliveries_key_c ON deliveries (delivery_key COLLATE "C")',
  },
];

/** Create or migrate the schema; returns the versions this call applied (none when another node did). */
export function migrate(pg: SyncPg, conn: string, migrations: readonly PgMigration[] = PG_MIGRATIONS): number[] {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration ${m.name} is listed as step ${i + 1} but numbered ${m.version}`);
  });
  try {
    const [, , , seen] = pg.run(conn, [
      { sql: 'BEGIN' },
      { sql: 'SELECT pg_advisory_xact_lock($1)', params: [MIGRATION_LOCK] },
      // CREATE TABLE IF NOT EXISTS is not safe against a concurrent creator by itself: the lock above makes it so.
      { sql: 'CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())' },
      { sql: 'SELECT version FROM schema_migrations ORDER BY version' },
    ]);
    const done = new Set((seen?.rows ?? []).map((r) => Number(r.version)));
    const newer = [...done].filter((v) => v > migrations.length);
    if (newer.length > 0) throw new Error(`the database's schema is at version ${Math.max(...newer)}, newer than this bridge knows (${migrations.length}): upgrade the bridge`);
    const todo = migrations.filter((m) => !done.has(m.version));
    pg.run(conn, [
      ...todo.flatMap((m) => [{ sql: m.sql }, { sql: 'INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', params: [m.version, m.name] }]),
      { sql: 'COMMIT' },
    ]);
    return todo.map((m) => m.version);
  } catch (e) {
    abandon(pg, conn);
    throw e;
  }
}

/** A transaction of several round trips that failed half-way: rolled back, or, when even that fails, the connection dropped. */
export function abandon(pg: SyncPg, conn: string): void {
  try {
    pg.run(conn, [{ sql: 'ROLLBACK' }]);
  } catch {
    pg.drop(conn);
  }
}
