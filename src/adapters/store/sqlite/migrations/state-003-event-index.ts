import type { Migration } from '../database.js';

/**
 * The event index (which incident cycle each problem event belongs to, and whether it is open) replaces the
 * per-incident event lists, which had no cap; ended incidents are pruned by status and age; undecidable
 * deliveries are parked.
 */
export const state003EventIndex: Migration = {
  version: 3,
  name: 'state-003-event-index',
  sql: `
  CREATE TABLE incident_events (
    event_id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    seq INTEGER NOT NULL,
    open INTEGER NOT NULL
  );
  CREATE INDEX incident_events_by_cycle ON incident_events(fingerprint, seq) WHERE open = 1;
  INSERT OR IGNORE INTO incident_events (event_id, fingerprint, seq, open)
    SELECT e.value, i.fingerprint, json_extract(i.state, '$.seq'), 1
      FROM incidents i, json_each(json_extract(i.state, '$.openEvents')) e WHERE i.status = 'open';
  INSERT OR IGNORE INTO incident_events (event_id, fingerprint, seq, open)
    SELECT e.value, i.fingerprint, json_extract(i.state, '$.seq'), 0
      FROM incidents i, json_each(COALESCE(json_extract(i.state, '$.events'), '[]')) e;
  UPDATE incidents SET state = json_remove(json_set(state, '$.openCount', COALESCE(json_array_length(json_extract(state, '$.openEvents')), 0)), '$.openEvents', '$.events');
  CREATE INDEX incidents_ended ON incidents(updated_at) WHERE status <> 'open';
  CREATE INDEX incidents_open ON incidents(fingerprint) WHERE status = 'open';
  CREATE INDEX jobs_by_fingerprint_any ON jobs(fingerprint, status);
  CREATE TABLE parked_deliveries (
    delivery_id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    error TEXT NOT NULL,
    parked_at INTEGER NOT NULL
  );
  `,
};
