// Which store the configuration asks for (store.backend), opened for the thread that needs it: the main
// thread's IntakeStore, the processing thread's ProcessingStore, or both over one connection for the tools
// (`queue`, `status`, the status page's Retry). The thread layout is the same with either backend.

import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, isAbsolute, resolve } from 'node:path';
import { actAsDataDirOwner } from '../adapters/data-dir.js';
import type * as PostgresBackend from '../adapters/store/postgres/index.js';
import type { PgConnectionConfig, PgStoreOptions } from '../adapters/store/postgres/index.js';
import { openIntakeStore, openProcessingStore, SqliteStore, type IntakeStore, type ProcessingStore } from '../adapters/store/sqlite/index.js';
import type { Config } from '../config/schema.js';
import { storeFile } from './from-config.js';

/** The PostgreSQL store's code, once loadStoreBackend loaded it. */
let postgresBackend: typeof PostgresBackend | undefined;

/**
 * Load the code of the store the configuration names, before any store is opened (at each thread's start, and
 * in each command that opens one). SQLite's is always loaded; PostgreSQL's only when store.backend is
 * postgres: a bridge on SQLite never carries it (about 1 MB of heap in each thread; issue 16).
 */
export async function loadStoreBackend(c: Config): Promise<void> {
  if (c.store.backend === 'postgres') postgresBackend ??= await import('../adapters/store/postgres/index.js');
}

/** The PostgreSQL store's code (a bug if loadStoreBackend did not run first: said so, instead of a bare TypeError). */
export function postgres(): typeof PostgresBackend {
  if (!postgresBackend) throw new Error('store.backend is postgres, but the PostgreSQL store was not loaded: loadStoreBackend(config) must run before a store is opened');
  return postgresBackend;
}

/** Every method of both threads' stores (SqliteStore or PostgresStore). */
export type ToolStore = IntakeStore & ProcessingStore;

/** The PostgreSQL connection of store.postgres (PG* environment variables fill in what it leaves out). */
export function pgConnection(c: Config): PgConnectionConfig {
  const p = c.store.postgres;
  const caFile = p.ca_file === '' ? '' : isAbsolute(p.ca_file) ? p.ca_file : resolve(dirname(c.sources.config), p.ca_file);
  return {
    ...(p.url !== '' ? { connectionString: p.url } : {}),
    ...(!p.password.empty ? { password: p.password.reveal() } : {}),
    ...(p.sslmode !== 'disable' ? { ssl: { mode: p.sslmode, ...(caFile !== '' ? { ca: readFileSync(caFile, 'utf8') } : {}) } } : {}),
    connectionTimeoutMillis: p.connect_timeout,
    statement_timeout: p.statement_timeout,
    // The client gives up a little after the server would have cancelled: a server that stopped answering.
    query_timeout: p.statement_timeout + 2000,
    application_name: 'zabbix-glpi-bridge',
  };
}

/** What logs and `status` call the store: the file, or the database's address (never its password). */
export function storeLabel(c: Config): string {
  if (c.store.backend === 'sqlite') return storeFile(c);
  const p = c.store.postgres;
  if (p.url === '') return `postgresql (from PG* environment variables${process.env.PGHOST ? `: ${process.env.PGHOST}` : ''})`;
  const u = new URL(p.url);
  return `postgresql://${u.username ? `${decodeURIComponent(u.username)}@` : ''}${u.host}${u.pathname}`;
}

/** This bridge's name among those sharing the database: store.postgres.node_name, or the host's name. */
export function nodeName(c: Config): string {
  return c.store.postgres.node_name !== '' ? c.store.postgres.node_name : hostname();
}

function pgOptions(c: Config, role?: PgStoreOptions['role']): PgStoreOptions {
  // A claim outlives any one GLPI request (it is renewed while its job runs): a lease is never lost to a slow answer.
  return { connection: pgConnection(c), label: storeLabel(c), node: nodeName(c), leaseMs: Math.max(c.store.postgres.lease, 2 * c.glpi.timeout), ...(role ? { role } : {}) };
}

/** The main thread's store. */
export function openIntakeSideStore(c: Config): IntakeStore {
  if (c.store.backend === 'postgres') return postgres().openPostgresIntakeStore(pgOptions(c, 'poller'));
  // The intake writes the inbox file; the processing side checkpoints it (so this thread never copies WAL pages).
  return openIntakeStore(storeFile(c), { synchronous: c.store.synchronous, maxSizeBytes: c.store.max_size });
}

/** The processing thread's store. */
export function openProcessingSideStore(c: Config): ProcessingStore {
  if (c.store.backend === 'postgres') return postgres().openPostgresProcessingStore(pgOptions(c, 'decider'));
  return openProcessingStore(storeFile(c), { synchronous: c.store.synchronous, maxSizeBytes: c.store.max_size });
}

/** Both over one connection, for a tool's short use. */
export function openToolStore(c: Config, opt: { readonly cli?: boolean } = {}): ToolStore {
  if (c.store.backend === 'postgres') return new (postgres().PostgresStore)(pgOptions(c));
  // A command line tool (`sudo zabbix-glpi-bridge queue …`): the store's files stay the service user's (adapters/data-dir.ts).
  if (opt.cli) actAsDataDirOwner(dirname(storeFile(c)));
  return new SqliteStore(storeFile(c), { synchronous: c.store.synchronous });
}

/** Whether there is a store to read (a SQLite file the daemon made; a PostgreSQL database is asked). */
export function storeExists(c: Config): boolean {
  return c.store.backend === 'postgres' || existsSync(storeFile(c));
}
