// Moving a store from SQLite to PostgreSQL (`migrate-store`, issue 15): everything a running bridge needs,
// read from the two SQLite files (opened read-only: they are left as they are) and written into an empty
// PostgreSQL schema in one transaction (all or nothing).
//
// Ids are kept as they are (OVERRIDING SYSTEM VALUE), not renumbered: the decided position
// (meta processed_through) is a delivery id, parked deliveries, jobs and the decision log name deliveries by
// id, and a lane's order is its jobs' id order. The identity sequences then start after the highest id the
// SQLite store ever gave (its sqlite_sequence, and the decided position: the inbox is pruned behind it, so
// its newest deliveries may be gone) — a new delivery must never get an id at or below the decided position,
// or it would never be decided.

import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import type { Statement, SyncPg } from './postgres/bridge.js';
import { abandon, migrate } from './postgres/schema.js';
import { inboxFileOf } from './sqlite/database.js';
import { INBOX_MIGRATIONS, STATE_MIGRATIONS } from './sqlite/migrations/index.js';

/** What was copied, per table (rows). */
export interface CopySummary {
  readonly deliveries: number;
  readonly incidents: number;
  readonly tickets: number;
  readonly incidentEvents: number;
  /** Pending (running ones become pending) and dead jobs; finished ones are not copied. */
  readonly pendingJobs: number;
  readonly deadJobs: number;
  readonly skippedFinishedJobs: number;
  readonly parkedDeliveries: number;
  readonly decisionLog: number;
  readonly pollBaseline: number;
  /** The meta values copied (processed_through, glpi_watch_cursor, …). */
  readonly meta: readonly string[];
  readonly pollCursor: boolean;
  /** Every delivery up to this id was decided (deliveries above it will be decided by the PostgreSQL bridge). */
  readonly decidedThrough: number;
}

/** The copy cannot be made (the message says what, and what to do). */
export class MigrateStoreRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MigrateStoreRefused';
  }
}

/** State meta keys carried over. clean_stop is not: it was checked ('1'), and PostgreSQL keeps one per node. */
const META_KEYS = ['processed_through', 'glpi_watch_cursor'] as const;
/** Rows per INSERT statement (each travels as one jsonb parameter). */
const CHUNK = 2000;

/** As the PostgreSQL store does (store.ts, session.ts): its text and jsonb cannot hold U+0000, kept as U+FFFD. */
function noNul(s: string): string {
  return s.includes('\u0000') ? s.replace(/\u0000/g, '\ufffd') : s;
}
function jsonParam(rows: readonly unknown[]): string {
  return JSON.stringify(rows, (_key, v: unknown) => (typeof v === 'string' ? noNul(v) : v));
}

function openReadOnly(file: string, what: string): Database.Database {
  if (!existsSync(file)) throw new MigrateStoreRefused(`${file} does not exist: no SQLite ${what} to copy (--from names the old data_dir)`);
  return new Database(file, { readonly: true, fileMustExist: true });
}

/** The SQLite store's two files, checked: at this bridge's schema version, and stopped cleanly. */
export class SqliteSource {
  readonly state: Database.Database;
  readonly inbox: Database.Database;

