// One node at a time for the work that must not run twice across bridges sharing a database (issue 15,
// phase 2): the decider (decisions in order per incident, cluster-wide) and the poller (Zabbix poller and
// the GLPI read-back sweep). Each is a session-level advisory lock held on a connection of its own:
//
// - Held for as long as that session lives. A node that dies (kill -9, crash, power cut of its host) loses
//   it when PostgreSQL sees the connection close: at once for a dead process (its kernel closes the socket),
//   within the TCP keepalive settings below for a host that vanished. Another node takes it at its next try.
// - A session, so never through a transaction pooler (PgBouncer in transaction or statement mode hands the
//   server session to other clients between transactions: the lock would be held by the wrong client, or
//   released by a DISCARD ALL). Session pooling, or a direct connection, only.
// - Whether it is still held is checked on the same connection (hold()): the worker reconnects a dropped
//   connection on its own, so the backend's pid is compared with the one that took the lock — a new pid is a
//   new session, which does not hold it.
// - A node can believe it holds the lock a moment after it lost it (a partition): a commit that must not
//   happen then is fenced in SQL (fenceStatement(): zgb_assert_lock, schema.ts), which fails unless the
//   backend that took the lock still holds it.
// - A holder that is alive but stuck (a stopped process, a frozen VM: its connection stays open) would keep
//   the lock forever. The holder checks its lock every few hundred milliseconds, which PostgreSQL shows as
//   the session's query_start; a node that finds the holder silent for longer than `stallMs` (a job lease)
//   ends that session (pg_terminate_backend: the bridges share one role, which may signal its own
//   sessions) and takes the lock at its next try. The stuck holder, once it runs again, finds its session
//   gone: the fence refuses its commits, and it becomes a standby.

import { hostname } from 'node:os';
import { PgUnavailable, type Statement, type SyncPg } from './bridge.js';

/** The advisory lock keys (ASCII 'zgbd' and 'zgbp' as numbers; fixed, shared by every node). */
export const DECIDER_LOCK = 0x7a676264;
export const POLLER_LOCK = 0x7a676270;

/** A standby looks for a stuck holder at most this often (a holder is stuck after a lease: tens of seconds). */
const STUCK_CHECK_MS = 250;

/**
 * Server-side keepalives of the lock's session (settable per session): a host that vanished without closing
 * its connection releases the lock within about idle + interval × count seconds, and tcp_user_timeout bounds
 * unacknowledged writes the same way. Ignored on a Unix socket (a local process that dies closes it anyway).
 */
const KEEPALIVES = 'SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3; SET tcp_user_timeout = 25000';

export class PgLeaderLock {
  readonly #pg: SyncPg;
  readonly #conn: string;
  readonly #key: number;
  readonly what: string;
  /** The backend holding the lock for this node (undefined: not held). */
  #pid: number | undefined;
  #tenure = 0;
  readonly #stallMs: number;
  /** When this node last looked for a stuck holder (#endStuckHolder). */
  #stuckCheckedAt = 0;
  /** The stuck holder this node ended last (for the log): its backend pid and how long it had been silent. */
  lastTakeover: { readonly pid: number; readonly silentMs: number } | undefined;

  /** This node's name (store.postgres.node_name): the session that takes the lock is written in its `nodes` row (presence.ts). */
  readonly #node: string | undefined;

  constructor(pg: SyncPg, what: 'decider' | 'poller', key: number, stallMs = 60_000, node?: string) {
    this.#pg = pg;
    this.what = what;
    this.#node = node;
    this.#key = key;
    this.#conn = `lock:${what}`;
    this.#stallMs = stallMs;
  }

  /** Whether this node held the lock at the last hold(). */
  get held(): boolean {
    return this.#pid !== undefined;
  }

  /** How many times this node took the lock (a new tenure: what was remembered from an earlier one may be stale). */
  get tenure(): number {
    return this.#tenure;
  }

