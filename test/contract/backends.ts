/**
 * The store implementations the port contracts run against (`describe.each(backends)`): the same tests,
 * every backend. A new backend (PostgreSQL) is one more entry here. The one place the tests construct
 * a concrete store.
 */
import { afterAll, afterEach, beforeEach } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryPollMemory } from '../../src/adapters/store/memory/memory-poll-memory.js';
import { MemoryStore } from '../../src/adapters/store/memory/memory-store.js';
import { PostgresStore } from '../../src/adapters/store/postgres/index.js';
import { PollCursor, SqliteStore } from '../../src/adapters/store/sqlite/index.js';
import type {
  ActionQueue, DecisionCursor, DecisionLog, IncidentState, InboxHousekeeping, InboxReader, InboxWriter, OpenIncidentList, PollMemory, RunRecord, StateTransactions, WatchCursor,
} from '../../src/core/ports.js';
import { releaseTestPostgres, testPostgres } from '../helpers/postgres.js';

/** Every port of the store, as one object (both implementations are one class). */
export type ContractStore = InboxWriter & InboxReader & DecisionCursor & IncidentState & ActionQueue & RunRecord & StateTransactions & InboxHousekeeping & DecisionLog & OpenIncidentList & WatchCursor;

export interface Opened<T> {
  readonly store: T;
  /** Release files and handles. */
  close(): void;
}

export interface Backend {
  readonly name: string;
  open(): Opened<ContractStore>;
  openPollMemory(): Opened<PollMemory>;
}

function tempFile(): { file: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'zgb-contract-'));
  return { file: join(dir, 'bridge.db'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export const memory: Backend = {
  name: 'memory',
  open: () => ({ store: new MemoryStore(), close: () => undefined }),
  openPollMemory: () => ({ store: new MemoryPollMemory(), close: () => undefined }),
};

export const sqlite: Backend = {
  name: 'sqlite',
  open: () => {
    const { file, remove } = tempFile();
    const store = new SqliteStore(file);
    return {
      store,
      close: () => {
        store.close();
        remove();
      },
    };
  },
  openPollMemory: () => {
    const { file, remove } = tempFile();
    const store = new SqliteStore(file);
    return {
      store: new PollCursor(store),
      close: () => {
        store.close();
        remove();
      },
    };
  },
};

/** A real PostgreSQL (test/helpers/postgres.ts): a fresh database per test, from a migrated template. */
export const postgres: Backend = {
  name: 'postgres',
  open: () => {
    const db = testPostgres().database();
    const store = new PostgresStore({ connection: db.connection, label: db.name });
    return {
      store,
      close: () => {
        store.close();
        db.drop();
      },
    };
  },
  openPollMemory: () => {
    const db = testPostgres().database();
    const store = new PostgresStore({ connection: db.connection, label: db.name });
    return {
      store: store.pollMemory(),
      close: () => {
        store.close();
        db.drop();
      },
    };
  },
};

// The cluster this file started (if any) stops after its tests: this module is loaded once per test file.
afterAll(() => releaseTestPostgres());

export const backends: readonly Backend[] = [memory, sqlite, postgres];

/** A fresh store of `backend` for each test of the calling describe block. */
export function freshStore(backend: Backend): () => ContractStore {
  let opened: Opened<ContractStore> | undefined;
  beforeEach(() => {
    opened = backend.open();
  });
  afterEach(() => {
    opened?.close();
    opened = undefined;
  });
  return () => {
    if (!opened) throw new Error('no store open (use it inside a test)');
    return opened.store;
  };
}
