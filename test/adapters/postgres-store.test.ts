/**
 * What the PostgreSQL store promises beyond the port contracts (those run in test/contract against it):
 * the durability each commit asks for, redeliveries recognised across stores on one database (another
 * node later), the schema migrated once and refused when newer, and an unreachable server failing
 * calls with the reason instead of hanging.
 */
import { describe, expect, it } from '@jest/globals';
import { PgUnavailable, PostgresStore, SyncPg, migrate, PG_MIGRATIONS } from '../../src/adapters/store/postgres/index.js';
import { PgSession } from '../../src/adapters/store/postgres/session.js';
import { pino } from 'pino';
import { DECIDER_LOCK } from '../../src/adapters/store/postgres/leader.js';
import { deciderRole, pollerRole, ROLE_TRY_MS } from '../../src/composition/cluster.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { EARLIER_UPDATES_SQL, LeaseLost, PgStorePorts } from '../../src/adapters/store/postgres/store.js';
import { queueJob } from '../../src/services/storm-control.js';
import { updateKeyPrefix } from '../../src/core/fingerprint.js';
import { alert, create, followup, incident, T } from '../contract/store-samples.js';
import { databasesPerTest, testConnection, type TestDatabase } from '../helpers/postgres.js';

const { opened, database } = databasesPerTest();
/** The intake's advisory lock (store.ts INBOX_LOCK, 'zgbi'; the intake epoch is its second key): held shared by each intake commit. */
const INBOX_LOCK_KEY = 0x7a676269;
const CURRENT_EPOCH = "COALESCE((SELECT value::int FROM meta WHERE key = 'intake_epoch'), 0)";

function store(db: TestDatabase): PostgresStore {
  const s = new PostgresStore({ connection: db.connection, label: db.name });
  opened.push(s);
  return s;
}

function syncPg(db: TestDatabase): SyncPg {
  const pg = new SyncPg(db.connection);
  opened.push(pg);
  return pg;
}

