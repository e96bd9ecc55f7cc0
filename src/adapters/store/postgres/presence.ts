// Which bridges share the database, and one running instance per node name (issue 15, gaps; table `nodes`,
// migration 4). store.postgres.node_name names a node in job claims (claimed_by), its run record
// (meta clean_stop:<node>), the metrics and the logs: two running bridges under one name would read each
// other's run record and claims as their own. So a node takes its name at start:
//
// - free (no row, or a row marked stopped): taken;
// - held by an instance that is gone: taken over. Gone is: its heartbeat is older than a lease (a stopped or
//   frozen process, a host that vanished), or the session it beats on is no longer in pg_stat_activity
//   (a killed process: PostgreSQL ends its sessions when their sockets close, so a node restarted at once
//   after kill -9 by systemd is not refused for a lease). A session may outlive its process by a moment:
//   the check is asked again for up to STILL_THERE_MS before refusing;
// - held by an instance that beats and whose session is there: refused (NodeNameInUse), naming that
//   instance's host and pid.
//
// The heartbeat runs on a connection the node already has (its main thread's state connection), every few
// seconds; it updates the row only while this instance still holds it. An instance that finds its name
// taken (it was stopped longer than a lease, and another instance started under the name) says so:
// `lost`, which /readyz reports.

import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { PgUnavailable, type Statement, type SyncPg } from './bridge.js';
import { DECIDER_LOCK, POLLER_LOCK } from './leader.js';

/** How long a session that outlived its killed process may take to go, before a start is refused. */
const STILL_THERE_MS = 2000;
/** Nodes shown by the status: those heard from (or stopped) within this long. */
export const SEEN_RECENTLY_MS = 60 * 60_000;

/** Another running bridge holds this node's name. */
export class NodeNameInUse extends Error {
  readonly code = 'NODE_NAME_IN_USE';
  constructor(
    readonly node: string,
    readonly other: { readonly instance: string; readonly host: string; readonly pid: number; readonly heartbeatAgeMs: number },
  ) {
    super(
      `NODE_NAME_IN_USE: another running bridge uses store.postgres.node_name "${node}" on this database (host ${other.host}, pid ${other.pid}, ` +
        `instance ${other.instance}, heard from ${Math.round(other.heartbeatAgeMs / 100) / 10} s ago): set a distinct store.postgres.node_name on each bridge ` +
        '(the default is the host\'s name: two bridges on one host need one each)',
    );
    this.name = 'NodeNameInUse';
  }
}

/** One node as the database knows it. */
export interface ClusterNode {
  readonly name: string;
  readonly host: string;
  readonly pid: number;
  readonly startedAt: number;
  /** How long since its last heartbeat (its stop, for a node that stopped). */
  readonly heartbeatAgeMs: number;
  readonly stopped: boolean;
  /** The roles whose lock its sessions hold now (decider, poller). */
  readonly roles: readonly string[];
}

interface Row {
  instance: string;
  host: string;
  pid: number;
  silent_ms: string | number;
  stopped: boolean;
  session_alive: boolean;
}

/** The session a statement runs on, and when it started (null when another role's session hides it). */
const MY_SESSION = '(SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid())';

export class NodePresence {
  readonly #pg: SyncPg;
  readonly #conn: string;
  readonly node: string;
  readonly instance = randomUUID();
  readonly host = hostname();
  readonly pid = process.pid;
  readonly #leaseMs: number;
  /** The instance that took this node's name while this one was not heard from (undefined: the name is this instance's). */
  lost: { readonly host: string; readonly pid: number; readonly instance: string } | undefined;

  constructor(pg: SyncPg, conn: string, node: string, leaseMs: number) {
    this.#pg = pg;
    this.#conn = conn;
    this.node = node;
    this.#leaseMs = leaseMs;
  }

