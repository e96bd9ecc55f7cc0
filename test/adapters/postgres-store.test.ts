/**
 * What the PostgreSQL store promises beyond the port contracts (those run in test/contract against it):
 * the durability each commit asks for, redeliveries recognised across stores on one database (another
 * node later), the schema migrated once and refused when newer, and an unreachable server failing
 * calls with the reason instead of hanging.
 */
import { afterAll, afterEach, describe, expect, it } from '@jest/globals';
import { PgUnavailable, PostgresStore, SyncPg, migrate, PG_MIGRATIONS } from '../../src/adapters/store/postgres/index.js';
import { PgSession } from '../../src/adapters/store/postgres/session.js';
import { alert, incident, T } from '../contract/store-samples.js';
import { releaseTestPostgres, testConnection, testPostgres, type TestDatabase } from '../helpers/postgres.js';

const opened: { close(): void }[] = [];
const dbs: TestDatabase[] = [];

afterEach(() => {
  for (const o of opened.splice(0)) o.close();
  for (const d of dbs.splice(0)) d.drop();
});
afterAll(() => releaseTestPostgres());

function database(empty = false): TestDatabase {
  const db = empty ? testPostgres().emptyDatabase() : testPostgres().database();
  dbs.push(db);
  return db;
}

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
