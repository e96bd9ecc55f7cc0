/**
 * The store alone, SQLite against PostgreSQL, on this machine: how many alerts per second the intake commits
 * (acceptDeliveries + syncInbox per batch, as services/intake.ts's group commit: batches of 1 = one webhook
 * at a time, of 50 = a burst), and how many decisions per second the real Processor takes (services/
 * processor.ts on the store: incidents, events, jobs, the decision log and the cursor, a batch per commit).
 * No HTTP, no GLPI: what the store costs, side by side.
 *
 *   npm run build && node dist/bench/store.js
 *
 * PostgreSQL: BENCH_PG_URL, else a private cluster is started (Debian's postgresql binaries, BENCH_PG_BIN,
 * default /usr/lib/postgresql/15/bin; as the `postgres` user when run as root) with fsync on — the commit
 * costs what it costs on this disk — and removed at the end. Options: BENCH_ALERTS (5000), BENCH_FINGERPRINTS (500).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { nodeDigests } from '../src/adapters/digests.js';
import { PostgresStore, SyncPg } from '../src/adapters/store/postgres/index.js';
import { SqliteStore } from '../src/adapters/store/sqlite/index.js';
import { processingSettings } from '../src/composition/from-config.js';
import { loadConfig } from '../src/config/load.js';
import type { Alert } from '../src/core/alert.js';
import { deliveryKey } from '../src/core/fingerprint.js';
import type { NewDelivery } from '../src/core/ports.js';
import { createMetrics } from '../src/observability/metrics.js';
import { Processor } from '../src/services/processor.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ALERTS = Number(process.env.BENCH_ALERTS ?? 5000);
const FINGERPRINTS = Number(process.env.BENCH_FINGERPRINTS ?? 500);
const BIN = process.env.BENCH_PG_BIN ?? '/usr/lib/postgresql/15/bin';

type BenchStore = SqliteStore | PostgresStore;

function alerts(offset: number): Alert[] {
  return Array.from({ length: ALERTS }, (_, i): Alert => {
    const n = i % FINGERPRINTS;
    // Every fingerprint: a problem, then updates of it (one incident, many alerts), as in a storm.
    return {
      source: 'webhook', eventSource: '0', eventId: String(offset + n), kind: i < FINGERPRINTS ? 'problem' : 'update',
      severity: 'high', eventName: `High CPU on host-${offset + n}`, host: `host-${offset + n}`, hostName: `host-${offset + n}`, triggerId: String(5000 + n),
      triggerName: `High CPU on host-${offset + n}`, tags: [{ tag: 'component', value: 'cpu' }],
      ...(i >= FINGERPRINTS ? { update: { action: 'commented', message: `note ${i}`, acknowledged: false, severityChanged: false, closed: false } } : {}),
    };
  });
}

function deliveries(list: readonly Alert[], now: number): NewDelivery[] {
  // Updates need distinct keys: the key of an update carries a digest of its message.
  return list.map((alert) => ({ key: deliveryKey(alert, nodeDigests), receivedAt: now, alert }));
}

async function intake(store: BenchStore, items: readonly NewDelivery[], batch: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < items.length; i += batch) {
    store.acceptDeliveries(items.slice(i, i + batch));
    await store.syncInbox();
  }
  return items.length / ((performance.now() - start) / 1000);
}

function decide(store: BenchStore): { perSecond: number; decided: number } {
  const config = loadConfig(join(ROOT, 'config', 'bridge.example.yaml'), { GLPI_URL: 'https://glpi.example.org/apirest.php', GLPI_USER_TOKEN: 'bench' });
  const settings = processingSettings(config, 'bench-marker-key-0123456789abcdef');
  const processor = new Processor(store, () => settings, { now: () => Date.now() }, pino({ level: 'silent' }), createMetrics({ processMetrics: false }), () => undefined);
  processor.admit(store.lastDeliveryId());
  const start = performance.now();
  const decided = processor.drain('all');
  return { perSecond: decided / ((performance.now() - start) / 1000), decided };
}

async function run(name: string, open: () => BenchStore): Promise<string[]> {
  const rows: string[] = [];
  for (const [batch, offset] of [[1, 1_000_000], [50, 2_000_000]] as const) {
    const store = open();
    try {
      const items = deliveries(alerts(offset), Date.now());
      const perSecond = await intake(store, items, batch);
      const d = decide(store);
      if (d.decided !== items.length) throw new Error(`${name}: decided ${d.decided} of ${items.length}`);
      rows.push(`| ${name} | ${batch} | ${Math.round(perSecond)} | ${Math.round(d.perSecond)} |`);
      process.stderr.write(`${rows[rows.length - 1]}\n`);
    } finally {
      store.close();
    }
  }
  return rows;
}

function asPostgres(cmd: string, args: readonly string[]): void {
  if (process.getuid?.() === 0) execFileSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { stdio: 'ignore' });
  else execFileSync(cmd, args, { stdio: 'ignore' });
}

function privateCluster(): { url: string; stop: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'zgb-bench-pg-'));
  if (process.getuid?.() === 0) execFileSync('chown', ['postgres:', dir]);
  const data = join(dir, 'data');
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  asPostgres(join(BIN, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C.UTF-8']);
  asPostgres(join(BIN, 'pg_ctl'), ['-D', data, '-w', '-l', join(dir, 'server.log'), '-o', `-c listen_addresses=127.0.0.1 -c port=${port} -c unix_socket_directories=${dir}`, 'start']);
  return {
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    stop: () => {
      asPostgres(join(BIN, 'pg_ctl'), ['-D', data, '-w', '-m', 'fast', 'stop']);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function main(): Promise<void> {
  const rows = ['| store | batch | intake alerts/s | decisions/s |', '|---|---|---|---|'];
  const dirs: string[] = [];
  rows.push(
    ...(await run('sqlite', () => {
      const dir = mkdtempSync(join(tmpdir(), 'zgb-bench-sqlite-'));
      dirs.push(dir);
      return new SqliteStore(join(dir, 'bridge.db'), { synchronous: 'full' });
    })),
  );
  const cluster = process.env.BENCH_PG_URL ? undefined : privateCluster();
  const url = process.env.BENCH_PG_URL ?? cluster!.url;
  try {
    const admin = new SyncPg({ connectionString: url });
    let db = 0;
    rows.push(
      ...(await run('postgres', () => {
        // A fresh database per run.
        const name = `zgb_bench_${process.pid}_${++db}`;
        admin.run('admin', [{ sql: `DROP DATABASE IF EXISTS ${name}` }, { sql: `CREATE DATABASE ${name}` }]);
        const u = new URL(url);
        u.pathname = `/${name}`;
        return new PostgresStore({ connection: { connectionString: u.toString() }, label: name });
      })),
    );
    admin.close();
  } finally {
    cluster?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
  process.stdout.write(`\n${rows.join('\n')}\n\n${ALERTS} alerts over ${FINGERPRINTS} incidents per run; ${new Date().toISOString()}\n`);
}

await main();
