// What the status page, its JSON and `zabbix-glpi-bridge status` show: one summary, gathered from the
// store's read side (the daemon's main thread, or the files of a stopped daemon) and, when the daemon
// runs, its connection checks and per-minute history.

import type { DecisionFilter, DecisionRecord, Job, JobStatus, OpenIncidentView, ParkedDelivery, QueueStats } from '../../../core/ports.js';
import type { MinuteRates } from './history.js';

/** The store's reads the summary needs (IntakeStore in the daemon, SqliteStore for a stopped one). */
export interface StatusStoreView {
  stats(): QueueStats;
  openIncidentCount(): number;
  openIncidents(offset: number, limit: number): OpenIncidentView[];
  recentDecisions(filter?: DecisionFilter): DecisionRecord[];
  jobs(status: JobStatus, limit?: number): Job[];
  parkedDeliveries(limit?: number): ParkedDelivery[];
}

export interface ConnectionState {
  readonly ok: boolean;
  readonly detail: string;
}

/** Open incidents per page (10,000 open incidents are 200 pages, each one indexed read). */
export const INCIDENTS_PER_PAGE = 50;
/** Decisions shown (the log keeps 500). */
export const DECISIONS_SHOWN = 300;
/** Jobs listed per state; the counts are exact. */
export const JOBS_SHOWN = 100;

export interface SummaryQuery {
  /** 1-based page of open incidents. */
  readonly page: number;
  readonly filter: Omit<DecisionFilter, 'limit'>;
}

export interface IncidentRow extends OpenIncidentView {
  readonly ageSeconds: number;
  readonly ticketUrl?: string;
}

export interface JobRow {
  readonly id: number;
  readonly type: string;
  readonly status: string;
  readonly fingerprint: string;
  readonly cycle: number;
  readonly attempts: number;
  readonly nextAttemptAt: number;
  readonly lastError?: string;
  readonly createdAt: number;
}

/** One bridge on the shared PostgreSQL, as the database knows it. */
export interface ClusterNodeRow {
  readonly name: string;
  readonly host: string;
  readonly pid: number;
  readonly startedAt: string;
  /** Seconds since its last heartbeat (since its stop, for a node that stopped). */
  readonly heardFromSecondsAgo: number;
  readonly stopped: boolean;
  /** The roles whose lock it holds now: decider, poller (none: a standby). */
  readonly roles: readonly string[];
}

/** Several bridges on one PostgreSQL: this node, its roles, and the nodes seen within the last hour (absent with SQLite). */
export interface ClusterSummary {
  /** This node's name (store.postgres.node_name, or the host's name). */
  readonly node: string;
  /** The roles this node holds now, read from the database. */
  readonly roles: readonly string[];
  readonly nodes: readonly ClusterNodeRow[];
  /** Another instance took this node's name while this one was not heard from (NODE_NAME_IN_USE). */
  readonly nameLostTo?: { readonly host: string; readonly pid: number };
  /** The database could not be asked (PostgreSQL unreachable). */
  readonly error?: string;
}

export interface StatusSummary {
  readonly generatedAt: string;
  /** 'daemon': asked the running daemon; 'store': read from the files (the daemon is not running or not answering). */
  readonly source: 'daemon' | 'store';
  /** Connection checks (/readyz's), when the daemon answers. */
  readonly connections?: Readonly<Record<string, ConnectionState>>;
  readonly counts: {
    readonly openIncidents: number;
    readonly pending: number;
    readonly running: number;
    readonly dead: number;
    readonly parked: number;
    readonly undecided: number;
    readonly oldestPendingAgeSeconds?: number;
  };
  readonly incidents: { readonly page: number; readonly pages: number; readonly perPage: number; readonly rows: readonly IncidentRow[] };
  readonly decisions: { readonly filter: Omit<DecisionFilter, 'limit'>; readonly rows: readonly DecisionRecord[] };
  readonly queue: readonly JobRow[];
  readonly dead: readonly JobRow[];
  readonly parked: readonly ParkedDelivery[];
  /** Alerts received, tickets opened, GLPI requests per minute, oldest first (the daemon only: kept in memory). */
  readonly history?: MinuteRates;
  /** Several bridges on one PostgreSQL: who is who (absent with SQLite). */
  readonly cluster?: ClusterSummary;
}

function jobRow(j: Job): JobRow {
  return {
    id: j.id,
    type: j.type,
    status: j.status,
    fingerprint: j.fingerprint,
    cycle: j.cycle,
    attempts: j.attempts,
    nextAttemptAt: j.nextAttemptAt,
    ...(j.lastError !== undefined ? { lastError: j.lastError } : {}),
    createdAt: j.createdAt,
  };
}

export interface SummaryContext {
  readonly now: number;
  readonly source: 'daemon' | 'store';
  readonly ticketUrl: (id: number) => string;
  readonly connections?: Readonly<Record<string, ConnectionState>>;
  readonly history?: MinuteRates;
  readonly cluster?: ClusterSummary;
}

/** Gather the summary: a bounded number of rows of each kind, whatever the store holds. */
export function statusSummary(store: StatusStoreView, q: SummaryQuery, ctx: SummaryContext): StatusSummary {
  const stats = store.stats();
  const open = store.openIncidentCount();
  const pages = Math.max(1, Math.ceil(open / INCIDENTS_PER_PAGE));
  const page = Math.min(Math.max(1, Math.floor(q.page)), pages);
  const filter = Object.fromEntries(Object.entries(q.filter).filter(([, v]) => typeof v === 'string' && v !== '')) as Omit<DecisionFilter, 'limit'>;
  return {
    generatedAt: new Date(ctx.now).toISOString(),
    source: ctx.source,
    ...(ctx.connections ? { connections: ctx.connections } : {}),
    counts: {
      openIncidents: open,
      pending: stats.pending,
      running: stats.running,
      dead: stats.dead,
      parked: stats.parked,
      undecided: stats.unprocessed,
      ...(stats.oldestPendingAt !== undefined ? { oldestPendingAgeSeconds: Math.max(0, Math.round((ctx.now - stats.oldestPendingAt) / 1000)) } : {}),
    },
    incidents: {
      page,
      pages,
      perPage: INCIDENTS_PER_PAGE,
      rows: store.openIncidents((page - 1) * INCIDENTS_PER_PAGE, INCIDENTS_PER_PAGE).map((i) => ({
        ...i,
        ageSeconds: Math.max(0, Math.round((ctx.now - i.openedAt) / 1000)),
        ...(i.ticketId !== undefined ? { ticketUrl: ctx.ticketUrl(i.ticketId) } : {}),
      })),
    },
    decisions: { filter, rows: store.recentDecisions({ ...filter, limit: DECISIONS_SHOWN }) },
    queue: [...store.jobs('running', JOBS_SHOWN), ...store.jobs('pending', JOBS_SHOWN)].slice(0, JOBS_SHOWN).map(jobRow),
    dead: store.jobs('dead', JOBS_SHOWN).map(jobRow),
    parked: store.parkedDeliveries(JOBS_SHOWN),
    ...(ctx.history ? { history: ctx.history } : {}),
    ...(ctx.cluster ? { cluster: ctx.cluster } : {}),
  };
}
