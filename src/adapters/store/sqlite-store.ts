// The store's former home: the SQLite store is under sqlite/ (one file per port; index.ts gives each thread
// its side). Kept so that imports of SqliteStore and the store's types keep working.

export { inboxFileOf, SqliteStore, type IntakeStore, type ProcessingStore, type StoreOptions } from './sqlite/index.js';
export type { Accepted, Durability, IncidentRef, Job, JobStatus, NewDelivery, ParkedDelivery, PendingDelivery, QueueStats } from '../../core/ports.js';
