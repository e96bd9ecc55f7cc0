import type { Migration } from '../database.js';

/**
 * The first schema: the deliveries (then in the state file), incidents, their tickets, the job queue and meta.
 */
export const state001Initial: Migration = {
  version: 1,
  name: 'state-001-initial',
  sql: `
  CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_key TEXT NOT NULL UNIQUE,
    received_at INTEGER NOT NULL,
    source TEXT NOT NULL,
    alert TEXT NOT NULL,
    processed_at INTEGER,
    fingerprint TEXT,
    action TEXT,
    reason TEXT
  );
  CREATE INDEX deliveries_unprocessed ON deliveries(id) WHERE processed_at IS NULL;
  CREATE TABLE incidents (
    fingerprint TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE tickets (
    fingerprint TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ticket_id INTEGER NOT NULL,
    marker TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (fingerprint, seq)
  );
  CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT,
    delivery_id INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE INDEX jobs_by_fingerprint ON jobs(fingerprint, id) WHERE status IN ('pending', 'running');
  CREATE INDEX jobs_ready ON jobs(next_attempt_at, id) WHERE status = 'pending';
  CREATE INDEX jobs_dead ON jobs(id) WHERE status = 'dead';
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  `,
};
