import { afterAll, afterEach, describe, expect, it } from '@jest/globals';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { PostgresStore } from '../../src/adapters/store/postgres/index.js';
import { SqliteStore } from '../../src/adapters/store/sqlite/index.js';
import { FakeGlpi } from '../../src/glpi-fake/server.js';
import { Daemon, runCli, waitFor } from '../helpers/daemon.js';
import { cpuAlert, exampleRulesYamlUnknownCpuCategory, zabbixBody } from '../helpers/fixtures.js';
import { releaseTestPostgres, testPostgres, type TestDatabase } from '../helpers/postgres.js';

/**
 * `migrate-store` (issue 15): a bridge that ran on SQLite is stopped, its store copied into PostgreSQL, and a
 * bridge started on PostgreSQL (another data_dir, so the marker key must travel too) goes on where it
 * stopped, on the same GLPI: updates land on the tickets made before the move, nothing is created or
 * decided twice, a redelivery is recognised, pending work runs, the dead letter can be retried.
 */
let glpi: FakeGlpi | undefined;
const daemons: Daemon[] = [];

afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop();
  await glpi?.close();
  glpi = undefined;
});

afterAll(() => releaseTestPostgres());

function pgDaemon(glpiUrl: string, db: TestDatabase): Daemon {
  const d = new Daemon({ glpiUrl, extra: ['store:', '  backend: postgres', '  postgres:', `    url: ${db.url}`, '    connect_timeout: 2s', '    statement_timeout: 10s'].join('\n') });
  daemons.push(d);
  return d;
}

/** A SQLite daemon whose rules name a CPU category GLPI does not have (111 for 11): CPU tickets become dead letters. */
function sqliteDaemon(glpiUrl: string): { daemon: Daemon; rulesFile: string } {
  const daemon = new Daemon({ glpiUrl, rulesYaml: exampleRulesYamlUnknownCpuCategory() });
  daemons.push(daemon);
  return { daemon, rulesFile: daemon.rulesFile };
}

const disk = (id: number, host: string) => ({
  event_id: String(id), trigger_id: String(7000 + id), host_host: host, host_name: host, event_name: `Free disk space is low on ${host}`, trigger_name: `Free disk space is low on ${host}`,
  item_key: 'vfs.fs.size[/,pused]', event_tags: JSON.stringify([{ tag: 'component', value: 'storage' }]),
});

async function accept(d: Daemon, body: Record<string, string>): Promise<{ status: string; delivery_id: number }> {
  const res = await d.post(body);
  expect(res.status).toBe(202);
  return (await res.json()) as { status: string; delivery_id: number };
}

async function query<R>(url: string, sql: string): Promise<R[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql)).rows as R[];
  } finally {
    await c.end();
  }
}

