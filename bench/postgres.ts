/**
 * npm run bench -- postgres (issue 15): the intake of bridges on PostgreSQL against one bridge on SQLite, and a
 * storm across two PostgreSQL nodes with one of them killed (SIGKILL) half-way. Not in the default run (6 to 8
 * minutes with the defaults).
 *
 * It starts its own PostgreSQL 15 (initdb into a temp folder, a free port on 127.0.0.1, Debian's binaries from
 * ZGB_TEST_PG_BIN or /usr/lib/postgresql/15/bin, run as `postgres` when we are root) with the durability of a
 * production server: fsync on, synchronous_commit on, full_page_writes on (PostgreSQL's defaults, said
 * explicitly), wal_sync_method the platform's default (fdatasync on Linux). Each round gets a fresh database
 * and fresh daemons (the built daemon, as bench/run.ts starts it), and a fresh GLPI fake with the same latency.
 *
 * Intake, with the load generator of bench/run.ts (bench/load.ts), each measure as run.ts's intake takes it
 * (BENCH_RATE alerts/s after BENCH_WARMUP_SECONDS of warm-up, then BENCH_CONNECTIONS connections at
 * saturation, BENCH_INTAKE_SECONDS each):
 * - `sqlite`: one bridge on SQLite (synchronous=full), the issue's yardstick;
 * - `pg 1 node`: one bridge on PostgreSQL;
 * - `pg 2 nodes`: two bridges on one database, the load split across both as Zabbix with one media type URL
 *   per node (two actions) or a virtual IP would: two load processes, each at half the rate or with half the
 *   connections, each on its node, at the same time.
 * The three are alternated on the same machine in the same run, in the order A B C, then C B A
 * (BENCH_PG_ROUNDS rounds; 2), so that the machine's drift weighs on each alike; each figure is the mean of
 * its rounds, and the rounds are printed.
 *
 * Storm (BENCH_STORM_EVENTS over BENCH_STORM_SECONDS across 50 fingerprints, as run.ts's storm): once against
 * one SQLite bridge, once against two PostgreSQL bridges behind a failover address (a small proxy here: round
 * robin, a refused or broken connection tried on the other node, as a virtual IP with a health check would),
 * with the second node killed -9 half-way. Then, once the survivor has caught up: every event decided, exactly
 * one ticket per incident at the GLPI fake, none left unsolved, no dead letters, and GLPI's requests per event
 * against the SQLite storm's. Both storms use glpi.timeout 2s and store.postgres.lease 5s (so that the killed
 * node's claims are retaken within seconds, not the default minute).
 */
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { LoadResult } from './load.js';
import { CONCURRENCY, CONNECTIONS, cpuSeconds, daemonConfig, DIST, env, FINGERPRINTS, freePort, glpiState, INTAKE_SECONDS, LATENCY, load, metricsText, type Proc, RATE, sleep, startGlpi, stop, STORM_EVENTS, STORM_SECONDS, sumMetric, TOKEN, WARMUP_SECONDS } from './common.js';

const ROUNDS = env('BENCH_PG_ROUNDS', 2);
/** Which intake setups run (profiling one alone): sqlite,pg1,pg2. */
const SETUPS = (process.env.BENCH_PG_SETUPS ?? 'sqlite,pg1,pg2').split(',');
const PG_BIN = process.env.ZGB_TEST_PG_BIN ?? '/usr/lib/postgresql/15/bin';

// ---------------------------------------------------------------------------
// PostgreSQL

const asRoot = process.getuid?.() === 0;

