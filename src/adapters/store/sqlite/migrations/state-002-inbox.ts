import type { Migration } from '../database.js';

/**
 * The deliveries move to the inbox file (attached as `inbox`); the decided position becomes processed_through
 * (deliveries were decided in id order: the processed ones are a prefix).
 */
export const state002Inbox: Migration = {
  version: 2,
  name: 'state-002-inbox',
  withInbox: true,
  sql: `
  INSERT OR IGNORE INTO inbox.deliveries (id, delivery_key, received_at, source, alert)
    SELECT id, delivery_key, received_at, source, alert FROM main.deliveries;
  -- Deliveries were decided in id order: the processed ones are a prefix.
  INSERT OR REPLACE INTO main.meta (key, value) VALUES ('processed_through', (
    SELECT COALESCE((SELECT MIN(id) - 1 FROM main.deliveries WHERE processed_at IS NULL), (SELECT MAX(id) FROM main.deliveries), 0)));
  DROP TABLE main.deliveries;
  `,
};