describe('PostgreSQL store', () => {
  it('commits crash-safe work with synchronous_commit off and power-safe work (and every intake commit) with it on', () => {
    const db = database();
    const pg = syncPg(db);
    const s = new PgSession(pg, 'c');
    const setting = () => s.query<{ synchronous_commit: string }>('SHOW synchronous_commit')[0]?.synchronous_commit;
    expect(s.transaction(setting, 'crash-safe')).toBe('off');
    expect(s.transaction(setting, 'power-safe')).toBe('on');
    // Outside our transactions (the intake's one-statement commits), whatever the server's default.
    pg.run('c', [{ sql: 'ALTER DATABASE ' + db.name + ' SET synchronous_commit = off' }]);
    const fresh = new PgSession(syncPg(db), 'c');
    expect(fresh.query<{ synchronous_commit: string }>('SHOW synchronous_commit')[0]?.synchronous_commit).toBe('on');
  });

  it("reads an event's earlier updates through an index whatever the database's collation (no scan of the inbox per decision)", () => {
    const db = database();
    const s = store(db);
    s.acceptDeliveries(Array.from({ length: 300 }, (_, i) => ({ key: `${updateKeyPrefix('0', String(i))}${'a'.repeat(16)}`, receivedAt: T, alert: alert('problem', String(i)) })));
    const pg = syncPg(db);
    const [, plan] = pg.run('x', [
      { sql: 'SET enable_seqscan = off' },
      { sql: `EXPLAIN ${EARLIER_UPDATES_SQL}`, params: [updateKeyPrefix('0', '7'), `${updateKeyPrefix('0', '7').slice(0, -1)};`, 1_000] },
    ]);
    const text = (plan?.rows ?? []).map((r) => String((r as Record<string, unknown>)['QUERY PLAN'])).join('\n');
    expect(text).toMatch(/Index (Only )?Scan (using|on) deliveries_key_c/);
    expect(s.earlierUpdates('0', '7', 1_000).map((d) => d.alert.eventId)).toEqual(['7']);
  });

  it('answers a redelivery to another store on the same database with the first delivery id', () => {
    const db = database();
    const a = store(db);
    const b = store(db);
    const [first] = a.acceptDeliveries([{ key: 'k1', receivedAt: T, alert: alert('problem', '1') }]);
    const [again, other] = b.acceptDeliveries([
      { key: 'k1', receivedAt: T + 1, alert: alert('problem', '1', { host: 'changed' }) },
      { key: 'k2', receivedAt: T + 1, alert: alert('problem', '2') },
    ]);
    expect(first).toEqual({ deliveryId: first!.deliveryId, duplicate: false });
    expect(again).toEqual({ deliveryId: first!.deliveryId, duplicate: true });
    expect(other?.duplicate).toBe(false);
    expect(other!.deliveryId).toBeGreaterThan(first!.deliveryId);
    expect(a.deliveryAlert('k1')?.host).toBe('h');
  });

  it('creates the schema once: opening again applies nothing, and a schema newer than the bridge is refused', () => {
    const db = database(true);
    const pg = syncPg(db);
    expect(migrate(pg, 'm')).toEqual(PG_MIGRATIONS.map((m) => m.version));
    expect(migrate(pg, 'm')).toEqual([]);
    pg.run('m', [{ sql: "INSERT INTO schema_migrations (version, name) VALUES (99, 'from a newer bridge')" }]);
    expect(() => migrate(pg, 'm')).toThrow(/version 99, newer than this bridge knows/);
    expect(() => store(db)).toThrow(/upgrade the bridge/);
  });

  it('fails calls with the reason while the server cannot be reached, and says so when opening', () => {
    // A port nothing listens on (the cluster's own port + a random offset would not be sure): port 1 on localhost.
    const pg = new SyncPg({ ...testConnection('postgresql://postgres@127.0.0.1:1/none') });
    opened.push(pg);
    expect(() => pg.run('c', [{ sql: 'SELECT 1' }])).toThrow(PgUnavailable);
    expect(() => pg.run('c', [{ sql: 'SELECT 1' }])).toThrow(/PostgreSQL is unreachable: .*ECONNREFUSED/);
    expect(() => new PostgresStore({ connection: testConnection('postgresql://postgres@127.0.0.1:1/none'), label: 'nowhere' })).toThrow(/PostgreSQL is unreachable/);
  });

  it('keeps an alert with a NUL character (PostgreSQL text refuses U+0000) as U+FFFD, without failing the rest of its batch, and recognises its redelivery', () => {
    const s = store(database());
    const poisoned = alert('problem', '7', { host: 'bad\u0000host', eventName: 'x\u0000' });
    const [a, b] = s.acceptDeliveries([
      { key: 'k\u00007', receivedAt: T, alert: poisoned },
      { key: 'k8', receivedAt: T, alert: alert('problem', '8') },
    ]);
    expect([a?.duplicate, b?.duplicate]).toEqual([false, false]);
    expect(s.acceptDeliveries([{ key: 'k\u00007', receivedAt: T, alert: poisoned }])).toEqual([{ deliveryId: a!.deliveryId, duplicate: true }]);
    expect(s.hasDelivery('k\u00007')).toBe(true);
    expect(s.deliveryAlert('k\u00007')?.host).toBe('bad\ufffdhost');
    // Decided on like any other: its incident, events and log entry are stored.
    s.transaction(() => {
      s.putIncident(incident('host=bad\u0000host'), T);
      s.putEvents('host=bad\u0000host', [{ eventId: '7', cycle: 1, open: true }]);
      s.recordDecisions([{ at: T, eventId: '7', kind: 'problem', host: 'bad\u0000host', fingerprint: 'host=bad\u0000host', category: 'cpu', severity: 'high', action: 'open', reason: 'r', jobs: [] }], 10);
    }, 'crash-safe');
    expect(s.getIncident('host=bad\u0000host')?.fingerprint).toBe('host=bad\ufffdhost');
    expect(s.recentDecisions()[0]?.host).toBe('bad\ufffdhost');
  });

  it('rolls back a transaction whose statement PostgreSQL refuses, and the connection goes on', () => {
    const db = database();
    const s = store(db);
    expect(() =>
      s.transaction(() => {
        s.markProcessed(5);
        s.putIncident(incident('A'), Number.NaN); // NaN is no bigint: refused when the held-back writes reach the server
      }, 'crash-safe'),
    ).toThrow();
    expect(s.processedThrough()).toBe(0);
    s.markProcessed(3);
    expect(s.processedThrough()).toBe(3);
  });
});

