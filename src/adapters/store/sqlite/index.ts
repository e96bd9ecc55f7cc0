// The embedded store: two SQLite files in WAL mode, each with one writer, so that neither ever waits for the
// other's lock:
//
// - the inbox (`bridge.inbox.db`, inbox.ts): deliveries as accepted, written only by the intake on the main
//   thread (fsynced before the 202); its WAL checkpointed by the processing thread;
// - the state (`bridge.db`): the decided position (decisions.ts), incidents and tickets (incidents.ts), the
//   action queue and the run record (action-queue.ts), written only by the processing thread (and by
//   `queue retry`, briefly).
//
// Each thread opens its own connections to both files and gets a type that exposes only what it may write:
// openIntakeStore() on the main thread, openProcessingStore() in the processing thread (calling a method of
// the other thread's is a compile error). SqliteStore is both over one pair of connections (tools and tests).
// Every method is one transaction unless called inside transaction(); the processing thread's batch is one
// transaction of the state file across all its parts, which share the state connection.

import type Database from 'better-sqlite3';
import type {
  ActionQueue, DecisionCursor, DecisionLog, IncidentState, InboxHousekeeping, InboxReader, InboxWriter, OpenIncidentList, PollMemory, QueueStats, RunRecord,
  StateTransactions, WatchCursor,
} from '../../../core/ports.js';
import { SqliteActionQueue, SqliteRunRecord } from './action-queue.js';
import { SqliteDecisionLog, SqliteOpenIncidents } from './decision-log.js';
import { MetaTable, openStoreFiles, type StoreFiles, type StoreOptions } from './database.js';
import { SqliteDecisionCursor, SqliteStateTransactions } from './decisions.js';
import { checkpointInbox, SqliteInboxReader, SqliteInboxWriter } from './inbox.js';
import { SqliteIncidents } from './incidents.js';
import { PollCursor } from './poll-cursor.js';
import { SqliteWatchCursor } from './watch-cursor.js';

export { inboxFileOf, type StoreOptions } from './database.js';
export { PollCursor, type PollCursorHost } from './poll-cursor.js';

/**
 * What the main thread may do with the store: accept alerts into the inbox and fsync them (the intake),
 * read the inbox, prune it behind the decided position on disk, check it is writable, keep the poller's
 * memory (in the inbox file); and read, not write, the state: queue statistics and the open incidents'
 * events (the poller). It cannot reach the action queue, the incidents nor the decided position.
 */
export interface IntakeStore extends InboxWriter, InboxReader, InboxHousekeeping {
  /** The state file (the inbox file is next to it). */
  readonly file: string;
  /** A real write to the inbox, for readiness: throws when alerts cannot be accepted. */
  checkWritable(now: number): void;
  /** The queue as /readyz and /metrics report it (read only). */
  stats(): QueueStats;
  /** Problem events of open incidents (read only: what the poller checks against Zabbix). */
  openIncidentEvents(): string[];
  /** The notes announced on them (read only: the poller's memory of the maintenances it announced). */
  announcedOnOpenEvents: IncidentState['announcedOnOpenEvents'];
  /** The poller's memory, kept in the inbox file on this connection (one per IntakeStore). */
  pollMemory(): PollMemory;
  /** The status page's reads of the state (read only): the last decisions, open incidents, jobs, parked alerts. */
  recentDecisions: DecisionLog['recentDecisions'];
  openIncidentCount: OpenIncidentList['openIncidentCount'];
  openIncidents: OpenIncidentList['openIncidents'];
  job: ActionQueue['job'];
  jobs: ActionQueue['jobs'];
  parkedDeliveries: DecisionCursor['parkedDeliveries'];
  close(): void;
}

/**
 * What the processing thread may do with the store: read the inbox and checkpoint its WAL, and write the
 * state — decisions, incidents, tickets, the action queue, the run record — in transactions spanning
 * all of them. It cannot append to the inbox, nor prune it.
 */
export interface ProcessingStore extends InboxReader, DecisionCursor, IncidentState, ActionQueue, RunRecord, StateTransactions, DecisionLog, OpenIncidentList, WatchCursor {
  /** The state file (the inbox file is next to it). */
  readonly file: string;
  /** Copy the inbox's WAL into its file (the intake's connection never does). */
  checkpointInbox(): void;
  close(): void;
}

/** The main thread's connections: it never checkpoints the inbox, and its commits never wait for a lock (StoreBusy). */
export function openIntakeStore(file: string, options: Omit<StoreOptions, 'inboxCheckpoint'> = {}): IntakeStore {
  return intakeStore(assemble(file, { ...options, inboxCheckpoint: 'external' }));
}

/** The processing thread's connections. */
export function openProcessingStore(file: string, options: Omit<StoreOptions, 'inboxCheckpoint'> = {}): ProcessingStore {
  return processingStore(assemble(file, options));
}

/**
 * Both threads' stores over one pair of connections, as one object (`queue`, `demo`, tests): every
 * method of IntakeStore and ProcessingStore, and the connections themselves.
 */
// The methods are those of the two stores (declaration merging: the class has the interface's members, set by Object.assign).
export interface SqliteStore extends IntakeStore, ProcessingStore {}
export class SqliteStore {
  /** The state file's connection. */
  readonly db: Database.Database;
  /** The inbox file's connection. */
  readonly inbox: Database.Database;
  readonly inboxFile: string;

