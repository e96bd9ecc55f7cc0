/**
 * Several bridges on one PostgreSQL, what the operator relies on beyond the locks themselves (issue 15, gaps):
 * one running bridge per node name (a second start under a held name is refused, a dead holder's name is
 * taken over), who holds which role as the database shows it (status, /readyz), and the hand-over of a
 * closed ticket's incident fenced as a decision (a node that lost the decider lock applies none).
 * Real PostgreSQL (test/helpers/postgres.ts); the two daemons' version is test/integration/postgres-cluster.test.ts.
 */
import { describe, expect, it } from '@jest/globals';
import { hostname } from 'node:os';
import { pino } from 'pino';
import { NodeNameInUse, PgUnavailable, PostgresStore, readStoredMarkerKey, SyncPg } from '../../src/adapters/store/postgres/index.js';
import { DECIDER_LOCK } from '../../src/adapters/store/postgres/leader.js';
import { clusterCheck, clusterSummary, deciderRole } from '../../src/composition/cluster.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { queueJob } from '../../src/services/storm-control.js';
import { followup, T } from '../contract/store-samples.js';
import { databasesPerTest, type TestDatabase } from '../helpers/postgres.js';

const { opened, database } = databasesPerTest();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function open(db: TestDatabase, node: string, role?: 'decider' | 'poller', leaseMs = 3000): PostgresStore {
  const s = new PostgresStore({ connection: db.connection, label: db.name, node, leaseMs, ...(role ? { role } : {}) });
  opened.push(s);
  return s;
}

function admin(db: TestDatabase): SyncPg {
  const pg = new SyncPg(db.connection);
  opened.push(pg);
  return pg;
}

function rows(pg: SyncPg, sql: string, params: unknown[] = []): Record<string, unknown>[] {
  return pg.run('q', [{ sql, params }])[0]?.rows ?? [];
}

describe('PostgreSQL cluster: one running bridge per node name', () => {
  it('refuses a second start under a name a running bridge holds, naming its host and pid; a stopped bridge frees its name at once', () => {
    const db = database();
    // A lease far longer than the test: the stores here beat only between the test's steps (it does not await).
    const first = open(db, 'alpha', 'poller', 60_000);
    let refused: unknown;
    try {
      open(db, 'alpha', 'poller', 60_000);
    } catch (e) {
      refused = e;
    }
    expect(refused).toBeInstanceOf(NodeNameInUse);
    const msg = String((refused as Error).message);
    expect(msg).toMatch(/^NODE_NAME_IN_USE: /);
    expect(msg).toContain('store.postgres.node_name "alpha"');
    expect(msg).toContain(`host ${hostname()}, pid ${process.pid}`);
    expect(msg).toContain('set a distinct store.postgres.node_name');
    // Another name is fine beside it.
    open(db, 'beta', 'poller');
    // A graceful stop: the next start under the name is not refused.
    first.close();
    opened.splice(opened.indexOf(first), 1);
    const again = open(db, 'alpha', 'poller');
    expect(again.nameTakenOver).toBeUndefined();
    expect(again.presence?.beat()).toBe(true);
  });

  it('takes over the name of a bridge that is gone: its heartbeat older than a lease, or its session ended (a kill -9): and the old one, if it comes back, says its name was taken', async () => {
    const db = database();
    const pg = admin(db);
    const old = open(db, 'alpha', 'poller', 1000);
    // A bridge stopped (SIGSTOP, a frozen VM) for longer than a lease: its heartbeat is old, its session still open.
    rows(pg, "UPDATE nodes SET heartbeat = clock_timestamp() - interval '1 hour' WHERE name = 'alpha'");
    const next = open(db, 'alpha', 'poller', 1000);
    expect(next.nameTakenOver).toMatchObject({ host: hostname(), pid: process.pid, why: expect.stringMatching(/not heard from for \d+ s/) });
    // The old one runs again: its heartbeat finds the name is another instance's (the log says so), and /readyz too.
    const lostTo: { host: string; pid: number }[] = [];
    old.onNameLost((to) => lostTo.push(to));
    for (let i = 0; i < 40 && lostTo.length === 0; i++) await sleep(50);
    expect(lostTo).toEqual([expect.objectContaining({ host: hostname(), pid: process.pid })]);
    expect(old.presence?.beat()).toBe(false);
    const check = clusterCheck(clusterSummary(old)!);
    expect(check.ok).toBe(false);
    expect(check.detail).toMatch(/^NODE_NAME_IN_USE: node alpha: another bridge \(host .+, pid \d+\) took this name/);
    expect(next.presence?.beat()).toBe(true);
    expect(clusterCheck(clusterSummary(next)!).ok).toBe(true);

    // A killed bridge: PostgreSQL ends its sessions at once, so its name is free before its heartbeat ages.
    // (Here the process lives on: its heartbeat, which would reconnect and beat again, is what dies with it.)
    next.presence!.beat = () => true;
    const backend = Number(rows(pg, "SELECT backend_pid FROM nodes WHERE name = 'alpha'")[0]?.backend_pid);
    rows(pg, 'SELECT pg_terminate_backend($1)', [backend]);
    let third: PostgresStore | undefined;
    for (let i = 0; i < 20 && !third; i++) {
      try {
        third = open(db, 'alpha', 'poller', 60_000); // a lease far longer than the test: only the ended session frees the name
      } catch (e) {
        if (!(e instanceof NodeNameInUse)) throw e;
        await sleep(100);
      }
    }
    expect(third?.nameTakenOver?.why).toBe('its session to PostgreSQL has ended');
  });
});