  /**
   * Take this node's name (see above), or throw NodeNameInUse. Returns the instance it took over from, if
   * the name was held by one that is gone (for the log).
   */
  claim(): { readonly host: string; readonly pid: number; readonly why: string } | undefined {
    const deadline = Date.now() + STILL_THERE_MS;
    for (;;) {
      const r = this.#tryClaim();
      if (r.ok) return r.tookOver;
      if (Date.now() >= deadline) throw new NodeNameInUse(this.node, r.other);
      this.#pg.run(this.#conn, [{ sql: 'SELECT pg_sleep(0.2)' }]);
    }
  }

  #tryClaim():
    | { ok: true; tookOver?: { host: string; pid: number; why: string } }
    | { ok: false; other: { instance: string; host: string; pid: number; heartbeatAgeMs: number } } {
    const mine = [this.node, this.instance, this.host, this.pid];
    try {
      const [, inserted] = this.#pg.run(this.#conn, [
        { sql: 'BEGIN' },
        {
          sql: `INSERT INTO nodes (name, instance, host, pid, started_at, heartbeat, backend_pid, backend_start)
                VALUES ($1, $2, $3, $4, clock_timestamp(), clock_timestamp(), pg_backend_pid(), ${MY_SESSION})
                ON CONFLICT (name) DO NOTHING RETURNING name`,
          params: mine,
        },
      ]);
      if ((inserted?.rowCount ?? 0) === 1) {
        this.#pg.run(this.#conn, [{ sql: 'COMMIT' }]);
        return { ok: true };
      }
      // Held (or held once): locked while this start decides, so two starting at once do not both take it.
      const [held] = this.#pg.run(this.#conn, [
        {
          sql: `SELECT n.instance, n.host, n.pid, n.stopped_at IS NOT NULL AS stopped,
                       (extract(epoch FROM clock_timestamp() - n.heartbeat) * 1000)::bigint AS silent_ms,
                       EXISTS (SELECT 1 FROM pg_stat_activity a
                                WHERE a.pid = n.backend_pid
                                  AND (a.backend_start IS NULL OR n.backend_start IS NULL OR a.backend_start = n.backend_start)) AS session_alive
                  FROM nodes n WHERE n.name = $1 FOR UPDATE`,
          params: [this.node],
        },
      ]);
      const row = held?.rows[0] as Row | undefined;
      const silent = Number(row?.silent_ms ?? 0);
      if (row && !row.stopped && silent <= this.#leaseMs && row.session_alive) {
        this.#pg.run(this.#conn, [{ sql: 'ROLLBACK' }]);
        return { ok: false, other: { instance: row.instance, host: row.host, pid: Number(row.pid), heartbeatAgeMs: silent } };
      }
      this.#pg.run(this.#conn, [
        {
          sql: `UPDATE nodes SET instance = $2, host = $3, pid = $4, started_at = clock_timestamp(), heartbeat = clock_timestamp(), stopped_at = NULL,
                       backend_pid = pg_backend_pid(), backend_start = ${MY_SESSION}, decider_backend = NULL, poller_backend = NULL
                 WHERE name = $1`,
          params: mine,
        },
        { sql: 'COMMIT' },
      ]);
      const why = !row || row.stopped ? undefined : silent > this.#leaseMs ? `not heard from for ${Math.round(silent / 1000)} s` : 'its session to PostgreSQL has ended';
      return { ok: true, ...(row && why ? { tookOver: { host: row.host, pid: Number(row.pid), why } } : {}) };
    } catch (e) {
      try {
        this.#pg.run(this.#conn, [{ sql: 'ROLLBACK' }]);
      } catch {
        this.#pg.drop(this.#conn);
      }
      throw e;
    }
  }

  /**
   * The heartbeat: the row's time, and the session it beats on (a reconnect is a new one). False when the
   * name is no longer this instance's (`lost` says whose it is). PostgreSQL unreachable: thrown.
   */
  beat(): boolean {
    const [r] = this.#pg.run(this.#conn, [this.#beatStatement()]);
    if ((r?.rowCount ?? 0) === 1) {
      this.lost = undefined;
      return true;
    }
    const [o] = this.#pg.run(this.#conn, [this.#holderStatement()]);
    return this.#lostTo(o?.rows[0]);
  }

  /**
   * beat() without blocking the calling thread (the main thread's webhooks go on meanwhile): its commit waits
   * for a WAL flush, which took tens of milliseconds behind the intake's commits under load.
   */
  async beatAsync(): Promise<boolean> {
    const [r] = await this.#pg.runAsync(this.#conn, [this.#beatStatement()]);
    if ((r?.rowCount ?? 0) === 1) {
      this.lost = undefined;
      return true;
    }
    const [o] = await this.#pg.runAsync(this.#conn, [this.#holderStatement()]);
    return this.#lostTo(o?.rows[0]);
  }

  #beatStatement(): Statement {
    return {
      sql: `UPDATE nodes SET heartbeat = clock_timestamp(), backend_pid = pg_backend_pid(), backend_start = ${MY_SESSION}
             WHERE name = $1 AND instance = $2`,
      params: [this.node, this.instance],
    };
  }

  #holderStatement(): Statement {
    return { sql: 'SELECT instance, host, pid FROM nodes WHERE name = $1', params: [this.node] };
  }

  #lostTo(row: Record<string, unknown> | undefined): false {
    const other = row as { instance: string; host: string; pid: number } | undefined;
    this.lost = other ? { instance: other.instance, host: other.host, pid: Number(other.pid) } : { instance: '(none)', host: '(none)', pid: 0 };
    return false;
  }

  /** A graceful stop: the name is free at once (the row stays, marked stopped, for the status). */
  release(): void {
    try {
      this.#pg.run(this.#conn, [{ sql: 'UPDATE nodes SET stopped_at = clock_timestamp(), heartbeat = clock_timestamp(), decider_backend = NULL, poller_backend = NULL WHERE name = $1 AND instance = $2', params: [this.node, this.instance] }]);
    } catch (e) {
      // Unreachable: the others see the heartbeat age, or the session gone.
      if (!(e instanceof PgUnavailable)) throw e;
    }
  }
}