/**
 * Several bridges on one database (issue 15, phase 2): each node's processing store claims jobs as leases with
 * a fencing epoch. The nodes here are stores without the lease renewal timer (PgStorePorts), so that a test can
 * let one node's lease lapse as a paused or partitioned node's would.
 */
describe('PostgreSQL store, several nodes: job claims are leases with fencing', () => {
  const none = new Set<string>();
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  function node(db: TestDatabase, name: string, leaseMs = 60_000): PgStorePorts {
    const pg = syncPg(db);
    migrate(pg, 'state');
    return new PgStorePorts(pg, { node: name, leaseMs });
  }

  it('hands each job to one node only, and holds an incident lane on the node that runs its head', () => {
    const db = database();
    const a = node(db, 'a');
    const b = node(db, 'b');
    const heads = ['A', 'B', 'C', 'D'].map((fp) => a.enqueue(fp, 1, followup(`${fp}1`), T, T));
    const behind = a.enqueue('A', 1, followup('A2'), T, T);
    const onA = a.claimReady(T, 2, none).map((j) => j.id);
    const onB = b.claimReady(T, 10, none).map((j) => j.id);
    expect([...onA, ...onB].sort((x, y) => x - y)).toEqual(heads);
    expect(b.claimReady(T, 10, none)).toEqual([]); // A2 waits behind A1, whichever node runs A1
    expect(a.claimReady(T, 10, none)).toEqual([]);
    const holder = onA.includes(heads[0]!) ? a : b;
    holder.completeJob(heads[0]!, T + 1);
    const other = holder === a ? b : a;
    expect(other.claimReady(T + 1, 10, none).map((j) => j.id)).toEqual([behind]);
  });

  it('lets any node retake a claim whose lease expired; the stale node cannot record its outcome over the newer claim', async () => {
    const db = database();
    const a = node(db, 'a', 200);
    const b = node(db, 'b', 60_000);
    const [x, y, z] = ['A', 'B', 'C'].map((fp) => a.enqueue(fp, 1, followup(fp), T, T)) as [number, number, number];
    const next = a.enqueue('A', 1, followup('A2'), T, T);
    expect(a.claimReady(T, 10, none).map((j) => j.id)).toEqual([x, y, z]);
    expect(b.claimReady(T, 10, none)).toEqual([]); // a's leases are live
    await sleep(400); // a stalls past its lease (no renewal)
    const retaken = b.claimReady(T, 10, none);
    // Retaken as the heads of their lanes, one more attempt each, flagged so that their runs check GLPI before sending again.
    expect(retaken.map((j) => j.id)).toEqual([x, y, z]);
    expect(retaken[0]).toMatchObject({ status: 'running', attempts: 2, lastError: 'the lease of a expired: retaken by b' });
    expect(() => a.completeJob(x, T + 1)).toThrow(LeaseLost);
    expect(() => a.rescheduleJob(y, T + 5, 'GLPI_TIMEOUT', T + 1)).toThrow(/job \d+: this node's claim \(epoch 1\) expired and was taken over by a newer claim/);
    expect(() => a.buryJob(z, 'GLPI_PERMANENT', T + 1)).toThrow(LeaseLost);
    expect([x, y, z].map((id) => a.job(id)?.status)).toEqual(['running', 'running', 'running']);
    expect(a.stats()).toMatchObject({ dead: 0, running: 3 });
    expect(a.claimReady(T, 10, none)).toEqual([]); // lane A still waits for b's run
    b.completeJob(x, T + 2);
    expect(a.job(x)).toMatchObject({ status: 'done' });
    expect(a.claimReady(T + 2, 10, none).map((j) => j.id)).toEqual([next]);
  });

  it('keeps a claim while its node renews the lease', async () => {
    const db = database();
    const a = node(db, 'a', 300);
    const b = node(db, 'b');
    const id = a.enqueue('A', 1, followup('x'), T, T);
    a.claimReady(T, 10, none);
    for (let i = 0; i < 6; i++) {
      await sleep(100);
      expect(a.renewLeases()).toBe(1);
    }
    expect(b.claimReady(T, 10, none)).toEqual([]);
    expect(a.claimLapsed!(id)).toBe(false);
    // Not renewed for two thirds of a lease (this node was stopped): no request may be sent for the job any more.
    await sleep(250);
    expect(a.claimLapsed!(id)).toBe(true);
    expect(a.renewLeases()).toBe(1);
    expect(a.claimLapsed!(id)).toBe(false);
    a.completeJob(id, T + 1);
    expect(a.renewLeases()).toBe(0);
    expect(a.claimLapsed!(id)).toBe(true);
  });

  it('at start, requeues only its own claims and expired ones, never another node\'s live claim', async () => {
    const db = database();
    const a = node(db, 'a');
    const b = node(db, 'b', 200);
    const live = a.enqueue('A', 1, followup('a'), T, T);
    const lapsed = a.enqueue('B', 1, followup('b'), T, T);
    expect(a.claimReady(T, 1, none).map((j) => j.id)).toEqual([live]);
    expect(b.claimReady(T, 1, none).map((j) => j.id)).toEqual([lapsed]);
    await sleep(400);
    // A restarted c: its dispatcher reschedules what it finds running, and requeues the rest.
    const c = node(db, 'c');
    for (const j of c.jobs('running')) c.rescheduleJob(j.id, T, 'interrupted', T);
    expect(c.requeueRunning(T)).toBe(0);
    expect([c.job(live)?.status, c.job(lapsed)?.status]).toEqual(['running', 'pending']);
    a.completeJob(live, T + 1);
    expect(c.job(live)?.status).toBe('done');
  });

  it('keeps each node\'s run record: one node\'s clean stop does not hide another\'s crash', () => {
    const db = database();
    const a = node(db, 'a');
    const b = node(db, 'b');
    expect(a.recordStart(T)).toBe(false);
    expect(b.recordStart(T)).toBe(false);
    b.recordCleanStop(); // a is killed meanwhile
    const created = a.enqueue('A', 1, create(), T, T);
    expect(node(db, 'a').recordStart(T)).toBe(true);
    expect(a.job(created)?.attempts).toBe(1); // its create searches GLPI for its marker first
    expect(node(db, 'b').recordStart(T)).toBe(false);
  });

  it('share one marker key: the first node\'s, whatever key the next ones offer from their own data_dir', () => {
    const db = database();
    const first = 'k'.repeat(43);
    expect(node(db, 'a').sharedMarkerKey(first)).toBe(first);
    expect(node(db, 'b').sharedMarkerKey('o'.repeat(43))).toBe(first);
    expect(node(db, 'a').sharedMarkerKey(first)).toBe(first);
  });

  it('storm control on one node never rewrites a job another node is claiming: the merge waits in the lock, the claim passes it over', () => {
    const db = database();
    const decider = node(db, 'a');
    const other = node(db, 'b');
    const first = decider.enqueue('A', 1, followup('one'), T, T);
    let claimedMeanwhile: number[] = [];
    decider.transaction(() => {
      expect(queueJob(decider, 'A', 1, followup('two'), T, T)).toBe(first);
      claimedMeanwhile = other.claimReady(T, 10, none).map((j) => j.id);
    }, 'crash-safe');
    expect(claimedMeanwhile).toEqual([]);
    const [job] = other.claimReady(T, 10, none);
    expect(job?.spec).toEqual({ type: 'followup', lines: ['one', 'two'], isPrivate: false });
    // Claimed now: the next alert is queued behind it, not merged into what is being sent.
    expect(decider.transaction(() => queueJob(decider, 'A', 1, followup('three'), T, T), 'crash-safe')).not.toBe(first);
  });
});

describe('PostgreSQL store, several nodes: one decider at a time', () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  function decider(db: TestDatabase, node: string): PostgresStore {
    const s = new PostgresStore({ connection: db.connection, label: db.name, node, role: 'decider' });
    opened.push(s);
    return s;
  }

  it('hands the deliveries to the node holding the decider lock only, all of them whichever node took them, and to another once it lets go', () => {
    const db = database();
    const a = decider(db, 'a');
    const b = decider(db, 'b');
    let aTenures = 0;
    let bTenures = 0;
    a.onNewTenure(() => aTenures++);
    b.onNewTenure(() => bTenures++);
    const [d1] = a.acceptDeliveries([{ key: 'k1', receivedAt: T, alert: alert('problem', '1') }]);
    b.acceptDeliveries([{ key: 'k2', receivedAt: T, alert: alert('problem', '2') }]);
    // a's own intake has told it of d1 only: the shared inbox is durable as committed, so k2 is decided too.
    expect(a.unprocessedDeliveries(10, d1!.deliveryId).map((d) => d.alert.eventId)).toEqual(['1', '2']);
    expect(b.unprocessedDeliveries(10)).toEqual([]);
    expect([a.lock?.held, b.lock?.held, aTenures, bTenures]).toEqual([true, false, 1, 0]);
    a.lock?.release(); // a stops
    expect(b.unprocessedDeliveries(10).length).toBe(2);
    expect([b.lock?.held, bTenures]).toEqual([true, 1]);
    expect(a.unprocessedDeliveries(10)).toEqual([]);
  });

  /** An intake commit of another node still in flight: the shared intake lock held and a delivery inserted, not committed. */
  function commitInFlight(db: TestDatabase, key: string): { pg: SyncPg; id: number } {
    const pg = syncPg(db);
    const [, , ins] = pg.run('other-node', [
      { sql: 'BEGIN' },
      { sql: `SELECT pg_advisory_xact_lock_shared($1::int, ${CURRENT_EPOCH})`, params: [INBOX_LOCK_KEY] },
      { sql: "INSERT INTO deliveries (delivery_key, received_at, source, alert) VALUES ($1, $2, 'zabbix', $3::jsonb) RETURNING id", params: [key, T, JSON.stringify(alert('problem', key))] },
    ]);
    return { pg, id: Number(ins?.rows[0]?.id) };
  }

  it("does not wait for another node's intake commit in flight to commit its own (the nodes' commits run side by side)", () => {
    const db = database();
    const a = store(db);
    const other = commitInFlight(db, 'k1');
    // A client-side timeout: were the intake commits to take turns, this one would wait for the other's end.
    const b = new PostgresStore({ connection: { ...db.connection, query_timeout: 3000 }, label: db.name });
    opened.push(b);
    const [d2] = b.acceptDeliveries([{ key: 'k2', receivedAt: T, alert: alert('problem', '2') }]);
    expect(d2!.deliveryId).toBeGreaterThan(other.id);
    expect(a.hasDelivery('k1')).toBe(false); // still in flight
    other.pg.run('other-node', [{ sql: 'COMMIT' }]);
    expect(a.hasDelivery('k1')).toBe(true);
  });

  it("decides a delivery committed after a later one only in id order: the decider leaves both until the other node's commit in flight is over, never skips it, never makes it wait", () => {
    const db = database();
    const a = decider(db, 'a');
    const b = store(db);
    const [d0] = b.acceptDeliveries([{ key: 'k0', receivedAt: T, alert: alert('problem', '0') }]);
    expect(a.unprocessedDeliveries(10).map((d) => d.id)).toEqual([d0!.deliveryId]);
    a.markProcessed(d0!.deliveryId);
    // Node c drew id d1 and has not committed yet; node b then commits d2 (a later id) at once.
    const c = commitInFlight(db, 'k1');
    const [d2] = b.acceptDeliveries([{ key: 'k2', receivedAt: T, alert: alert('problem', '2') }]);
    // Visible alone, d2 would be decided and the decided position moved past d1: d1 never decided.
    expect(a.unprocessedDeliveries(10)).toEqual([]);
    expect(b.acceptDeliveries([{ key: 'k3', receivedAt: T, alert: alert('problem', '3') }])[0]?.duplicate).toBe(false); // intake goes on meanwhile
    c.pg.run('other-node', [{ sql: 'COMMIT' }]);
    expect(a.unprocessedDeliveries(10).map((d) => d.id)).toEqual([c.id, d2!.deliveryId]);
  });

  it('commits a batch without blocking the calling thread, answering once it is committed, and a redelivery with the first id', async () => {
    const db = database();
    const a = store(db);
    const b = store(db);
    // Something holds the intake's lock exclusively (nothing of the bridge does): the commit waits for it.
    const admin = syncPg(db);
    admin.run('decider', [{ sql: 'BEGIN' }, { sql: `SELECT pg_advisory_xact_lock($1::int, ${CURRENT_EPOCH})`, params: [INBOX_LOCK_KEY] }]);
    let answered: { deliveryId: number; duplicate: boolean }[] | undefined;
    const committing = a.acceptDeliveriesAsync([{ key: 'k1', receivedAt: T, alert: alert('problem', '1') }]).then((r) => (answered = r));
    // This thread goes on meanwhile (a timer fires), and nothing is answered before the commit.
    await new Promise((r) => setTimeout(r, 100));
    expect(answered).toBeUndefined();
    expect(b.hasDelivery('k1')).toBe(false);
    admin.run('decider', [{ sql: 'COMMIT' }]);
    await committing;
    expect(answered).toEqual([{ deliveryId: answered![0]!.deliveryId, duplicate: false }]);
    expect(b.hasDelivery('k1')).toBe(true);
    expect(await b.acceptDeliveriesAsync([{ key: 'k1', receivedAt: T + 1, alert: alert('problem', '1') }])).toEqual([{ deliveryId: answered![0]!.deliveryId, duplicate: true }]);
  });

  it('takes the role over from a holder that is alive but stuck (its session open, silent for longer than a lease)', async () => {
    const db = database();
    const open = (node: string) => {
      const s = new PostgresStore({ connection: db.connection, label: db.name, node, role: 'decider', leaseMs: 1000 });
      opened.push(s);
      return s;
    };
    const a = open('a');
    const b = open('b');
    expect(a.holdRole()).toBe(true);
    await sleep(300);
    expect(b.holdRole()).toBe(false); // a checked its lock 300 ms ago: alive
    expect(b.lock?.lastTakeover).toBeUndefined();
    await sleep(1200); // a is stopped (SIGSTOP, a frozen VM): its connection stays open, it checks nothing
    expect(b.holdRole()).toBe(false); // this try ends a's session…
    expect(b.lock?.lastTakeover?.silentMs).toBeGreaterThan(1000);
    for (let i = 0; i < 40 && !b.holdRole(); i++) await sleep(50); // …and a later one takes the lock
    expect(b.lock?.held).toBe(true);
    // a runs again: its decisions are refused, and it finds out it is no longer the decider.
    let refused: unknown;
    for (let i = 0; i < 40; i++) {
      try {
        a.markProcessed(1);
        refused = undefined;
        break;
      } catch (e) {
        refused = e;
        if (!(e instanceof PgUnavailable)) break;
        await sleep(100);
      }
    }
    expect(String(refused)).toMatch(/no longer holds the decider lock/);
    expect(a.holdRole()).toBe(false);
  });

  it('fences the decisions of a node that lost its lock without knowing (its session ended): its commit fails, the new decider\'s goes through', async () => {
    const db = database();
    const admin = syncPg(db);
    const a = decider(db, 'a');
    const b = decider(db, 'b');
    a.acceptDeliveries([{ key: 'k1', receivedAt: T, alert: alert('problem', '1') }]);
    expect(a.holdRole()).toBe(true);
    // a's lock session ends (a partition the server noticed, an administrator): a has not looked since.
    admin.run('admin', [{ sql: "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1", params: [DECIDER_LOCK] }]);
    for (let i = 0; i < 40 && !b.holdRole(); i++) await sleep(50);
    expect(b.lock?.held).toBe(true);
    // a's connections come back (the worker reconnects); its decision's commit is refused by the fence.
    let refused: unknown;
    for (let i = 0; i < 40; i++) {
      try {
        a.markProcessed(1);
        refused = undefined;
        break;
      } catch (e) {
        refused = e;
        if (!(e instanceof PgUnavailable)) break;
        await sleep(100);
      }
    }
    expect(String(refused)).toMatch(/this node no longer holds the decider lock/);
    expect(a.processedThrough()).toBe(0);
    b.markProcessed(1);
    expect(a.processedThrough()).toBe(1);
    expect(a.unprocessedDeliveries(10)).toEqual([]); // a finds out, and b holds the lock
    expect(a.lock?.held).toBe(false);
  });
});