describe('PostgreSQL cluster: who holds which role, as the database shows it', () => {
  it('shows this node, its roles and the other nodes with theirs; a role moves with its lock; a stopped node is shown stopped, with no role', async () => {
    const db = database();
    const mainA = open(db, 'alpha', 'poller');
    const procA = open(db, 'alpha', 'decider');
    const mainB = open(db, 'beta', 'poller');
    const procB = open(db, 'beta', 'decider');
    expect([procA.holdRole(), mainA.holdRole(), procB.holdRole(), mainB.holdRole()]).toEqual([true, true, false, false]);
    const fromB = clusterSummary(mainB)!;
    expect(fromB.node).toBe('beta');
    expect(fromB.roles).toEqual([]);
    expect(fromB.nodes.map((n) => [n.name, n.roles, n.stopped, n.pid])).toEqual([
      ['alpha', ['decider', 'poller'], false, process.pid],
      ['beta', [], false, process.pid],
    ]);
    expect(clusterCheck(fromB)).toEqual({ ok: true, detail: 'node beta: standby (neither decider nor poller); other nodes: alpha decider+poller' });
    expect(clusterCheck(clusterSummary(mainA)!)).toEqual({ ok: true, detail: 'node alpha: decider, poller; other nodes: beta standby' });

    // alpha stops: beta takes both roles, alpha is shown stopped.
    for (const s of [procA, mainA]) {
      s.close();
      opened.splice(opened.indexOf(s), 1);
    }
    for (let i = 0; i < 40 && !(procB.holdRole() && mainB.holdRole()); i++) await sleep(50);
    const after = clusterSummary(mainB)!;
    expect(after.roles).toEqual(['decider', 'poller']);
    expect(after.nodes.map((n) => [n.name, n.roles, n.stopped])).toEqual([
      ['alpha', [], true],
      ['beta', ['decider', 'poller'], false],
    ]);
    // A tool (`status` of a stopped daemon) reads the same from the database, with its configuration's node name.
    const tool = open(db, 'alpha');
    expect(clusterSummary(tool)).toMatchObject({ node: 'alpha', roles: [], nodes: [{ name: 'alpha', stopped: true }, { name: 'beta', roles: ['decider', 'poller'] }] });
  });
});