/**
 * Every node heard from (or stopped) within SEEN_RECENTLY_MS, by name, with the roles whose lock its
 * sessions hold now (pg_locks: a role shown is held, not remembered).
 */
export function clusterNodes(pg: SyncPg, conn: string): ClusterNode[] {
  const [r] = pg.run(conn, [
    {
      sql: `SELECT n.name, n.host, n.pid, n.stopped_at IS NOT NULL AS stopped,
                   (extract(epoch FROM n.started_at) * 1000)::bigint AS started_ms,
                   (extract(epoch FROM clock_timestamp() - COALESCE(n.stopped_at, n.heartbeat)) * 1000)::bigint AS silent_ms,
                   array_remove(ARRAY[
                     CASE WHEN n.stopped_at IS NULL AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = n.decider_backend AND ${heldLock('$1')}) THEN 'decider' END,
                     CASE WHEN n.stopped_at IS NULL AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = n.poller_backend AND ${heldLock('$2')}) THEN 'poller' END
                   ], NULL) AS roles
              FROM nodes n
             WHERE COALESCE(n.stopped_at, n.heartbeat) > clock_timestamp() - $3 * interval '1 millisecond'
             ORDER BY n.name`,
      params: [DECIDER_LOCK, POLLER_LOCK, SEEN_RECENTLY_MS],
    },
  ]);
  return (r?.rows ?? []).map((x) => ({
    name: String(x.name),
    host: String(x.host),
    pid: Number(x.pid),
    startedAt: Number(x.started_ms),
    heartbeatAgeMs: Math.max(0, Number(x.silent_ms)),
    stopped: x.stopped === true,
    roles: (x.roles as string[] | null) ?? [],
  }));
}

/** The advisory lock `key` (one of leader.ts's), granted, in this database (as leader.ts and zgb_assert_lock find it). */
function heldLock(key: string): string {
  return `l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.classid = 0 AND l.objid = ${key}::bigint::oid
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`;
}
