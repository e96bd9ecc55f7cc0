import type { Migration } from '../database.js';

/**
 * The inbox file: deliveries as accepted (written by the intake only), and meta.
 */
export const inbox001Initial: Migration = {
  version: 1,
  name: 'inbox-001-initial',
  sql: `
  CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_key TEXT NOT NULL UNIQUE,
    received_at INTEGER NOT NULL,
    source TEXT NOT NULL,
    alert TEXT NOT NULL
  );
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  `,
};