describe('PostgreSQL cluster: hand-overs are decisions, fenced', () => {
  const quiet = pino({ level: 'silent' });

  it('a node that lost the decider lock without knowing applies no hand-over: its commit is refused, the hand-over waits in the table, and the new decider applies it', async () => {
    const db = database();
    const pg = admin(db);
    const a = open(db, 'a', 'decider');
    const b = open(db, 'b', 'decider');
    const jobsOf = (fp: string) => Number(rows(pg, 'SELECT count(*) AS n FROM jobs WHERE fp_key IS NOT NULL AND payload->>\'type\' = \'followup\' AND payload->\'lines\'->>0 = $1', [fp])[0]?.n);
    const handovers = () => rows(pg, 'SELECT fingerprint, seq, ticket_id FROM handovers ORDER BY id').map((r) => `${String(r.fingerprint)}/${String(r.seq)}/${String(r.ticket_id)}`);
    // The processor's hand-over, as far as the store sees it: a new cycle's job, committed with the decision.
    const handOverOn = (s: PostgresStore) => (fp: string, cycle: number) => void s.transaction(() => queueJob(s, fp, cycle + 1, followup(fp), T, T), 'crash-safe');
    const roleA = deciderRole(a, { logger: quiet, metrics: createMetrics({ processMetrics: false }), schedule: () => undefined, forget: () => undefined, ticketClosed: handOverOn(a) })!;
    expect(roleA.holds()).toBe(true);

    // From here to the hand-over, nothing awaits: a's role cannot look at its lock in between (it believes it holds it).
    rows(pg, "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1", [DECIDER_LOCK]);
    let took = false;
    for (let i = 0; i < 100 && !took; i++) {
      took = b.holdRole();
      if (!took) rows(pg, 'SELECT pg_sleep(0.05)');
    }
    expect(took).toBe(true);
    // a's worker saw a connection end and counts PostgreSQL as down until it reconnects: waited for, still without awaiting.
    for (let i = 0; i < 100; i++) {
      try {
        a.processedThrough();
        break;
      } catch (e) {
        if (!(e instanceof PgUnavailable)) throw e;
        rows(pg, 'SELECT pg_sleep(0.05)');
      }
    }
    expect(roleA.holds()).toBe(true); // a has not looked since
    roleA.ticketClosed('host=x', 1, 77, T); // a's job found the ticket closed
    expect(jobsOf('host=x')).toBe(0); // a's decision did not commit
    expect(handovers()).toEqual(['host=x/1/77']); // left to the decider

    // The same for a hand-over row another node left, run the way a's role runs them (deciderTransaction): refused.
    a.deferHandover('host=y', 2, 78, T);
    const [pending] = a.pendingHandovers().filter((h) => h.fingerprint === 'host=y');
    expect(() =>
      a.deciderTransaction(() => {
        handOverOn(a)('host=y', 2);
        a.dropHandover(pending!.id);
      }),
    ).toThrow(/this node no longer holds the decider lock/);
    expect([jobsOf('host=y'), handovers().length]).toEqual([0, 2]);

    // The new decider applies both, once.
    await roleA.stop();
    const roleB = deciderRole(b, { logger: quiet, metrics: createMetrics({ processMetrics: false }), schedule: () => undefined, forget: () => undefined, ticketClosed: handOverOn(b) })!;
    for (let i = 0; i < 40 && handovers().length > 0; i++) await sleep(50);
    expect(handovers()).toEqual([]);
    expect([jobsOf('host=x'), jobsOf('host=y')]).toEqual([1, 1]);
    await roleB.stop();
  });
});

describe('PostgreSQL cluster: the shared marker key, read only', () => {
  it('is read from the database without making a schema or writing anything; none before the first bridge started', () => {
    const empty = database(true);
    expect(readStoredMarkerKey(empty.connection)).toBeUndefined();
    expect(rows(admin(empty), "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'")[0]?.n).toBe(0);
    const db = database();
    expect(readStoredMarkerKey(db.connection)).toBeUndefined();
    const s = open(db, 'a');
    s.sharedMarkerKey('k'.repeat(43));
    expect(readStoredMarkerKey(db.connection)).toBe('k'.repeat(43));
    expect(s.storedMarkerKey()).toBe('k'.repeat(43));
  });
});
