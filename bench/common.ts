/**
 * What the benchmark's scenarios share (bench/run.ts, bench/postgres.ts): where the build is, the knobs every
 * scenario reads from the environment, and the small helpers that start the GLPI fake, run the load generator
 * (bench/load.ts) and read a daemon's CPU and metrics.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { LoadJob, LoadResult } from './load.js';

export const HERE = dirname(fileURLToPath(import.meta.url)); // dist/bench
export const DIST = join(HERE, '..');
export const ROOT = join(DIST, '..');
export const env = (name: string, d: number) => Number(process.env[name] ?? d);
export const LATENCY = env('BENCH_LATENCY_MS', 30);
export const CONCURRENCY = env('BENCH_CONCURRENCY', 8);
export const STORM_SECONDS = env('BENCH_STORM_SECONDS', 60);
export const STORM_EVENTS = env('BENCH_STORM_EVENTS', 10_000);
export const INTAKE_SECONDS = env('BENCH_INTAKE_SECONDS', 10);
export const RATE = env('BENCH_RATE', 1000);
export const WARMUP_SECONDS = env('BENCH_WARMUP_SECONDS', 5);
export const CONNECTIONS = env('BENCH_CONNECTIONS', 64);
export const FINGERPRINTS = 50;
export const TOKEN = 'bench-token-0123456789';

/**
 * The node options the daemon ships with: those of the systemd unit's ExecStart= (`npm start` has the same), so
 * the bench measures the daemon as it runs; BENCH_DAEMON_NODE_ARGS (space-separated) adds to them, e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof` or `--perf-basic-prof` to see where its time goes.
 */
export function daemonNodeArgs(): string[] {
  const unit = unitText();
  const exec = /^ExecStart=\S+ (.*?)\S*main\.js /m.exec(unit);
  if (!exec) throw new Error('systemd/zabbix-glpi-bridge.service: no ExecStart= running main.js');
  const words = (text: string) => text.split(' ').filter((a) => a !== '');
  return [...words(exec[1] ?? ''), ...words(process.env.BENCH_DAEMON_NODE_ARGS ?? '')];
}

/** The systemd unit the daemon runs under: its node options and environment are the ones measured. */
let unitCache: string | undefined;
function unitText(): string {
  unitCache ??= readFileSync(join(ROOT, 'systemd', 'zabbix-glpi-bridge.service'), 'utf8');
  return unitCache;
}

/**
 * The daemon's environment: this process's, with the C library's allocator settings the systemd unit gives it
 * (its `Environment=MALLOC_...` lines; `npm start` sets the same), so the bench measures its memory as it runs.
 */
export function daemonEnv(): NodeJS.ProcessEnv {
  const allocator = [...unitText().matchAll(/^Environment=(MALLOC_\w+)=(\S+)$/gm)].map((m) => [m[1], m[2]] as const);
  return { ...process.env, ...Object.fromEntries(allocator) };
}

/** A neighbour's process name (its comm), and the name it is counted under: PHP's binaries as one. */
const NEIGHBOUR = /^(zabbix_\w+|php|postgres|mysqld|mariadbd)/;

/**
 * Processes of the services the end-to-end tests run on (Zabbix's servers, their PHP frontends, PostgreSQL;
 * `.ci/run` leaves them running with ZGB_CI_KEEP_SERVICES=1), with how many of each, or '' when none runs. Beside
 * the bench they take cores and disk, and its figures stop comparing with a quiet machine's (they did, unnoticed,
 * in two sessions' measurements).
 */
export function neighbours(): string {
  const counts = new Map<string, number>();
  let pids: string[];
  try {
    pids = readdirSync('/proc');
  } catch {
    return ''; // not Linux: nothing to tell
  }
  for (const pid of pids) {
    if (!/^\d+$/.test(pid)) continue;
    let comm: string;
    try {
      comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      continue; // ended meanwhile
    }
    const name = NEIGHBOUR.exec(comm)?.[1];
    if (name !== undefined) counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return [...counts].map(([name, n]) => `${name} ×${n}`).join(', ');
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What differs between the benchmark's daemons: their config's other keys are those of every bench run. */
export interface DaemonConfig {
  readonly port: number;
  readonly dir: string;
  /** The GLPI fake's root URL (the config names its apirest.php). */
  readonly glpiUrl: string;
  /** The store section's lines (indented YAML). */
  readonly store: readonly string[];
  /** More lines of the glpi section (indented YAML). */
  readonly glpi?: readonly string[];
  /** More lines of the correlation section (indented YAML). */
  readonly correlation?: readonly string[];
  /** Rules file; default config/rules.example.yaml. */
  readonly rulesFile?: string;
}

/** A benchmark daemon's config (YAML): the GLPI fake's token, CONCURRENCY requests at once, the same retry and coalescing settings in every scenario. */
export function daemonConfig(c: DaemonConfig): string {
  return [
    `listen: 127.0.0.1:${c.port}`,
    `data_dir: ${c.dir}`,
    'log_level: info',
    'webhook:',
    `  token: ${TOKEN}`,
    'store:',
    ...c.store,
    'glpi:',
    `  url: ${c.glpiUrl}/apirest.php`,
    '  user_token: bench-user',
    `  max_concurrency: ${CONCURRENCY}`,
    ...(c.glpi ?? []),
    'retry:',
    '  min_delay: 200ms',
    '  max_delay: 2s',
    '  backoff_cap: 5s',
    'correlation:',
    '  coalesce_window: 2s',
    ...(c.correlation ?? []),
    `rules_file: ${c.rulesFile ?? join(ROOT, 'config', 'rules.example.yaml')}`,
  ].join('\n');
}

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface Proc {
  child: ChildProcess;
  url: string;
}

/** The GLPI fake with the benchmark's latency per request; resolves once it listens. */
export async function startGlpi(): Promise<Proc> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(DIST, 'src', 'glpi-fake', 'server.js'), String(port)], {
    env: { ...process.env, GLPI_USER_TOKEN: 'bench-user', FAKE_GLPI_LATENCY_MS: String(LATENCY) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  child.stdout!.resume();
  return { child, url: `http://127.0.0.1:${port}` };
}

export async function stop(p: Proc): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  const exited = new Promise((r) => p.child.once('exit', r));
  p.child.kill('SIGTERM');
  await exited;
}

/** One run of the load generator in its own process (it must not share a core's event loop with us). */
export async function load(job: LoadJob): Promise<LoadResult> {
  const { stdout } = await promisify(execFile)(process.execPath, [join(DIST, 'bench', 'load.js'), JSON.stringify(job)], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout) as LoadResult;
}

/** User + system CPU seconds of a process so far (0 once it is gone). */
export function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** The sum of a metric's samples whose labels include `labels`, from Prometheus text. */
export function sumMetric(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{[^}]*\})? ([0-9.eE+-]+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    if (Object.entries(labels).every(([k, v]) => (m[2] ?? '').includes(`${k}="${v}"`))) total += Number(m[3]);
  }
  return total;
}

export async function metricsText(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

export interface GlpiState {
  tickets: { id: number; name: string; status: number }[];
  requests: number;
}

export async function glpiState(url: string): Promise<GlpiState> {
  return (await (await fetch(`${url}/_fake/state`)).json()) as GlpiState;
}
