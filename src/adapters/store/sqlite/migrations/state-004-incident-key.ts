import type { Migration } from '../database.js';

/**
 * Rows name their incident by its key (fingerprintKey: 32 hex characters), not by its readable fingerprint,
 * which grows with the fields it is built from and was repeated in every ticket, event and job row; it is
 * now kept once, in the incident's state. Write-backs to Zabbix, queued under "zabbix:<fingerprint>", keep
 * their own lane under the incident's key. Readable fingerprints all start with a field name ("host=…"),
 * never with "zabbix:" nor as 32 hex characters, so no renamed key can meet one not renamed yet.
 * Calls fingerprint_key(text), the state connection's own SQL function (database.ts).
 */
export const state004IncidentKey: Migration = {
  version: 4,
  name: 'state-004-incident-key',
  sql: `
  ALTER TABLE incidents RENAME COLUMN fingerprint TO fp_key;
  UPDATE incidents SET fp_key = fingerprint_key(fp_key);
  ALTER TABLE tickets RENAME COLUMN fingerprint TO fp_key;
  UPDATE tickets SET fp_key = fingerprint_key(fp_key);
  ALTER TABLE incident_events RENAME COLUMN fingerprint TO fp_key;
  UPDATE incident_events SET fp_key = fingerprint_key(fp_key);
  ALTER TABLE jobs ADD COLUMN lane TEXT NOT NULL DEFAULT 'glpi';
  UPDATE jobs SET lane = 'zabbix', fingerprint = substr(fingerprint, 8) WHERE substr(fingerprint, 1, 7) = 'zabbix:';
  ALTER TABLE jobs RENAME COLUMN fingerprint TO fp_key;
  UPDATE jobs SET fp_key = fingerprint_key(fp_key);
  DROP INDEX jobs_by_fingerprint;
  DROP INDEX jobs_by_fingerprint_any;
  CREATE INDEX jobs_by_lane ON jobs(fp_key, lane, id) WHERE status IN ('pending', 'running');
  CREATE INDEX jobs_by_key_any ON jobs(fp_key, status);
  `,
};
