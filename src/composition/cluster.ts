// Several bridges on one PostgreSQL (issue 15, phase 2): who does the work that must run on one node at a
// time. Intake and GLPI dispatch run on every node (job claims are leases with fencing epochs:
// adapters/store/postgres/store.ts). Two roles are held by one node each, through a session advisory lock
// on a dedicated connection (adapters/store/postgres/leader.ts):
//
// - the decider (processing thread): decisions in delivery order, so in order per incident cluster-wide;
//   the handover of an incident whose ticket was found closed in GLPI; the GLPI read-back sweep; housekeeping;
// - the poller (main thread): the Zabbix poller.
//
// A node that is not the holder tries every ROLE_TRY_MS, so a dead holder is replaced within about a second
// of PostgreSQL seeing its connection close. With SQLite (one node) none of this exists: the roles are
// always this node's, as before.

import { Counter, Gauge } from 'prom-client';
import type { ReadinessCheck } from '../adapters/http/server.js';
import type { ClusterSummary } from '../adapters/http/status/summary.js';
import type { PgLeaderLock, PostgresStore } from '../adapters/store/postgres/index.js';
import { asPostgresStore, clusterRole } from '../adapters/store/postgres/kind.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

/** How often a node that does not hold a role tries to take it, and the holder checks it still has it. */
export const ROLE_TRY_MS = 250;

function roleGauge(metrics: Metrics): Gauge<'role' | 'node'> {
  const name = 'zgb_cluster_role';
  const existing = metrics.registry.getSingleMetric(name);
  if (existing) return existing as Gauge<'role' | 'node'>;
  return new Gauge({
    name,
    help: 'Several bridges on one PostgreSQL: 1 on the node that holds the role (decider: decisions and the GLPI read-back; poller: the Zabbix poller), 0 on the others.',
    labelNames: ['role', 'node'] as const,
    registers: [metrics.registry],
  });
}

/** When this node ended a stuck holder's session to take the role: whose, and how long it had been silent. */
function takenFrom(lock: PgLeaderLock): { stuck_holder_pid?: number; stuck_for_ms?: number } {
  const t = lock.lastTakeover;
  lock.lastTakeover = undefined;
  return t ? { stuck_holder_pid: t.pid, stuck_for_ms: t.silentMs } : {};
}

/** Something started and stopped with a role (the GLPI read-back sweep, the Zabbix poller). */
export interface RoleBound {
  start(schedule: string): void;
  stop(): Promise<void>;
}

export interface DeciderDeps {
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Decide now (the other nodes' deliveries do not wake this node's processor). */
  readonly schedule: () => void;
  /** Forget what was remembered of the incidents: another node may have decided since. */
  readonly forget: () => void;
  /** The processor's handover of a closed ticket's incident (Processor.ticketClosed). */
  readonly ticketClosed: (fingerprint: string, cycle: number, ticketId: number) => void;
  /** Runs on the decider only, with this schedule (the GLPI read-back). */
  readonly bound?: { readonly task: RoleBound; readonly schedule: string };
}

export interface DeciderRole {
  /** This node may decide now (always true with one node). */
  holds(): boolean;
  /** A job found its ticket closed: handed over now on the decider, else left for it. */
  ticketClosed(fingerprint: string, cycle: number, ticketId: number, now: number): void;
  stop(): Promise<void>;
}

/** The processing side's role (undefined: one node, SQLite; the caller does as before). */
export function deciderRole(store: object, d: DeciderDeps): DeciderRole | undefined {
  const pg = clusterRole(store);
  if (!pg?.lock || pg.lock.what !== 'decider') return undefined;
  const lock = pg.lock;
  const log = d.logger.child({ component: 'cluster', role: 'decider', node: pg.node });
  const gauge = roleGauge(d.metrics);
  gauge.set({ role: 'decider', node: pg.node }, 0);
  let counted = 0;
  const claims = new Counter({
    name: 'zgb_job_claims_total',
    help: 'Jobs claimed by this node (several bridges on one PostgreSQL: who runs the queue).',
    labelNames: ['node'] as const,
    registers: [d.metrics.registry],
    collect() {
      const total = pg.claimsMade;
      const seen = counted;
      if (total > seen) this.inc({ node: pg.node }, total - seen);
      counted = total;
    },
  });
  claims.inc({ node: pg.node }, 0);
  pg.onNewTenure(() => d.forget());
  let was = false;
  let stopped = false;

  // A hand-over is a decision (a new cycle and its jobs): it commits, with the removal of its row, only
  // while this node holds the decider lock, fenced in SQL as every decision is (PostgresStore.deciderTransaction).
  // A node that lost the lock after its last check commits nothing: the row stays for the new decider.
  const handOver = (): void => {
    for (const h of pg.pendingHandovers()) {
      pg.deciderTransaction(() => {
        d.ticketClosed(h.fingerprint, h.cycle, h.ticketId);
        pg.dropHandover(h.id);
      });
    }
  };

  const tick = (): void => {
    if (stopped) return;
    const held = pg.holdRole();
    if (held !== was) {
      was = held;
      gauge.set({ role: 'decider', node: pg.node }, held ? 1 : 0);
      if (held) {
        log.info({ tenure: lock.tenure, ...takenFrom(lock) }, 'this node is the decider now');
        d.bound?.task.start(d.bound.schedule);
      } else {
        log.warn('this node is no longer the decider');
        void d.bound?.task.stop();
      }
    }
    if (!held) return;
    try {
      handOver();
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'handing over closed tickets failed; retried');
    }
    d.schedule();
  };
  const timer = setInterval(tick, ROLE_TRY_MS);
  timer.unref();
  tick();

  return {
    holds: () => lock.held,
    ticketClosed(fingerprint, cycle, ticketId, now) {
      if (lock.held) {
        try {
          return pg.deciderTransaction(() => d.ticketClosed(fingerprint, cycle, ticketId));
        } catch (e) {
          // The lock was lost meanwhile (the fence refused the commit): the new decider takes it from the table.
          log.warn({ err: (e as Error).message, fingerprint, cycle, ticket_id: ticketId }, 'handing over a closed ticket on this node failed; left to the decider');
        }
      }
      pg.deferHandover(fingerprint, cycle, ticketId, now);
      log.info({ fingerprint, cycle, ticket_id: ticketId }, 'ticket closed in GLPI: handed over to the decider');
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      if (was) await d.bound?.task.stop();
      was = false;
      lock.release();
    },
  };
}

