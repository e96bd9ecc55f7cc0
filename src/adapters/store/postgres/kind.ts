// Which stores are PostgreSQL stores, answered without loading the PostgreSQL store's code: a bridge on
// SQLite never loads it (composition/store.ts loadStoreBackend; issue 16, about 1 MB of heap in each thread).
import type { PostgresStore } from './index.js';

const stores = new WeakSet<object>();

/** Called by PostgresStore's constructor. */
export function markPostgresStore(store: PostgresStore): void {
  stores.add(store);
}

/** The store, if it is a PostgreSQL store (none exists unless the PostgreSQL store's code was loaded). */
export function asPostgresStore(store: object): PostgresStore | undefined {
  return stores.has(store) ? (store as PostgresStore) : undefined;
}

/** The cluster role of a store (undefined: SQLite, or a PostgreSQL store opened without one). */
export function clusterRole(store: object): PostgresStore | undefined {
  const pg = asPostgresStore(store);
  return pg?.lock !== undefined ? pg : undefined;
}