/** composition/cluster.ts over real stores: who holds each role, the hand-over of closed tickets, the take-over. */
describe('PostgreSQL store, several nodes: the roles (composition/cluster.ts)', () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const quiet = pino({ level: 'silent' });

  function roleStore(db: TestDatabase, node: string, role: 'decider' | 'poller'): PostgresStore {
    const s = new PostgresStore({ connection: db.connection, label: db.name, node, role });
    opened.push(s);
    return s;
  }

  async function gauge(metrics: ReturnType<typeof createMetrics>, role: string, node: string): Promise<number | undefined> {
    const m = (await metrics.registry.getMetricsAsJSON()).find((x) => x.name === 'zgb_cluster_role');
    return m?.values.find((v) => v.labels.role === role && v.labels.node === node)?.value;
  }

  it('the decider: one node holds it; a closed ticket found on another node is handed to it; when it stops, another takes over and forgets what it remembered', async () => {
    const db = database();
    const seen = { a: [] as string[], b: [] as string[] };
    const forgot = { a: 0, b: 0 };
    const metrics = { a: createMetrics({ processMetrics: false }), b: createMetrics({ processMetrics: false }) };
    const role = (name: 'a' | 'b') =>
      deciderRole(roleStore(db, name, 'decider'), {
        logger: quiet, metrics: metrics[name], schedule: () => undefined, forget: () => forgot[name]++,
        ticketClosed: (fp, cycle, ticketId) => seen[name].push(`${fp}/${cycle}/${ticketId}`),
      })!;
    const a = role('a');
    const b = role('b');
    expect([a.holds(), b.holds()]).toEqual([true, false]);
    expect([await gauge(metrics.a, 'decider', 'a'), await gauge(metrics.b, 'decider', 'b')]).toEqual([1, 0]);
    b.ticketClosed('host=x', 2, 77, T); // b's job found the ticket closed: a decides the new cycle
    for (let i = 0; i < 20 && seen.a.length === 0; i++) await sleep(ROLE_TRY_MS);
    expect(seen).toEqual({ a: ['host=x/2/77'], b: [] });
    a.ticketClosed('host=y', 1, 78, T); // on the decider: at once
    expect(seen.a).toEqual(['host=x/2/77', 'host=y/1/78']);
    const before = forgot.b;
    await a.stop();
    for (let i = 0; i < 20 && !b.holds(); i++) await sleep(ROLE_TRY_MS);
    expect(b.holds()).toBe(true);
    expect(forgot.b).toBe(before + 1);
    expect(await gauge(metrics.b, 'decider', 'b')).toBe(1);
    await b.stop();
  });

  it('the poller: started on the node that takes the lock only, and on another once that one stops', async () => {
    const db = database();
    const runs: string[] = [];
    const task = (name: string) => ({ start: () => void runs.push(`${name} start`), stop: async () => void runs.push(`${name} stop`) });
    const a = pollerRole(roleStore(db, 'a', 'poller'), task('a'), quiet, createMetrics({ processMetrics: false }));
    const b = pollerRole(roleStore(db, 'b', 'poller'), task('b'), quiet, createMetrics({ processMetrics: false }));
    a.start('* * * * *');
    b.start('* * * * *');
    await sleep(3 * ROLE_TRY_MS);
    expect(runs).toEqual(['a start']);
    await a.stop();
    for (let i = 0; i < 20 && runs.length < 3; i++) await sleep(ROLE_TRY_MS);
    expect(runs).toEqual(['a start', 'a stop', 'b start']);
    await b.stop();
  });
});