export interface PollerRole {
  start(schedule: string): void;
  stop(): Promise<void>;
}

/**
 * The Zabbix poller on one node at a time: started when this node takes the poller lock (its first sweep
 * runs at once), stopped when it loses it. One node (SQLite): started and stopped as before.
 */
export function pollerRole(store: object, poller: RoleBound, logger: Logger, metrics: Metrics): PollerRole {
  const pg: PostgresStore | undefined = clusterRole(store);
  const lock = pg?.lock;
  if (!pg || !lock || lock.what !== 'poller') return { start: (s) => poller.start(s), stop: () => poller.stop() };
  const log = logger.child({ component: 'cluster', role: 'poller', node: pg.node });
  const gauge = roleGauge(metrics);
  gauge.set({ role: 'poller', node: pg.node }, 0);
  let timer: NodeJS.Timeout | undefined;
  let was = false;
  return {
    start(schedule) {
      const tick = (): void => {
        const held = lock.hold();
        if (held === was) return;
        was = held;
        gauge.set({ role: 'poller', node: pg.node }, held ? 1 : 0);
        if (held) {
          log.info({ tenure: lock.tenure, ...takenFrom(lock) }, 'this node is the poller now');
          poller.start(schedule);
        } else {
          log.warn('this node is no longer the poller');
          void poller.stop();
        }
      };
      timer = setInterval(tick, ROLE_TRY_MS);
      timer.unref();
      tick();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      if (was) await poller.stop();
      was = false;
      lock.release();
    },
  };
}

/**
 * Say at start under which name this node runs among the bridges on the database, and whose name it took
 * over (a bridge that is gone: not heard from for a lease, or its session ended). Nothing with SQLite.
 */
export function announceNode(store: object, logger: Logger): void {
  const pg = asPostgresStore(store);
  if (!pg?.presence) return;
  const log = logger.child({ component: 'cluster', node: pg.node });
  const from = pg.nameTakenOver;
  if (from) log.warn({ instance: pg.presence.instance, previous_host: from.host, previous_pid: from.pid, why: from.why }, 'this node took over its name from a bridge that is gone');
  else log.info({ instance: pg.presence.instance }, 'this node runs under its name on the shared database');
  pg.onNameLost((to) =>
    log.error(
      { code: 'NODE_NAME_IN_USE', other_host: to.host, other_pid: to.pid },
      "another bridge took this node's name while this one was not heard from (stopped longer than a lease): /readyz fails; stop this bridge, or give it its own store.postgres.node_name",
    ),
  );
}

/**
 * Who is who on the shared database (the status page, `status`, /readyz): this node's name, the roles it
 * holds now and every node heard from within the hour, read from the database (presence.ts: a role shown is
 * a lock held now). Undefined with SQLite (one node). PostgreSQL unreachable: `error`, and no rows.
 */
export function clusterSummary(store: object): ClusterSummary | undefined {
  const pg = asPostgresStore(store);
  if (!pg) return undefined;
  try {
    const view = pg.clusterView();
    const self = view.nodes.find((n) => n.name === view.node);
    return {
      node: view.node,
      roles: self && !self.stopped && !view.nameLostTo ? self.roles : [],
      nodes: view.nodes.map((n) => ({
        name: n.name,
        host: n.host,
        pid: n.pid,
        startedAt: new Date(n.startedAt).toISOString(),
        heardFromSecondsAgo: Math.round(n.heartbeatAgeMs / 1000),
        stopped: n.stopped,
        roles: n.roles,
      })),
      ...(view.nameLostTo ? { nameLostTo: view.nameLostTo } : {}),
    };
  } catch (e) {
    return { node: pg.node, roles: [], nodes: [], error: (e as Error).message };
  }
}

/** /readyz's `cluster` check: this node's name and roles; not ok when its name was taken, or the nodes cannot be read. */
export function clusterCheck(c: ClusterSummary): ReadinessCheck {
  const roles = c.roles.length ? c.roles.join(', ') : 'standby (neither decider nor poller)';
  if (c.nameLostTo) return { ok: false, detail: `NODE_NAME_IN_USE: node ${c.node}: another bridge (host ${c.nameLostTo.host}, pid ${c.nameLostTo.pid}) took this name while this one was not heard from` };
  if (c.error !== undefined) return { ok: false, detail: `node ${c.node}: roles unknown: ${c.error}` };
  const others = c.nodes.filter((n) => n.name !== c.node && !n.stopped).map((n) => `${n.name} ${n.roles.length ? n.roles.join('+') : 'standby'}`);
  return { ok: true, detail: `node ${c.node}: ${roles}${others.length ? `; other nodes: ${others.join(', ')}` : '; no other node running'}` };
}
