import type { Migration } from '../database.js';

/**
 * The incident's ticket cycle number is called what the logs and `queue` call it: cycle (it was seq). The
 * columns of tickets, incident_events and jobs keep their name (seq: the cycle number).
 */
export const state005Cycle: Migration = {
  version: 5,
  name: 'state-005-cycle',
  sql: `
  UPDATE incidents SET state = json_remove(json_set(state, '$.cycle', json_extract(state, '$.seq')), '$.seq') WHERE json_type(state, '$.seq') IS NOT NULL;
  `,
};
