/**
 * npm run bench: the real daemon (built, embedded SQLite store, real HTTP)
 * against the GLPI fake with a latency per request, load from a separate
 * process over loopback. Prints one table and writes bench/last-results.md.
 *
 * Options (environment): BENCH_LATENCY_MS (30), BENCH_CONCURRENCY (8),
 * BENCH_STORM_SECONDS (60), BENCH_STORM_EVENTS (10000), BENCH_OUTAGE_SECONDS (30),
 * BENCH_INTAKE_SECONDS (10), BENCH_RATE (1000), BENCH_WARMUP_SECONDS (5), BENCH_CONNECTIONS (64).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { LoadJob, LoadResult } from './load.js';

const HERE = dirname(fileURLToPath(import.meta.url)); // dist/bench
const DIST = join(HERE, '..');
const ROOT = join(DIST, '..');
const env = (name: string, d: number) => Number(process.env[name] ?? d);
const LATENCY = env('BENCH_LATENCY_MS', 30);
const CONCURRENCY = env('BENCH_CONCURRENCY', 8);
const STORM_SECONDS = env('BENCH_STORM_SECONDS', 60);
const STORM_EVENTS = env('BENCH_STORM_EVENTS', 10_000);
const OUTAGE_SECONDS = env('BENCH_OUTAGE_SECONDS', 30);
const INTAKE_SECONDS = env('BENCH_INTAKE_SECONDS', 10);
const RATE = env('BENCH_RATE', 1000);
const WARMUP_SECONDS = env('BENCH_WARMUP_SECONDS', 5);
const CONNECTIONS = env('BENCH_CONNECTIONS', 64);
const FINGERPRINTS = 50;
const TOKEN = 'bench-token-0123456789';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface Proc {
  child: ChildProcess;
  url: string;
}

async function startGlpi(): Promise<Proc> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(DIST, 'src', 'glpi-fake', 'server.js'), String(port)], {
    env: { ...process.env, GLPI_USER_TOKEN: 'bench-user', FAKE_GLPI_LATENCY_MS: String(LATENCY) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  return { child, url: `http://127.0.0.1:${port}` };
}

async function startDaemon(glpiUrl: string): Promise<Proc & { dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'zgb-bench-'));
  const port = await freePort();
  const config = join(dir, 'bridge.yaml');
  writeFileSync(
    config,
    [
      `listen: 127.0.0.1:${port}`,
      `data_dir: ${dir}`,
      'log_level: info',
      'webhook:',
      `  token: ${TOKEN}`,
      'store:',
      '  synchronous: full',
      'glpi:',
      `  url: ${glpiUrl}/apirest.php`,
      '  user_token: bench-user',
      `  max_concurrency: ${CONCURRENCY}`,
      'retry:',
      '  min_delay: 200ms',
      '  max_delay: 2s',
      '  backoff_cap: 5s',
      'correlation:',
      '  coalesce_window: 2s',
      `rules_file: ${join(ROOT, 'config', 'rules.example.yaml')}`,
    ].join('\n'),
  );
  // Logs go where an operator's would (a pipe), and are drained.
  const child = spawn(process.execPath, [join(DIST, 'src', 'main.js'), 'run', '--config', config], { stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout!.resume();
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) return { child, url, dir };
    } catch {
      await sleep(50);
    }
  }
  throw new Error('daemon did not start');
}

async function stop(p: Proc): Promise<void> {
  if (p.child.exitCode !== null) return;
  p.child.kill('SIGTERM');
  await new Promise((r) => p.child.once('exit', r));
}

async function load(job: LoadJob): Promise<LoadResult> {
  const { stdout } = await promisify(execFile)(process.execPath, [join(DIST, 'bench', 'load.js'), JSON.stringify(job)], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout) as LoadResult;
}

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Math.round(Number(m?.[1] ?? 0) / 1024);
}

async function metric(url: string, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(pattern.exec(text)?.[1] ?? 0);
}

async function backlog(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const n = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
  return n(/^zgb_queue_depth\{state="pending"\} (\d+)/m) + n(/^zgb_queue_depth\{state="running"\} (\d+)/m) + n(/^zgb_inbox_depth (\d+)/m);
}

async function caughtUp(url: string): Promise<number> {
  const started = Date.now();
  while ((await backlog(url)) > 0) await sleep(100);
  return (Date.now() - started) / 1000;
}

interface GlpiState {
  tickets: { id: number; name: string; status: number }[];
  requests: number;
}

async function glpiState(url: string): Promise<GlpiState> {
  return (await (await fetch(`${url}/_fake/state`)).json()) as GlpiState;
}

async function faults(url: string, f: Record<string, unknown>): Promise<void> {
  await fetch(`${url}/_fake/faults`, { method: 'POST', body: JSON.stringify(f) });
}

const rows: [string, string][] = [];
const row = (k: string, v: string) => {
  rows.push([k, v]);
  process.stdout.write(`  ${k.padEnd(52)} ${v}\n`);
};

async function intake(): Promise<void> {
  const glpi = await startGlpi();
  const d = await startDaemon(glpi.url);
  try {
    const cpu0 = cpuSeconds(d.child.pid!);
    const fixed = await load({ mode: 'rate', url: `${d.url}/zabbix/webhook`, token: TOKEN, rate: RATE, seconds: INTAKE_SECONDS, firstEventId: 1, warmupSeconds: WARMUP_SECONDS });
    row(`intake at ${RATE}/s: accepted/s (after ${WARMUP_SECONDS} s of warm-up)`, `${(fixed.accepted / fixed.seconds).toFixed(0)} (${fixed.failed} failed)`);
    row(`intake at ${RATE}/s: 202 latency p50 / p99 / max`, `${fixed.latenciesMs.p50.toFixed(2)} / ${fixed.latenciesMs.p99.toFixed(2)} / ${fixed.latenciesMs.max.toFixed(1)} ms`);
    const sat = await load({ mode: 'saturate', url: `${d.url}/zabbix/webhook`, token: TOKEN, connections: CONNECTIONS, seconds: INTAKE_SECONDS, firstEventId: 10_000_000 });
    row(`intake at saturation (${CONNECTIONS} connections): accepted/s`, `${(sat.accepted / sat.seconds).toFixed(0)} (${sat.failed} failed)`);
    row('intake at saturation: 202 latency p50 / p99 / max', `${sat.latenciesMs.p50.toFixed(2)} / ${sat.latenciesMs.p99.toFixed(2)} / ${sat.latenciesMs.max.toFixed(1)} ms`);
    // Decisions and GLPI work lag behind a saturating intake: count their CPU too.
    const catchUp = await caughtUp(d.url);
    row('intake at saturation: decisions and GLPI caught up after the load', `${catchUp.toFixed(1)} s`);
    const cpu = cpuSeconds(d.child.pid!) - cpu0;
    const alerts = fixed.accepted + RATE * WARMUP_SECONDS + sat.accepted;
    row('intake: daemon CPU seconds per 1,000 alerts (all work, caught up)', (cpu / (alerts / 1000)).toFixed(3));
    row('intake: daemon peak RSS', `${peakRssMb(d.child.pid!)} MB`);
  } finally {
    await stop(d);
    await stop(glpi);
    rmSync(d.dir, { recursive: true, force: true });
  }
}

async function stormRun(outage: boolean): Promise<void> {
  const glpi = await startGlpi();
  const d = await startDaemon(glpi.url);
  const label = outage ? `storm + GLPI down ${OUTAGE_SECONDS} s` : 'storm';
  try {
    const cpu0 = cpuSeconds(d.child.pid!);
    let maxBacklog = 0;
    let outageStarted = 0;
    let outageEnded = 0;
    let baseline = 0; // largest backlog before the outage: the storm's normal level
    let drainedAt = 0;
    const sampler = setInterval(
      () =>
        void backlog(d.url).then(
          (b) => {
            maxBacklog = Math.max(maxBacklog, b);
            if (outageStarted === 0) baseline = Math.max(baseline, b);
            if (outageEnded > 0 && drainedAt === 0 && b <= baseline) drainedAt = Date.now();
          },
          () => undefined,
        ),
      250,
    );
    const outageTimer = outage
      ? (async () => {
          await sleep(Math.max(0, (STORM_SECONDS - OUTAGE_SECONDS) / 2) * 1000);
          await faults(glpi.url, { mode: 'unavailable' });
          outageStarted = Date.now();
          await sleep(OUTAGE_SECONDS * 1000);
          await faults(glpi.url, { mode: 'up' });
          outageEnded = Date.now();
        })()
      : Promise.resolve();
    const result = await load({ mode: 'storm', url: `${d.url}/zabbix/webhook`, token: TOKEN, fingerprints: FINGERPRINTS, events: STORM_EVENTS, seconds: STORM_SECONDS, firstEventId: 1 });
    await outageTimer;
    const lastEvent = Date.now();
    const catchUp = await caughtUp(d.url);
    clearInterval(sampler);
    const state = await glpiState(glpi.url);
    const names = new Set(state.tickets.map((t) => t.name));
    const duplicates = state.tickets.length - names.size;
    const lost = FINGERPRINTS - names.size;
    const unsolved = state.tickets.filter((t) => t.status !== 5).length;
    const cpu = cpuSeconds(d.child.pid!) - cpu0;
    row(`${label}: events sent / accepted`, `${result.sent} / ${result.accepted} in ${result.seconds.toFixed(0)} s`);
    row(`${label}: tickets expected / created`, `${FINGERPRINTS} / ${state.tickets.length} (duplicates ${duplicates}, lost ${lost}, not solved at the end ${unsolved})`);
    row(`${label}: GLPI requests in all / per event`, `${state.requests} / ${(state.requests / result.accepted).toFixed(3)}`);
    if (outage) {
      row(`${label}: largest backlog (alerts + jobs)`, String(maxBacklog));
      row(`${label}: backlog back to the storm's normal level after GLPI came back`, `${(((drainedAt || lastEvent + catchUp * 1000) - outageEnded) / 1000).toFixed(1)} s (normal level ${baseline})`);
      row(`${label}: time from last event until GLPI caught up`, `${catchUp.toFixed(1)} s`);
    } else {
      row(`${label}: time from last event until GLPI caught up`, `${catchUp.toFixed(1)} s`);
    }
    row(`${label}: 202 latency p50 / p99 / max`, `${result.latenciesMs.p50.toFixed(2)} / ${result.latenciesMs.p99.toFixed(2)} / ${result.latenciesMs.max.toFixed(1)} ms`);
    row(`${label}: daemon CPU seconds per 1,000 alerts`, (cpu / (result.accepted / 1000)).toFixed(3));
    row(`${label}: daemon peak RSS`, `${peakRssMb(d.child.pid!)} MB`);
    void metric;
  } finally {
    await stop(d);
    await stop(glpi);
    rmSync(d.dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const machine = `${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), Node ${process.version}, ${process.platform}`;
  const date = new Date().toISOString().slice(0, 10);
  process.stdout.write(`zabbix-glpi-bridge benchmark — ${date}\nmachine: ${machine}\nGLPI fake latency ${LATENCY} ms per request, max_concurrency ${CONCURRENCY}, store synchronous=full\n\n`);
  await intake();
  await stormRun(false);
  await stormRun(true);
  const table = ['| Measure | Result |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n');
  writeFileSync(
    join(ROOT, 'bench', 'last-results.md'),
    `Last run: ${date} on ${machine}; GLPI fake latency ${LATENCY} ms, max_concurrency ${CONCURRENCY}, storm ${STORM_EVENTS} events over ${STORM_SECONDS} s across ${FINGERPRINTS} fingerprints.\n\n${table}\n`,
  );
  process.stdout.write('\nwritten to bench/last-results.md\n');
}

void main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