  constructor(readonly file: string, options: StoreOptions = {}) {
    const parts = assemble(file, options);
    this.db = parts.files.state;
    this.inbox = parts.files.inbox;
    this.inboxFile = parts.files.inboxFile;
    Object.assign(this, intakeStore(parts), processingStore(parts));
  }
}

/** The parts of a store over one pair of connections; every state part shares the state connection and its transactions. */
interface Parts {
  readonly files: StoreFiles;
  readonly tx: SqliteStateTransactions;
  readonly decisions: SqliteDecisionCursor;
  readonly incidents: SqliteIncidents;
  readonly queue: SqliteActionQueue;
  readonly run: SqliteRunRecord;
  readonly watch: SqliteWatchCursor;
  readonly log: SqliteDecisionLog;
  readonly open: SqliteOpenIncidents;
  readonly reader: SqliteInboxReader;
  readonly writer: SqliteInboxWriter;
  close(): void;
}

function assemble(file: string, options: StoreOptions): Parts {
  const files = openStoreFiles(file, options);
  const state = files.state;
  const meta = new MetaTable(state);
  const tx = new SqliteStateTransactions(state, meta, files.fullSync);
  const decisions = new SqliteDecisionCursor(state, meta, tx);
  const incidents = new SqliteIncidents(state, tx);
  const reader = new SqliteInboxReader(files.inbox, decisions);
  const queue = new SqliteActionQueue(state, tx, { undecided: () => reader.undecidedCount(), parked: () => decisions.parkedCount() }, () => tx.flushed());
  const run = new SqliteRunRecord(state, meta, tx);
  const watch = new SqliteWatchCursor(meta, tx);
  const log = new SqliteDecisionLog(state, tx);
  const open = new SqliteOpenIncidents(state);
  const writer = new SqliteInboxWriter(files, { decided: decisions, reader, openIncidentEvents: () => incidents.openIncidentEvents() });
  return {
    files, tx, decisions, incidents, queue, run, watch, log, open, reader, writer,
    close() {
      writer.close();
      tx.close();
      if (files.state.open) files.state.close();
      if (files.inbox.open) files.inbox.close();
    },
  };
}

function intakeStore(p: Parts): IntakeStore {
  let poll: PollCursor | undefined;
  return {
    file: p.files.file,
    ...methods(p.writer, ['acceptDeliveries', 'syncInbox', 'nearlyFull', 'pruneDeliveries', 'checkWritable']),
    ...methods(p.reader, ['hasDelivery', 'deliveryId', 'deliveryAlert', 'deliveryAlertById', 'earlierUpdates', 'unprocessedDeliveries', 'lastDeliveryId']),
    ...methods(p.queue, ['stats']),
    ...methods(p.incidents, ['openIncidentEvents', 'announcedOnOpenEvents']),
    ...methods(p.log, ['recentDecisions']),
    ...methods(p.open, ['openIncidentCount', 'openIncidents']),
    ...methods(p.queue, ['job', 'jobs']),
    ...methods(p.decisions, ['parkedDeliveries']),
    pollMemory: () => (poll ??= new PollCursor({ inbox: p.files.inbox, syncInbox: () => p.writer.syncInbox() })),
    close: () => p.close(),
  };
}

function processingStore(p: Parts): ProcessingStore {
  return {
    file: p.files.file,
    ...methods(p.reader, ['hasDelivery', 'deliveryId', 'deliveryAlert', 'deliveryAlertById', 'earlierUpdates', 'unprocessedDeliveries']),
    ...methods(p.tx, ['transaction']),
    ...methods(p.decisions, ['processedThrough', 'markProcessed', 'syncDecided', 'parkDelivery', 'parkedDeliveries']),
    ...methods(p.incidents, [
      'getIncident', 'putIncident', 'eventInfo', 'putEvents', 'moveOpenEvents', 'latestOpenEvent', 'openIncidentEvents', 'announcedOnOpenEvents', 'openIncidentDefinitions',
      'pruneIncidents', 'putTicket', 'ticketId', 'cycleHasTicket',
    ]),
    ...methods(p.queue, [
      'enqueue', 'cancelCycle', 'replaceJobSpec', 'lastQueued', 'claimReady', 'claimsOnDisk', 'completeJob', 'rescheduleJob', 'buryJob', 'requeueRunning',
      'nextDueAt', 'pruneFinished', 'job', 'jobs', 'retryDead', 'stats',
    ]),
    ...methods(p.run, ['recordStart', 'recordCleanStop']),
    ...methods(p.watch, ['glpiWatchCursor', 'putGlpiWatchCursor']),
    ...methods(p.log, ['recordDecisions', 'recentDecisions']),
    ...methods(p.open, ['openIncidentCount', 'openIncidents']),
    checkpointInbox: () => checkpointInbox(p.files.inbox),
    close: () => p.close(),
  };
}

/** The named methods of a part, bound to it: a thread's store exposes these and nothing else of the part. */
function methods<T extends object, K extends keyof T>(part: T, names: readonly K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const name of names) {
    const m = part[name];
    out[name] = (typeof m === 'function' ? m.bind(part) : m) as T[K];
  }
  return out;
}
