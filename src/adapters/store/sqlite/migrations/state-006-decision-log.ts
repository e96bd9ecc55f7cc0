import type { Migration } from '../database.js';

/**
 * The decision log: the last decisions with their reasons, for the status page (issue 17). Bounded by
 * count (the processor keeps the newest few hundred), written in the same commit as the decisions. Open
 * incidents are listed a page at a time, newest first: a partial index keeps that a walk of an index
 * with 10,000 of them open.
 */
export const state006DecisionLog: Migration = {
  version: 6,
  name: 'state-006-decision-log',
  sql: `
  CREATE TABLE decision_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    delivery_id INTEGER,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    host TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    category TEXT NOT NULL,
    severity TEXT NOT NULL,
    action TEXT NOT NULL,
    reason TEXT NOT NULL,
    jobs TEXT NOT NULL
  );
  CREATE INDEX incidents_open_by_time ON incidents(updated_at) WHERE status = 'open';
  `,
};
