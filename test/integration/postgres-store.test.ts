import { describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PG_MIGRATIONS } from '../../src/adapters/store/postgres/index.js';
import { MIGRATION_LOCK } from '../../src/adapters/store/postgres/schema.js';
import { Daemon, waitFor } from '../helpers/daemon.js';
import { ROOT, zabbixBody } from '../helpers/fixtures.js';
import { pgStoreYaml, pgTestBed } from '../helpers/postgres.js';

/**
 * The built daemon on `store.backend: postgres` (issue 15, phase 1: one node): webhooks become tickets
 * through a real PostgreSQL, a restart finds everything again, and PostgreSQL going away for a few
 * seconds makes the webhook answer 503 (Zabbix retries) and /readyz say why, until it is back — without
 * restarting the daemon, and without losing or duplicating anything. A private cluster of this file's own
 * (it is stopped and started again), never the one ZGB_TEST_PG_URL names.
 */
const bed = pgTestBed<Daemon>();
const daemons = bed.daemons;

function postgresDaemon(dataDir?: string): Daemon {
  const d = new Daemon({
    glpiUrl: bed.glpi.url,
    ...(dataDir ? { dataDir } : {}),
    extra: pgStoreYaml(bed.cluster.url('postgres'), { statementTimeout: '5s' }),
  });
  daemons.push(d);
  return d;
}

/** As Zabbix does: send again until the bridge answers 202; the answers seen on the way. */
async function deliver(d: Daemon, body: Record<string, string>, seen: number[] = []): Promise<void> {
  for (;;) {
    const res = await d.post(body).catch(() => undefined);
    if (res) seen.push(res.status);
    if (res?.status === 202) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const common = (i: number) => ({ host_host: `pg-${i}`, host_name: `pg-${i}`, event_id: String(31_000 + i), trigger_id: String(71_000 + i) });

describe('store.backend: postgres', () => {
  it('turns webhooks into tickets, and finds them again after a restart (nothing in SQLite files)', async () => {
    let d = postgresDaemon();
    await d.start();
    for (let i = 0; i < 5; i++) await deliver(d, zabbixBody('problem', common(i)));
    await waitFor(() => bed.glpi.tickets.size === 5, 'five tickets');
    expect(existsSync(join(d.dataDir, 'bridge.db'))).toBe(false);
    expect(existsSync(join(d.dataDir, 'bridge.inbox.db'))).toBe(false);
    expect(await d.stop()).toBe(0);

    d = postgresDaemon(d.dataDir);
    await d.start();
    // A redelivery of a problem decided before the restart is recognised; the recoveries solve the same tickets.
    await deliver(d, zabbixBody('problem', common(0)));
    for (let i = 0; i < 5; i++) await deliver(d, zabbixBody('recovery', { ...common(i), event_recovery_id: String(81_000 + i) }));
    await waitFor(() => bed.glpi.solutions.length === 5, 'five solutions');
    expect(bed.glpi.tickets.size).toBe(5);
    const ready = await d.get('/readyz');
    expect(ready.status).toBe(200);
    expect(await d.stop()).toBe(0);
  });

  it('answers 503 while PostgreSQL is down and /readyz says why; takes webhooks again when it is back, without a restart, losing nothing', async () => {
    const d = postgresDaemon();
    await d.start();
    const before = bed.glpi.tickets.size;
    await deliver(d, zabbixBody('problem', common(100)));
    await waitFor(() => bed.glpi.tickets.size === before + 1, 'the first ticket');

    bed.cluster.stop('fast');
    const down = await d.post(zabbixBody('problem', common(101)));
    expect(down.status).toBe(503);
    const readyz = await d.get('/readyz');
    expect(readyz.status).toBe(503);
    const body = (await readyz.json()) as { checks: Record<string, { ok: boolean; detail: string }> };
    expect(body.checks.store?.ok).toBe(false);
    expect(body.checks.store?.detail).toMatch(/PostgreSQL is unreachable/);
    // Metrics are still scraped (the queue gauges keep their last values): an outage must not blind monitoring.
    const metrics = await d.get('/metrics');
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/^zgb_alerts_received_total\{/m);
    // The status page says why instead of failing with 500.
    const status = await d.get('/status?format=json');
    expect(status.status).toBe(503);
    expect(((await status.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'BRIDGE_STORE_UNAVAILABLE', message: expect.stringMatching(/PostgreSQL is unreachable/) });

    // Zabbix keeps retrying; PostgreSQL comes back a few seconds later.
    const seen: number[] = [];
    const retried = Promise.all([101, 102, 103].map((i) => deliver(d, zabbixBody('problem', common(i)), seen)));
    await new Promise((r) => setTimeout(r, 3000));
    bed.cluster.start();
    await retried;
    expect(seen).toContain(503);
    await waitFor(() => bed.glpi.tickets.size === before + 4, 'a ticket for every alert answered 202', 30_000);
    expect(d.running).toBe(true);
    await waitFor(async () => (await d.get('/readyz')).status === 200, '/readyz ready again', 40_000);
    // Nothing twice: one ticket per incident.
    const names = [...bed.glpi.tickets.values()].map((t) => t.name);
    expect(new Set(names).size).toBe(names.length);
    expect(await d.stop()).toBe(0);
  });
});

describe('schema migrations', () => {
  it('three nodes starting at once on an empty database migrate it once', async () => {
    const { default: pg } = await import('pg');
    const admin = new pg.Client({ connectionString: bed.cluster.url('postgres') });
    await admin.connect();
    await admin.query('CREATE DATABASE migrate_race');
    const url = bed.cluster.url('migrate_race');
    // Hold the migrations' lock so that the three really start together when it is released.
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    const index = join(ROOT, 'dist', 'src', 'adapters', 'store', 'postgres', 'index.js');
    const code = `import(${JSON.stringify(pathToFileURL(index).href)}).then((m) => { const c = new m.SyncPg({ connectionString: process.env.URL }); process.stdout.write(JSON.stringify(m.migrate(c, 'm'))); c.close(); })`;
    const nodes = [1, 2, 3].map(
      () =>
        new Promise<string>((resolve, reject) => {
          execFile(process.execPath, ['-e', code], { env: { ...process.env, URL: url } }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
        }),
    );
    await waitFor(async () => (await admin.query("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).rows[0].n === 3, 'three nodes waiting for the lock');
    await holder.query('COMMIT');
    const applied = (await Promise.all(nodes)).map((out) => JSON.parse(out) as number[]);
    expect(applied.filter((v) => v.length > 0)).toEqual([PG_MIGRATIONS.map((m) => m.version)]);
    const check = new pg.Client({ connectionString: url });
    await check.connect();
    expect((await check.query('SELECT version FROM schema_migrations ORDER BY version')).rows.map((r: { version: number }) => r.version)).toEqual(PG_MIGRATIONS.map((m) => m.version));
    await Promise.all([check.end(), holder.end(), admin.end()]);
  });
});