/** PostgreSQL refuses to run as root: its binaries run as `postgres` then. */
function pgBin(name: string, args: readonly string[]): string {
  const cmd = join(PG_BIN, name);
  return asRoot
    ? execFileSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    : execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

interface Postgres {
  readonly port: number;
  readonly dir: string;
  url(database: string): string;
  /** A fresh empty database (the first bridge to start creates the schema). */
  database(): Promise<string>;
  /** CPU seconds of the server's processes (postmaster and its children) so far. */
  cpuSeconds(): number;
  remove(): void;
}

/** The settings the server runs with: a production server's durability, sized for a small machine. */
const PG_SETTINGS = ['fsync=on', 'synchronous_commit=on', 'full_page_writes=on', 'max_connections=100', 'shared_buffers=128MB'];

async function startPostgres(): Promise<Postgres> {
  if (!existsSync(join(PG_BIN, 'initdb'))) throw new Error(`the postgres scenario needs PostgreSQL's server binaries in ${PG_BIN} (Debian: apt-get install postgresql), or ZGB_TEST_PG_BIN`);
  const dir = mkdtempSync(join(tmpdir(), 'zgb-bench-pg-'));
  const data = join(dir, 'data');
  if (asRoot) chownSync(dir, Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })), Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })));
  pgBin('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C.UTF-8']);
  const port = await freePort();
  const opts = [`listen_addresses=127.0.0.1`, `port=${port}`, `unix_socket_directories=${data}`, ...PG_SETTINGS].map((s) => `-c ${s}`).join(' ');
  pgBin('pg_ctl', ['-D', data, '-w', '-t', '60', '-l', join(dir, 'server.log'), '-o', opts, 'start']);
  const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const url = (database: string) => `postgresql://postgres@127.0.0.1:${port}/${database}`;
  let n = 0;
  return {
    port,
    dir,
    url,
    async database() {
      const name = `zgb_bench_${++n}`;
      const admin = new pg.Client({ connectionString: url('postgres') });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end();
      }
      return url(name);
    },
    cpuSeconds() {
      let total = 0;
      for (const p of readdirSync('/proc')) {
        if (!/^\d+$/.test(p)) continue;
        try {
          const f = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ');
          if (Number(p) === pid || Number(f[1]) === pid) total += (Number(f[11]) + Number(f[12])) / 100;
        } catch {
          // The process ended meanwhile.
        }
      }
      return total;
    },
    remove() {
      try {
        pgBin('pg_ctl', ['-D', data, '-w', '-m', 'fast', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

// ---------------------------------------------------------------------------
// Daemons, GLPI, load (as bench/run.ts)

interface Daemon extends Proc {
  readonly dir: string;
}

/** A daemon on SQLite (`pgUrl` absent, synchronous=full as run.ts's) or on PostgreSQL as node `node`. */
async function startDaemon(glpiUrl: string, pgUrl?: string, node = 'a', dist = DIST): Promise<Daemon> {
  const dir = mkdtempSync(join(tmpdir(), 'zgb-bench-'));
  const port = await freePort();
  const config = join(dir, 'bridge.yaml');
  const store = pgUrl
    ? ['  backend: postgres', '  postgres:', `    url: ${pgUrl}`, `    node_name: ${node}`, '    lease: 5s']
    : ['  synchronous: full'];
  writeFileSync(config, daemonConfig({ port, dir, glpiUrl, store, glpi: ['  timeout: 2s'] }));
  // BENCH_PG_PROFILE=<dir>: the daemons run under --cpu-prof (a profile per thread, written at a clean stop).
  const prof = process.env.BENCH_PG_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PG_PROFILE}`] : [];
  const child = spawn(process.execPath, [...prof, join(dist, 'bridge', 'main.js'), 'run', '--config', config], { stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout!.resume();
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 3000; i++) {
    if (child.exitCode !== null) break;
    try {
      if ((await fetch(`${url}/healthz`)).ok) return { child, url, dir };
    } catch {
      // not listening yet
    }
    await sleep(10);
  }
  throw new Error(`daemon ${node} did not start`);
}

/** Stopped at once (SIGKILL: a clean stop decides the whole backlog first, minutes on PostgreSQL), or SIGTERM when profiling. */
async function removeDaemon(d: Daemon): Promise<void> {
  if (process.env.BENCH_PG_PROFILE) await stop(d);
  else if (d.child.exitCode === null && d.child.signalCode === null) {
    d.child.kill('SIGKILL');
    await new Promise((r) => d.child.once('exit', r));
  }
  rmSync(d.dir, { recursive: true, force: true });
}

/** Undecided alerts and unfinished jobs; the store is shared, so any node's /metrics tells the cluster's. */
async function backlog(url: string): Promise<number> {
  const t = await metricsText(url);
  return sumMetric(t, 'zgb_queue_depth', { state: 'pending' }) + sumMetric(t, 'zgb_queue_depth', { state: 'running' }) + sumMetric(t, 'zgb_inbox_depth');
}

async function caughtUp(url: string, limitSeconds = 300): Promise<number> {
  const started = Date.now();
  while ((await backlog(url)) > 0) {
    if (Date.now() - started > limitSeconds * 1000) throw new Error(`not caught up after ${limitSeconds} s`);
    await sleep(250);
  }
  return (Date.now() - started) / 1000;
}

// ---------------------------------------------------------------------------
// Intake

type Setup = 'sqlite' | 'pg1' | 'pg2' | 'pg1-base' | 'pg2-base';
const SETUP_NAME: Record<Setup, string> = {
  sqlite: 'SQLite, 1 node',
  pg1: 'PostgreSQL, 1 node',
  pg2: 'PostgreSQL, 2 nodes',
  'pg1-base': 'PostgreSQL, 1 node, baseline build',
  'pg2-base': 'PostgreSQL, 2 nodes, baseline build',
};
/**
 * BENCH_PG_BASELINE=<another build's dist folder>: its daemon is measured too, alternated with this one's
 * (e.g. the code before a change of the PostgreSQL store, built in a copy of the repository).
 */
const BASELINE = process.env.BENCH_PG_BASELINE;

interface IntakeRound {
  /** At RATE/s in all: accepted/s, p50, p99 (two nodes: the larger p99 of the two, an upper bound of the joint p99), failed. */
  rate: { perSecond: number; p50: number; p99: number; max: number; failed: number };
  /** At saturation: accepted/s in all and per node. */
  saturation: { perSecond: number; perNode: number[]; p99: number; failed: number };
  /** CPU seconds per 1,000 alerts over both measures: the bridges' (together) and PostgreSQL's. */
  bridgeCpu: number;
  pgCpu: number;
}

const perSecond = (r: LoadResult) => r.accepted / r.seconds;

async function intakeRound(setup: Setup, pgServer: Postgres, firstEventId: number): Promise<IntakeRound> {
  const glpi = await startGlpi();
  const daemons: Daemon[] = [];
  try {
    const pgUrl = setup === 'sqlite' ? undefined : await pgServer.database();
    const dist = setup.endsWith('-base') ? BASELINE! : DIST;
    daemons.push(await startDaemon(glpi.url, pgUrl, 'a', dist));
    if (setup.startsWith('pg2')) daemons.push(await startDaemon(glpi.url, pgUrl, 'b', dist));
    const n = daemons.length;
    const cpu = () => daemons.reduce((s, d) => s + cpuSeconds(d.child.pid!), 0);
    const cpu0 = cpu();
    const pg0 = pgServer.cpuSeconds();
    // Each node its share, at the same time; event ids never shared (no delivery is a redelivery here).
    const rate = await Promise.all(
      daemons.map((d, i) =>
        load({ mode: 'rate', url: `${d.url}/zabbix/webhook`, token: TOKEN, rate: RATE / n, seconds: INTAKE_SECONDS, firstEventId: firstEventId + i * 1_000_000, warmupSeconds: WARMUP_SECONDS }),
      ),
    );
    const sat = await Promise.all(
      daemons.map((d, i) =>
        load({ mode: 'saturate', url: `${d.url}/zabbix/webhook`, token: TOKEN, connections: Math.max(1, Math.round(CONNECTIONS / n)), seconds: INTAKE_SECONDS, firstEventId: firstEventId + 5_000_000 + i * 1_000_000 }),
      ),
    );
    const accepted = [...rate, ...sat].reduce((s, r) => s + r.accepted, 0);
    const per1000 = (x: number) => x / (accepted / 1000);
    const max = (f: (r: LoadResult) => number, rs: LoadResult[]) => Math.max(...rs.map(f));
    return {
      rate: {
        perSecond: rate.reduce((s, r) => s + perSecond(r), 0),
        p50: max((r) => r.latenciesMs.p50, rate),
        p99: max((r) => r.latenciesMs.p99, rate),
        max: max((r) => r.latenciesMs.max, rate),
        failed: rate.reduce((s, r) => s + r.failed, 0),
      },
      saturation: { perSecond: sat.reduce((s, r) => s + perSecond(r), 0), perNode: sat.map(perSecond), p99: max((r) => r.latenciesMs.p99, sat), failed: sat.reduce((s, r) => s + r.failed, 0) },
      bridgeCpu: per1000(cpu() - cpu0),
      pgCpu: per1000(pgServer.cpuSeconds() - pg0),
    };
  } finally {
    for (const d of daemons) await removeDaemon(d);
    await stop(glpi);
  }
}

// ---------------------------------------------------------------------------
// Storm, with one of two nodes killed half-way

/** A failover address in front of the nodes: round robin; a refused or broken connection is tried on the next node. */
async function startVip(backends: readonly string[]): Promise<{ url: string; answered: number[]; close(): Promise<void> }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const answered = backends.map(() => 0);
  let next = 0;
  const forward = (to: number, req: http.IncomingMessage, body: Buffer): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const u = new URL(req.url ?? '/', backends[to]);
      const r = http.request(u, { method: req.method, headers: { ...req.headers, host: u.host }, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      r.on('error', reject);
      r.end(body);
    });
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks);
        const first = next++ % backends.length;
        for (let i = 0; i < backends.length; i++) {
          const to = (first + i) % backends.length;
          try {
            const a = await forward(to, req, body);
            if (a.status === 202) answered[to]!++;
            res.writeHead(a.status, { 'content-type': a.headers['content-type'] ?? 'application/json' });
            res.end(a.body);
            return;
          } catch {
            // This node is gone (refused, reset): the next one.
          }
        }
        res.writeHead(503);
        res.end();
      })();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    answered,
    close: () =>
      new Promise((r) => {
        agent.destroy();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

interface StormFigures {
  sent: number;
  accepted: number;
  seconds: number;
  p99: number;
  tickets: number;
  distinct: number;
  unsolved: number;
  requests: number;
  requestsPerEvent: number;
  searches: number;
  undecided: number;
  dead: number;
  parked: number;
  catchUp: number;
  perNode?: number[];
  killedAt?: number;
  bridgeCpu: number;
}

async function storm(pgServer: Postgres | undefined): Promise<StormFigures> {
  const glpi = await startGlpi();
  const daemons: Daemon[] = [];
  let vip: Awaited<ReturnType<typeof startVip>> | undefined;
  try {
    const pgUrl = pgServer ? await pgServer.database() : undefined;
    daemons.push(await startDaemon(glpi.url, pgUrl, 'a'));
    if (pgServer) daemons.push(await startDaemon(glpi.url, pgUrl, 'b'));
    const cpu0 = daemons.reduce((s, d) => s + cpuSeconds(d.child.pid!), 0);
    let target = `${daemons[0]!.url}/zabbix/webhook`;
    if (pgServer) {
      vip = await startVip(daemons.map((d) => d.url));
      target = `${vip.url}/zabbix/webhook`;
    }
    let killedAt: number | undefined;
    let killedCpu = 0;
    const started = Date.now();
    const kill = pgServer
      ? (async () => {
          await sleep((STORM_SECONDS / 2) * 1000);
          const b = daemons[1]!;
          killedCpu = cpuSeconds(b.child.pid!);
          b.child.kill('SIGKILL');
          killedAt = (Date.now() - started) / 1000;
        })()
      : Promise.resolve();
    const result = await load({ mode: 'storm', url: target, token: TOKEN, fingerprints: FINGERPRINTS, events: STORM_EVENTS, seconds: STORM_SECONDS, firstEventId: 1 });
    await kill;
    const survivor = daemons[0]!;
    const catchUp = await caughtUp(survivor.url);
    const m = await metricsText(survivor.url);
    const state = await glpiState(glpi.url);
    const names = new Set(state.tickets.map((t) => t.name));
    let searches = 0;
    for (const line of m.split('\n')) {
      const x = /^zgb_glpi_requests_total\{[^}]*operation="searchTicket"[^}]*\} ([0-9.eE+-]+)$/.exec(line);
      if (x) searches += Number(x[1]);
    }
    const bridgeCpu = cpuSeconds(survivor.child.pid!) + killedCpu - cpu0;
    // PostgreSQL: asked of the database (the killed node's counters died with it).
    const db = pgUrl ? await databaseCounts(pgUrl) : { undecided: sumMetric(m, 'zgb_inbox_depth'), dead: sumMetric(m, 'zgb_queue_depth', { state: 'dead' }), parked: sumMetric(m, 'zgb_deliveries_parked_total') };
    return {
      sent: result.sent,
      accepted: result.accepted,
      seconds: result.seconds,
      p99: result.latenciesMs.p99,
      tickets: state.tickets.length,
      distinct: names.size,
      unsolved: state.tickets.filter((t) => t.status !== 5).length,
      requests: state.requests,
      requestsPerEvent: state.requests / result.accepted,
      searches,
      ...db,
      catchUp,
      ...(vip ? { perNode: [...vip.answered] } : {}),
      ...(killedAt !== undefined ? { killedAt } : {}),
      bridgeCpu: bridgeCpu / (result.accepted / 1000),
    };
  } finally {
    await vip?.close();
    for (const d of daemons) await removeDaemon(d);
    await stop(glpi);
  }
}

/** What the cluster left: deliveries not decided, dead letters, parked deliveries. */
async function databaseCounts(url: string): Promise<{ undecided: number; dead: number; parked: number }> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ undecided: string; dead: string; parked: string }>(
      `SELECT (SELECT count(*) FROM deliveries WHERE id > COALESCE((SELECT value::bigint FROM meta WHERE key = 'processed_through'), 0)) AS undecided,
              (SELECT count(*) FROM jobs WHERE status = 'dead') AS dead,
              (SELECT count(*) FROM parked_deliveries) AS parked`,
    );
    const x = r.rows[0]!;
    return { undecided: Number(x.undecided), dead: Number(x.dead), parked: Number(x.parked) };
  } finally {
    await c.end();
  }
}

// ---------------------------------------------------------------------------
// The run

const rows: [string, string][] = [];
const row = (k: string, v: string) => {
  rows.push([k, v]);
  process.stdout.write(`  ${k.padEnd(64)} ${v}\n`);
};

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const f0 = (x: number) => x.toFixed(0);
const f2 = (x: number) => x.toFixed(2);
/** The mean, and each round's figure in brackets. */
const each = (xs: readonly number[], f: (x: number) => string) => (xs.length > 1 ? `${f(mean(xs))} (${xs.map(f).join(', ')})` : f(mean(xs)));

/** Runs the scenario, prints its table, and answers the text of its section in bench/last-results.md. */
export async function postgres(): Promise<string> {
  await measure();
  return section();
}

const date = new Date().toISOString().slice(0, 16).replace('T', ' ');
const machine = `${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), Node ${process.version}, ${process.platform}`;
let version = '';
let load0 = [0, 0, 0];

async function measure(): Promise<void> {
  load0 = loadavg();
  const server = await startPostgres();
  version = pgBin('postgres', ['--version']).trim();
  process.stdout.write(
    `zabbix-glpi-bridge benchmark, PostgreSQL (issue 15) — ${date} UTC\nmachine: ${machine}\n${version}, ${PG_SETTINGS.join(', ')}\n` +
      `GLPI fake latency ${LATENCY} ms, max_concurrency ${CONCURRENCY}; intake ${RATE}/s for ${INTAKE_SECONDS} s after ${WARMUP_SECONDS} s warm-up, saturation ${CONNECTIONS} connections for ${INTAKE_SECONDS} s; ${ROUNDS} rounds\n\n`,
  );
  const rounds: Record<Setup, IntakeRound[]> = { sqlite: [], pg1: [], pg2: [], 'pg1-base': [], 'pg2-base': [] };
  try {
    let firstEventId = 1;
    for (let r = 0; r < ROUNDS; r++) {
      const all: Setup[] = ['sqlite', 'pg1', 'pg2', ...(BASELINE ? (['pg1-base', 'pg2-base'] as const) : [])];
      const order = r % 2 === 0 ? all : [...all].reverse();
      for (const setup of order.filter((x) => SETUPS.includes(x.replace('-base', '')))) {
        const x = await intakeRound(setup, server, firstEventId);
        firstEventId += 20_000_000;
        rounds[setup].push(x);
        process.stdout.write(
          `  round ${r + 1}, ${SETUP_NAME[setup].padEnd(20)} at ${RATE}/s: p50 ${f2(x.rate.p50)} p99 ${f2(x.rate.p99)} max ${x.rate.max.toFixed(1)} ms (${x.rate.failed} failed); ` +
            `saturation ${f0(x.saturation.perSecond)}/s [${x.saturation.perNode.map(f0).join(' + ')}] (${x.saturation.failed} failed); CPU s/1,000: bridges ${f2(x.bridgeCpu)}, PostgreSQL ${f2(x.pgCpu)}; load ${loadavg()[0]!.toFixed(1)}\n`,
        );
      }
    }
    process.stdout.write('\n');
    for (const setup of ['sqlite', 'pg1', 'pg2', 'pg1-base', 'pg2-base'] as const) {
      const rs = rounds[setup];
      if (rs.length === 0) continue;
      const name = SETUP_NAME[setup];
      row(`${name}: intake at ${RATE}/s, 202 latency p50 / p99 / max${setup.startsWith('pg2') ? ' (the worse node)' : ''}`, `${each(rs.map((x) => x.rate.p50), f2)} / ${each(rs.map((x) => x.rate.p99), f2)} / ${each(rs.map((x) => x.rate.max), (v) => v.toFixed(1))} ms (${rs.reduce((s, x) => s + x.rate.failed, 0)} failed)`);
      row(`${name}: intake at saturation, accepted/s${setup.startsWith('pg2') ? ' (together)' : ''}`, `${each(rs.map((x) => x.saturation.perSecond), f0)} (${rs.reduce((s, x) => s + x.saturation.failed, 0)} failed)`);
      if (setup.startsWith('pg2')) row(`${name}: intake at saturation, accepted/s per node (a / b)`, rs.map((x) => x.saturation.perNode.map(f0).join(' / ')).join('; '));
      row(`${name}: CPU seconds per 1,000 alerts, bridge${setup.startsWith('pg2') ? 's' : ''} / PostgreSQL server`, `${each(rs.map((x) => x.bridgeCpu), f2)} / ${setup === 'sqlite' ? '–' : each(rs.map((x) => x.pgCpu), f2)}`);
    }
    const sqliteSat = mean(rounds.sqlite.map((x) => x.saturation.perSecond));
    const pg1Sat = mean(rounds.pg1.map((x) => x.saturation.perSecond));
    const pg2Sat = mean(rounds.pg2.map((x) => x.saturation.perSecond));
    const pg2P99 = Math.max(...rounds.pg2.map((x) => x.rate.p99));
    const pg1P99 = Math.max(...rounds.pg1.map((x) => x.rate.p99));
    // The verdicts need every setup (BENCH_PG_SETUPS may name fewer, to profile one).
    const all = rounds.sqlite.length > 0 && rounds.pg1.length > 0 && rounds.pg2.length > 0;
    if (all) row('target: 2 nodes on PostgreSQL / 1 node on SQLite at saturation (≥ 1.00)', `${f2(pg2Sat / sqliteSat)} (${pg2Sat / sqliteSat >= 1 ? 'met' : 'NOT met'}); 1 node on PostgreSQL / SQLite ${f2(pg1Sat / sqliteSat)}`);
    if (BASELINE) {
      const b1 = mean(rounds['pg1-base'].map((x) => x.saturation.perSecond));
      const b2 = mean(rounds['pg2-base'].map((x) => x.saturation.perSecond));
      row('this build / baseline build at saturation, 1 node / 2 nodes', `${f2(pg1Sat / b1)} / ${f2(pg2Sat / b2)}`);
    }
    if (all) row(`target: p99 at ${RATE}/s under 20 ms (worst round)`, `2 nodes ${f2(pg2P99)} ms (${pg2P99 < 20 ? 'met' : 'NOT met'}), 1 node ${f2(pg1P99)} ms (${pg1P99 < 20 ? 'met' : 'NOT met'})`);

    if (process.env.BENCH_PG_STORM === '0') return;
    process.stdout.write(`\n  storms: ${STORM_EVENTS} events over ${STORM_SECONDS} s across ${FINGERPRINTS} fingerprints\n`);
    const s = await storm(undefined);
    const p = await storm(server);
    const stormRow = (name: string, x: StormFigures) => {
      row(`${name}: events sent / accepted`, `${x.sent} / ${x.accepted} in ${x.seconds.toFixed(0)} s${x.perNode ? ` (202s per node a / b: ${x.perNode.join(' / ')}; b killed at ${x.killedAt?.toFixed(0)} s)` : ''}`);
      row(`${name}: tickets expected / created`, `${FINGERPRINTS} / ${x.tickets} (duplicates ${x.tickets - x.distinct}, lost ${FINGERPRINTS - x.distinct}, not solved ${x.unsolved})`);
      row(`${name}: undecided / dead letters / parked at the end`, `${x.undecided} / ${x.dead} / ${x.parked}`);
      row(`${name}: GLPI requests in all / per event / ticket searches`, `${x.requests} / ${x.requestsPerEvent.toFixed(3)} / ${x.searches}${x.perNode ? ' (the survivor\'s count)' : ''}`);
      row(`${name}: time from last event until caught up / 202 p99`, `${x.catchUp.toFixed(1)} s / ${f2(x.p99)} ms`);
      row(`${name}: bridge CPU seconds per 1,000 alerts${x.perNode ? ' (both nodes)' : ''}`, f2(x.bridgeCpu));
    };
    stormRow('storm, SQLite, 1 node', s);
    stormRow('storm, PostgreSQL, 2 nodes, b killed -9 half-way', p);
    const ok = p.tickets === FINGERPRINTS && p.distinct === FINGERPRINTS && p.unsolved === 0 && p.undecided === 0 && p.dead === 0;
    row('storm with a node killed: everything decided, one ticket per incident, none lost', ok ? 'yes' : 'NO');
    row('storm: GLPI requests per event, PostgreSQL (a node killed) / SQLite', f2(p.requestsPerEvent / s.requestsPerEvent));
  } finally {
    server.remove();
  }
}

function section(): string {
  const load1 = loadavg();
  return (
    `Last run: ${date} UTC on ${machine}; ${version} (${PG_SETTINGS.join(', ')}); GLPI fake latency ${LATENCY} ms, max_concurrency ${CONCURRENCY}; ` +
    `intake ${RATE}/s for ${INTAKE_SECONDS} s after ${WARMUP_SECONDS} s, saturation ${CONNECTIONS} connections (two nodes: split across both) for ${INTAKE_SECONDS} s, ` +
    `${ROUNDS} alternated rounds (figures: mean (each round)); storm ${STORM_EVENTS} events over ${STORM_SECONDS} s across ${FINGERPRINTS} fingerprints. ` +
    `Load average at the start: ${load0.map((x) => x.toFixed(1)).join(', ')}; at the end: ${load1.map((x) => x.toFixed(1)).join(', ')}.\n\n` +
    ['| Measure | Result |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n') +
    '\n'
  );
}