describe('migrate-store: SQLite to PostgreSQL', () => {
  it('moves incidents, tickets, pending work, dead letters, the inbox and the marker key: the PostgreSQL bridge goes on with nothing lost or done twice', async () => {
    glpi = new FakeGlpi({ userTokens: ['user-token'], categories: [11, 12, 13, 14, 15] });
    await glpi.listen();
    const db = testPostgres().emptyDatabase();
    const { daemon: old } = sqliteDaemon(glpi.url);
    await old.start();

    // Two incidents with tickets, one dead letter (a CPU ticket GLPI refuses), one job still pending (GLPI down).
    const first = await accept(old, zabbixBody('problem', disk(21, 'db-1')));
    await accept(old, zabbixBody('problem', disk(22, 'db-2')));
    await waitFor(() => glpi!.tickets.size === 2, 'two tickets');
    await accept(old, zabbixBody('problem', { event_id: '31', trigger_id: '7031', host_host: 'cpu-1', host_name: 'cpu-1' }));
    await waitFor(() => old.logs.some((l) => l.msg === 'job moved to dead letters'), 'the dead letter');
    glpi.setFaults({ mode: 'unavailable' });
    await accept(old, zabbixBody('problem', disk(23, 'db-3')));
    await waitFor(() => old.logs.some((l) => l.msg === 'GLPI request failed; job will be retried'), 'a create waiting for GLPI');

    const next = pgDaemon(glpi.url, db);
    // A daemon still has the SQLite store open: refused, and nothing is written to PostgreSQL.
    const running = await runCli(['migrate-store', '--config', next.configFile, '--from', old.dataDir]);
    expect(running.code).toBe(1);
    expect(running.stderr).toMatch(/a daemon has this SQLite store open/);
    expect(await query(db.url, "SELECT 1 FROM pg_tables WHERE tablename = 'incidents'")).toHaveLength(0);

    expect(await old.stop()).toBe(0);
    const ticketsBefore = new Map([...glpi.tickets.values()].map((t) => [t.id, t.name]));
    const sqliteBytes = readFileSync(join(old.dataDir, 'bridge.db'));

    const moved = await runCli(['migrate-store', '--config', next.configFile, '--from', old.dataDir]);
    expect(moved.stderr).toBe('');
    expect(moved.code).toBe(0);
    expect(moved.stdout).toMatch(/incidents\s+4\b/);
    expect(moved.stdout).toMatch(/tickets\s+2\b/);
    expect(moved.stdout).toMatch(/jobs\s+1 pending, 1 dead letters/);
    expect(moved.stdout).toMatch(/marker key: copied/);
    // The cluster shares the key from the database (every node, whatever its own data_dir holds).
    expect(moved.stdout).toMatch(/^  meta .*\bmarker_key\b/m);
    expect(moved.stdout).toMatch(/were not changed/);
    expect(readFileSync(join(next.dataDir, 'marker-key'), 'utf8')).toBe(readFileSync(join(old.dataDir, 'marker-key'), 'utf8'));
    expect(readFileSync(join(old.dataDir, 'bridge.db')).equals(sqliteBytes)).toBe(true);

    // Run again on the filled database: refused, no merge.
    const again = await runCli(['migrate-store', '--config', next.configFile, '--from', old.dataDir]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already holds incidents, jobs, deliveries, tickets/);

    glpi.setFaults({ mode: 'up' });
    await next.start();
    // The pending create runs once.
    await waitFor(() => glpi!.tickets.size === 3, 'the pending ticket created', 30_000);
    // A redelivery of a webhook the SQLite bridge accepted is recognised, with its delivery id.
    expect(await accept(next, zabbixBody('problem', disk(21, 'db-1')))).toEqual({ status: 'duplicate', delivery_id: first.delivery_id });
    // An acknowledgement and a recovery of migrated incidents land on the tickets made before the move.
    const ticketOf = (host: string) => [...ticketsBefore].find(([, name]) => name.includes(host))![0];
    const fresh = await accept(next, zabbixBody('update-acknowledged', { ...disk(21, 'db-1'), event_update_message: 'after the move' }));
    expect(fresh.status).toBe('accepted');
    expect(fresh.delivery_id).toBeGreaterThan(first.delivery_id);
    await accept(next, zabbixBody('recovery', { ...disk(22, 'db-2'), event_recovery_id: '8022' }));
    await waitFor(() => glpi!.followups.some((f) => f.items_id === ticketOf('db-1')) && glpi!.solutions.some((s) => s.items_id === ticketOf('db-2')), 'ack and recovery applied');
    expect(glpi.followups.filter((f) => f.itemtype === 'Ticket')).toHaveLength(1);
    expect(glpi.solutions).toHaveLength(1);

    // The dead letter is listed with its reason, and retried with the rules in force (the right category).
    const listed = await runCli(['queue', '--config', next.configFile]);
    expect(listed.stdout).toMatch(/dead letters: 1/);
    expect(listed.stdout).toMatch(/ERROR_GLPI_ADD/);
    const retried = await runCli(['queue', 'retry', '--config', next.configFile, '--all']);
    expect(retried.stdout).toContain('1 dead letter(s) queued again');
    await waitFor(() => glpi!.tickets.size === 4, 'the dead letter retried', 30_000);
    // The fourth ticket GLPI made (ids are consecutive): the CPU one, now in the category the rules in force name.
    expect(glpi.tickets.get(4)?.itilcategories_id).toBe(11);

    // One ticket per incident; no delivery decided twice (the decision log holds each once).
    const names = [...glpi.tickets.values()].map((t) => t.name);
    expect(new Set(names).size).toBe(4);
    expect(await query(db.url, 'SELECT delivery_id FROM decision_log WHERE delivery_id IS NOT NULL GROUP BY delivery_id HAVING count(*) > 1')).toEqual([]);
    expect(await next.stop()).toBe(0);
  }, 90_000); // two daemons one after the other on PostgreSQL: about 30 s on a loaded machine

  it('refuses a configuration that is not on PostgreSQL, a SQLite store that does not exist, and a marker key that differs from the one in data_dir', async () => {
    glpi = new FakeGlpi({ userTokens: ['user-token'] });
    await glpi.listen();
    const sqlite = new Daemon({ glpiUrl: glpi.url });
    const notPg = await runCli(['migrate-store', '--config', sqlite.configFile]);
    expect(notPg.code).toBe(1);
    expect(notPg.stderr).toMatch(/store\.backend is sqlite/);
    const target = testPostgres().database();
    const next = pgDaemon(glpi.url, target);
    const missing = await runCli(['migrate-store', '--config', next.configFile, '--from', sqlite.dataDir]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/bridge\.db does not exist/);

    // A stopped SQLite store whose marker key differs from the one already in the PostgreSQL bridge's data_dir:
    // the tickets in GLPI carry markers of the former, so copying would lead to duplicates; nothing is written.
    const store = new SqliteStore(join(sqlite.dataDir, 'bridge.db'));
    store.recordStart(Date.now());
    store.recordCleanStop();
    store.close();
    writeFileSync(join(sqlite.dataDir, 'marker-key'), `${'a'.repeat(43)}\n`);
    writeFileSync(join(next.dataDir, 'marker-key'), `${'b'.repeat(43)}\n`);
    const otherKey = await runCli(['migrate-store', '--config', next.configFile, '--from', sqlite.dataDir]);
    expect(otherKey.code).toBe(1);
    expect(otherKey.stderr).toMatch(/marker-key differs from .*marker-key/);
    expect(await query(target.url, 'SELECT count(*)::int AS n FROM incidents')).toEqual([{ n: 0 }]);
  });

  it('keeps the decided position: decided deliveries are not handed out again, undecided ones are; new ids follow the highest ever given, also when the inbox was pruned', async () => {
    const now = Date.now();
    const delivery = (i: number, at: number) => ({ key: `k${i}`, receivedAt: at, alert: cpuAlert('problem', { eventId: String(100 + i), host: `h${i}`, hostName: `h${i}` }) });
    const stopped = (fill: (s: SqliteStore) => void): string => {
      const dir = mkdtempSync(join(tmpdir(), 'zgb-migrate-'));
      const s = new SqliteStore(join(dir, 'bridge.db'));
      s.recordStart(now);
      fill(s);
      s.recordCleanStop();
      s.close();
      return dir;
    };
    const migrateInto = async (dir: string): Promise<PostgresStore> => {
      const db = testPostgres().database();
      const cfg = pgDaemon('http://127.0.0.1:9', db);
      const r = await runCli(['migrate-store', '--config', cfg.configFile, '--from', dir]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      return new PostgresStore({ connection: db.connection, label: 'test' });
    };

    // Deliveries 1-4 decided and pruned from the inbox, 5 decided, 6 not yet.
    const partly = await migrateInto(
      stopped((s) => {
        s.acceptDeliveries([1, 2, 3, 4].map((i) => delivery(i, now - 60_000)));
        s.markProcessed(4);
        s.syncDecided();
        expect(s.pruneDeliveries(now, 0)).toBe(4);
        s.acceptDeliveries([delivery(5, now), delivery(6, now)]);
        s.markProcessed(5);
      }),
    );
    try {
      expect(partly.processedThrough()).toBe(5);
      expect(partly.unprocessedDeliveries(10).map((d) => d.id)).toEqual([6]);
      // A redelivery keeps its id; a new delivery comes after every id the SQLite store gave (PostgreSQL may skip some).
      const [again, fresh] = partly.acceptDeliveries([delivery(5, now), delivery(7, now)]);
      expect(again).toEqual({ deliveryId: 5, duplicate: true });
      expect(fresh?.duplicate).toBe(false);
      expect(fresh?.deliveryId).toBeGreaterThan(6);
      expect(partly.unprocessedDeliveries(10).map((d) => d.alert.eventId)).toEqual(['106', '107']);
    } finally {
      partly.close();
    }

    // Everything decided and pruned: the inbox is empty, yet the next delivery must come after the decided position.
    const pruned = await migrateInto(
      stopped((s) => {
        s.acceptDeliveries([1, 2, 3].map((i) => delivery(i, now - 60_000)));
        s.markProcessed(3);
        s.syncDecided();
        expect(s.pruneDeliveries(now, 0)).toBe(3);
      }),
    );
    try {
      const [next] = pruned.acceptDeliveries([delivery(4, now)]);
      expect(next?.deliveryId).toBeGreaterThan(3);
      expect(pruned.unprocessedDeliveries(10).map((d) => d.alert.eventId)).toEqual(['104']);
    } finally {
      pruned.close();
    }
  });
});