  /**
   * Take the lock if nobody holds it, or confirm this node still holds it: one round trip on the lock's own
   * connection. False while another node holds it, or while PostgreSQL cannot be reached.
   */
  hold(): boolean {
    try {
      if (this.#pid !== undefined) {
        const [r] = this.#pg.run(this.#conn, [{ sql: 'SELECT pg_backend_pid() AS pid' }]);
        if (Number(r?.rows[0]?.pid) === this.#pid) return true;
        this.#pid = undefined; // the session ended (the worker reconnected): the lock went with it
      }
      const [, r] = this.#pg.run(this.#conn, [{ sql: KEEPALIVES }, { sql: 'SELECT pg_try_advisory_lock($1) AS got, pg_backend_pid() AS pid', params: [this.#key] }]);
      const row = r?.rows[0];
      if (row?.got === true) {
        this.#pid = Number(row.pid);
        this.#tenure++;
        this.#recordHolder();
        return true;
      }
      this.#endStuckHolder();
      return false;
    } catch (e) {
      this.#pid = undefined;
      // Unreachable: not held (PostgreSQL drops the session's lock when it notices). Anything else: close the
      // connection, which releases whatever it held, and start again from a fresh session.
      if (!(e instanceof PgUnavailable)) this.#pg.drop(this.#conn);
      return false;
    }
  }

  /**
   * Which session of this node holds the lock, in its `nodes` row (presence.ts): the status joins it with
   * pg_locks to show who holds each role. The row is this process's (its host and pid: the main thread took
   * the name, this may be the processing thread). Informational: a failure here does not cost the lock.
   */
  #recordHolder(): void {
    if (this.#node === undefined) return;
    try {
      this.#pg.run(this.#conn, [
        {
          sql: `UPDATE nodes SET ${this.what === 'decider' ? 'decider_backend' : 'poller_backend'} = pg_backend_pid() WHERE name = $1 AND host = $2 AND pid = $3`,
          params: [this.#node, hostname(), process.pid],
        },
      ]);
    } catch {
      // The next tenure writes it again; the status shows the role missing meanwhile.
    }
  }

  /** The holder has not checked its lock for longer than stallMs: end its session (the next hold() takes the lock). */
  #endStuckHolder(): void {
    // Asked at most every STUCK_CHECK_MS: a standby's processing thread tries the lock at each batch it is woken
    // for (every few tens of milliseconds under load), and this query reads every backend's lock and activity.
    const now = Date.now();
    if (now - this.#stuckCheckedAt < Math.min(STUCK_CHECK_MS, this.#stallMs / 4)) return;
    this.#stuckCheckedAt = now;
    try {
      this.#endIfStuck();
    } catch {
      // Not allowed to see or end the holder's session (another role): it keeps the lock until it dies.
    }
  }

  #endIfStuck(): void {
    const [r] = this.#pg.run(this.#conn, [
      {
        sql: `SELECT a.pid, (extract(epoch FROM clock_timestamp() - a.query_start) * 1000)::bigint AS silent_ms
                FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
               WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.classid = 0 AND l.objid = $1
                 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
        params: [this.#key],
      },
    ]);
    const holder = r?.rows[0];
    if (!holder || holder.silent_ms === null || Number(holder.silent_ms) <= this.#stallMs) return;
    const pid = Number(holder.pid);
    const [t] = this.#pg.run(this.#conn, [{ sql: 'SELECT pg_terminate_backend($1) AS done', params: [pid] }]);
    if (t?.rows[0]?.done === true) this.lastTakeover = { pid, silentMs: Number(holder.silent_ms) };
  }

  /** A statement that fails its transaction unless this node's session still holds the lock (see above). */
  fenceStatement(): Statement | undefined {
    if (this.#pid === undefined) return undefined;
    return { sql: 'SELECT zgb_assert_lock($1, $2, $3)', params: [this.#key, this.#pid, this.what] };
  }

  /** Give the lock up (a graceful stop): the other nodes need not wait for anything. */
  release(): void {
    if (this.#pid === undefined) return;
    this.#pid = undefined;
    try {
      this.#pg.drop(this.#conn);
    } catch {
      // closing: nothing to do
    }
  }
}
