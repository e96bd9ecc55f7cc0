// The decision log (the status page's last decisions) and the open incidents a page at a time, in the state
// file. The log is written by the processing thread only, inside its batch's transaction; both are read by
// the main thread (the status page) and by `status` on a stopped daemon.

import { decisionRecord, openIncidentView, type IncidentFacts } from '../decision-row.js';
import type Database from 'better-sqlite3';
import type { DecisionFilter, DecisionLog, DecisionRecord, OpenIncidentList, OpenIncidentView, StateTransactions } from '../../../core/ports.js';

interface LogRow {
  at: number;
  delivery_id: number | null;
  event_id: string;
  kind: string;
  host: string;
  fingerprint: string;
  category: string;
  severity: string;
  action: string;
  reason: string;
  jobs: string;
}

/** The status page asks for a few hundred; more than this is never read at once. */
const MAX_READ = 1000;

export class SqliteDecisionLog implements DecisionLog {
  readonly #tx: StateTransactions;
  readonly #stmt;

  constructor(db: Database.Database, tx: StateTransactions) {
    this.#tx = tx;
    this.#stmt = {
      insert: db.prepare(
        'INSERT INTO decision_log (at, delivery_id, event_id, kind, host, fingerprint, category, severity, action, reason, jobs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      // The newest `keep` stay: ids only grow (AUTOINCREMENT), so everything at or below the cut goes.
      trim: db.prepare('DELETE FROM decision_log WHERE id <= (SELECT MAX(id) FROM decision_log) - ?'),
      // An empty filter value matches every row (one statement, no SQL built from input).
      recent: db.prepare<[string, string, string, string, string, string, number], LogRow>(
        `SELECT at, delivery_id, event_id, kind, host, fingerprint, category, severity, action, reason, jobs FROM decision_log
          WHERE (? = '' OR host = ?) AND (? = '' OR category = ?) AND (? = '' OR action = ?)
          ORDER BY id DESC LIMIT ?`,
      ),
    };
  }

  recordDecisions(records: readonly DecisionRecord[], keep: number): void {
    if (records.length === 0) return;
    this.#tx.transaction(() => {
      for (const r of records) {
        this.#stmt.insert.run(r.at, r.deliveryId ?? null, r.eventId, r.kind, r.host, r.fingerprint, r.category, r.severity, r.action, r.reason, JSON.stringify(r.jobs));
      }
      this.#stmt.trim.run(Math.max(0, keep));
    }, 'crash-safe');
  }

  recentDecisions(filter: DecisionFilter = {}): DecisionRecord[] {
    const host = filter.host ?? '';
    const category = filter.category ?? '';
    const action = filter.action ?? '';
    const limit = Math.max(0, Math.min(MAX_READ, filter.limit ?? 300));
    return this.#stmt.recent.all(host, host, category, category, action, action, limit).map((r) => decisionRecord({ ...r, jobs: JSON.parse(r.jobs) as string[] }));
  }
}

interface IncidentRow {
  state: string;
  ticket_id: number | null;
}

export class SqliteOpenIncidents implements OpenIncidentList {
  readonly #stmt;

  constructor(db: Database.Database) {
    this.#stmt = {
      count: db.prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM incidents WHERE status = 'open'"),
      // The ticket of the incident's current cycle (its id may be in the tickets table only: the dispatcher records it there).
      page: db.prepare<[number, number], IncidentRow>(
        `SELECT i.state, t.ticket_id FROM incidents i INDEXED BY incidents_open_by_time
           LEFT JOIN tickets t ON t.fp_key = i.fp_key AND t.seq = json_extract(i.state, '$.cycle')
          WHERE i.status = 'open' ORDER BY i.updated_at DESC, i.rowid DESC LIMIT ? OFFSET ?`,
      ),
    };
  }

  openIncidentCount(): number {
    return this.#stmt.count.get()?.n ?? 0;
  }

  openIncidents(offset: number, limit: number): OpenIncidentView[] {
    return this.#stmt.page.all(Math.max(0, Math.min(MAX_READ, limit)), Math.max(0, offset)).map((r) => {
      return openIncidentView(JSON.parse(r.state) as IncidentFacts, r.ticket_id);
    });
  }
}