  constructor(readonly file: string) {
    const inboxFile = inboxFileOf(file);
    this.state = openReadOnly(file, 'state file');
    try {
      this.inbox = openReadOnly(inboxFile, 'inbox');
    } catch (e) {
      this.state.close();
      throw e;
    }
    try {
      this.#check(inboxFile);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  #check(inboxFile: string): void {
    const sv = this.state.pragma('user_version', { simple: true }) as number;
    const iv = this.inbox.pragma('user_version', { simple: true }) as number;
    if (sv !== STATE_MIGRATIONS.length || iv !== INBOX_MIGRATIONS.length) {
      throw new MigrateStoreRefused(
        `${this.file} is at schema version ${sv} and ${inboxFile} at ${iv}; this bridge copies versions ${STATE_MIGRATIONS.length} and ${INBOX_MIGRATIONS.length}: start this version of the bridge on the SQLite store once, stop it, then migrate`,
      );
    }
    // The run record (action-queue.ts): '0' from a run's start until its graceful stop. There is no lock file:
    // this is how the store knows a daemon has it open (or died without stopping: its last decisions and
    // claims may not all be on disk).
    const clean = this.meta('clean_stop');
    if (clean === '0') {
      throw new MigrateStoreRefused(
        `${this.file}: a daemon has this SQLite store open, or the last one did not stop cleanly (its run record says it is running): stop it (systemctl stop zabbix-glpi-bridge) and migrate once it has stopped; after a crash, start it on SQLite and stop it gracefully first`,
      );
    }
  }

  meta(key: string): string | undefined {
    return this.state.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?').get(key)?.value;
  }

  hasTable(db: Database.Database, name: string): boolean {
    return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
  }

  /** The highest id a table ever gave (AUTOINCREMENT never reuses one), 0 if none. */
  lastId(db: Database.Database, table: string): number {
    const seq = db.prepare<[string], { seq: number }>('SELECT seq FROM sqlite_sequence WHERE name = ?').get(table)?.seq ?? 0;
    const max = db.prepare<[], { m: number | null }>(`SELECT MAX(id) AS m FROM ${table}`).get()?.m ?? 0;
    return Math.max(seq, max);
  }

  close(): void {
    if (this.state.open) this.state.close();
    if (this.inbox.open) this.inbox.close();
  }
}

/** INSERT … SELECT FROM jsonb_to_recordset: one statement per chunk of rows. */
function inserts(table: string, columns: string, types: string, rows: readonly unknown[], opt: { overriding?: boolean } = {}): Statement[] {
  const out: Statement[] = [];
  const names = columns.split(',').map((c) => c.trim());
  for (let i = 0; i < rows.length; i += CHUNK) {
    out.push({
      sql: `INSERT INTO ${table} (${columns}) ${opt.overriding ? 'OVERRIDING SYSTEM VALUE ' : ''}SELECT ${names.join(', ')} FROM jsonb_to_recordset($1::jsonb) AS x(${types}) ORDER BY n`,
      params: [jsonParam(rows.slice(i, i + CHUNK))],
    });
  }
  return out;
}

/** Start the identity sequence of table.column after `last` (the next id is last + 1). */
function restartAfter(table: string, column: string, last: number): Statement {
  return { sql: `SELECT setval(pg_get_serial_sequence('${table}', '${column}'), $1::bigint, false)`, params: [Math.max(1, last + 1)] };
}

/** Tables that must be empty: the copy is not a merge. */
const MUST_BE_EMPTY = ['incidents', 'jobs', 'deliveries', 'tickets'] as const;

/**
 * Copy the SQLite store into PostgreSQL, on connection `conn` of `pg` (its schema migrated first, as a
 * daemon does). Refuses a database that already holds any incident, job, delivery or ticket.
 */
export function copySqliteToPostgres(src: SqliteSource, pg: SyncPg, conn = 'migrate', markerKey?: string): CopySummary {
  migrate(pg, conn);
  const { state, inbox } = src;

  const parse = (text: string): unknown => JSON.parse(text);
  let n = 0;
  const seq = <T extends object>(r: T): T & { n: number } => ({ ...r, n: n++ });

  const deliveries = inbox
    .prepare<[], { id: number; delivery_key: string; received_at: number; source: string; alert: string }>('SELECT id, delivery_key, received_at, source, alert FROM deliveries ORDER BY id')
    .all()
    .map((r) => seq({ ...r, alert: parse(r.alert) }));
  // Rowid order: the order they were first written (PostgreSQL's `ord` tiebreaks keep it).
  const incidents = state
    .prepare<[], { fp_key: string; status: string; state: string; updated_at: number }>('SELECT fp_key, status, state, updated_at FROM incidents ORDER BY rowid')
    .all()
    .map((r) => seq({ ...r, state: parse(r.state) }));
  const tickets = state.prepare<[], { fp_key: string; seq: number; ticket_id: number; marker: string; created_at: number }>('SELECT * FROM tickets ORDER BY rowid').all().map(seq);
  const events = state
    .prepare<[], { event_id: string; fp_key: string; seq: number; open: number }>('SELECT event_id, fp_key, seq, open FROM incident_events ORDER BY rowid')
    .all()
    .map((r) => seq({ ...r, open: r.open === 1 }));
  type JobRow = {
    id: number; fp_key: string; lane: string; seq: number; type: string; payload: string; status: string; attempts: number; next_attempt_at: number;
    last_error: string | null; delivery_id: number | null; created_at: number; updated_at: number;
  };
  const allJobs = state.prepare<[], JobRow>('SELECT id, fp_key, lane, seq, type, payload, status, attempts, next_attempt_at, last_error, delivery_id, created_at, updated_at FROM jobs ORDER BY id').all();
  const jobs = allJobs
    .filter((j) => j.status === 'pending' || j.status === 'running' || j.status === 'dead')
    .map((j) =>
      seq({
        ...j,
        payload: parse(j.payload),
        // A job left running had (possibly) been sent: pending again, with its attempt counted, so its next run
        // checks GLPI first (a create searches for its marker) — as the daemon's own start does (requeueRunning).
        ...(j.status === 'running' ? { status: 'pending', attempts: Math.max(1, j.attempts) } : {}),
      }),
    );
  const parked = state.prepare<[], { delivery_id: number; event_id: string; kind: string; error: string; parked_at: number }>('SELECT * FROM parked_deliveries ORDER BY delivery_id').all().map(seq);
  const log = state
    .prepare<[], Record<string, unknown> & { id: number; jobs: string }>('SELECT * FROM decision_log ORDER BY id')
    .all()
    .map((r) => seq({ ...r, jobs: parse(r.jobs) }));
  // The poller's memory lives in the inbox file, in tables made when the poller first ran (poll-cursor.ts).
  const pollCursor = src.hasTable(inbox, 'poll_cursor') ? inbox.prepare<[], { key: string; value: string }>('SELECT key, value FROM poll_cursor').all().map((r) => seq({ ...r, value: parse(r.value) })) : [];
  const baseline = src.hasTable(inbox, 'poll_baseline') ? inbox.prepare<[], { eventid: string; recorded_at: number }>('SELECT eventid, recorded_at FROM poll_baseline').all().map(seq) : [];

  const meta: { key: string; value: string }[] = META_KEYS.flatMap((k) => {
    const v = src.meta(k);
    return v === undefined ? [] : [{ key: k, value: v }];
  });
  const decidedThrough = Number(src.meta('processed_through') ?? 0);
  if (decidedThrough > 0) meta.push({ key: 'processed_through_on_disk', value: String(decidedThrough) });
  // The SQLite bridge's marker key becomes the cluster's (PgStorePorts.sharedMarkerKey): every node, whatever its
  // data_dir holds, renders the markers already in GLPI.
  if (markerKey !== undefined) meta.push({ key: 'marker_key', value: markerKey });

  const lastDelivery = Math.max(src.lastId(inbox, 'deliveries'), decidedThrough, ...parked.map((p) => p.delivery_id), ...allJobs.map((j) => j.delivery_id ?? 0));

  const steps: Statement[] = [
    { sql: 'BEGIN' },
    // Nobody writes the tables while we check them and copy (a daemon started on PostgreSQL meanwhile waits, then finds them full).
    { sql: `LOCK TABLE ${[...MUST_BE_EMPTY, 'meta', 'incident_events', 'parked_deliveries', 'decision_log', 'poll_cursor', 'poll_baseline'].join(', ')} IN EXCLUSIVE MODE` },
    {
      sql: `SELECT ${MUST_BE_EMPTY.map((t) => `(SELECT count(*) FROM (SELECT 1 FROM ${t} LIMIT 1) x)::int AS ${t}`).join(', ')}, (SELECT count(*)::int FROM meta WHERE key = 'processed_through') AS decided`,
    },
  ];
  const [, , check] = pg.run(conn, steps);
  try {
    const row = (check?.rows[0] ?? {}) as Record<string, number>;
    const full = [...MUST_BE_EMPTY.filter((t) => Number(row[t]) > 0), ...(Number(row.decided) > 0 ? ['meta (a decided position)'] : [])];
    if (full.length > 0) {
      throw new MigrateStoreRefused(`the PostgreSQL database already holds ${full.join(', ')}: migrate-store copies into an empty schema only, it does not merge (a bridge ran on this database already?)`);
    }
    pg.run(conn, [
      ...inserts('deliveries', 'id, delivery_key, received_at, source, alert', 'n int, id bigint, delivery_key text, received_at bigint, source text, alert jsonb', deliveries, { overriding: true }),
      ...inserts('incidents', 'fp_key, status, state, updated_at', 'n int, fp_key text, status text, state jsonb, updated_at bigint', incidents),
      ...inserts('tickets', 'fp_key, seq, ticket_id, marker, created_at', 'n int, fp_key text, seq int, ticket_id bigint, marker text, created_at bigint', tickets),
      ...inserts('incident_events', 'event_id, fp_key, seq, open', 'n int, event_id text, fp_key text, seq int, open boolean', events),
      ...inserts(
        'jobs',
        'id, fp_key, lane, seq, type, payload, status, attempts, next_attempt_at, last_error, delivery_id, created_at, updated_at',
        'n int, id bigint, fp_key text, lane text, seq int, type text, payload jsonb, status text, attempts int, next_attempt_at bigint, last_error text, delivery_id bigint, created_at bigint, updated_at bigint',
        jobs,
        { overriding: true },
      ),
      ...inserts('parked_deliveries', 'delivery_id, event_id, kind, error, parked_at', 'n int, delivery_id bigint, event_id text, kind text, error text, parked_at bigint', parked),
      ...inserts(
        'decision_log',
        'id, at, delivery_id, event_id, kind, host, fingerprint, category, severity, action, reason, jobs',
        'n int, id bigint, at bigint, delivery_id bigint, event_id text, kind text, host text, fingerprint text, category text, severity text, action text, reason text, jobs jsonb',
        log,
        { overriding: true },
      ),
      ...inserts('poll_cursor', 'key, value', 'n int, key text, value jsonb', pollCursor),
      ...inserts('poll_baseline', 'eventid, recorded_at', 'n int, eventid text, recorded_at bigint', baseline),
      ...meta.map((m) => ({ sql: 'INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value', params: [m.key, noNul(m.value)] })),
      restartAfter('deliveries', 'id', lastDelivery),
      restartAfter('jobs', 'id', src.lastId(state, 'jobs')),
      restartAfter('decision_log', 'id', src.lastId(state, 'decision_log')),
      // All or nothing, and on disk before we say so.
      { sql: 'SET LOCAL synchronous_commit = on' },
      { sql: 'COMMIT' },
    ]);
  } catch (e) {
    abandon(pg, conn);
    throw e;
  }
  const dead = jobs.filter((j) => j.status === 'dead').length;
  return {
    deliveries: deliveries.length,
    incidents: incidents.length,
    tickets: tickets.length,
    incidentEvents: events.length,
    pendingJobs: jobs.length - dead,
    deadJobs: dead,
    skippedFinishedJobs: allJobs.length - jobs.length,
    parkedDeliveries: parked.length,
    decisionLog: log.length,
    pollBaseline: baseline.length,
    meta: meta.map((m) => m.key),
    pollCursor: pollCursor.length > 0,
    decidedThrough,
  };
}
