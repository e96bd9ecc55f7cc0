/**
 * npm run bench: the real daemon (built, embedded SQLite store, real HTTP)
 * against the GLPI fake with a latency per request, load from a separate
 * process over loopback. Prints one table and writes it into
 * bench/last-results.md (each scenario replaces its own section there).
 *
 * Scenarios: none given = intake, storm, storm with a GLPI outage, hostile text, restart (about 6
 * minutes); `npm run bench -- intake` = the intake alone, next to the bare ceiling
 * (bench/ceiling.ts) run alternately in the same run; `npm run bench -- storm` = the storm alone, then the same
 * storm against the ceiling; `npm run bench -- restart` = startup, and draining an inbox a kill -9 left full
 * (BENCH_RESTART_ALERTS, 100000); `npm run bench -- longrun` = the long run alone (minutes: see
 * longrun() below); `npm run bench -- hostile` = the hostile-text ratio alone (BENCH_HOSTILE_ALERTS, 300).
 * `npm run bench -- postgres` = PostgreSQL, one and two nodes, against SQLite (bench/postgres.ts; not in the default run).
 *
 * Options (environment): BENCH_LATENCY_MS (30), BENCH_CONCURRENCY (8),
 * BENCH_STORM_SECONDS (60), BENCH_STORM_EVENTS (10000), BENCH_STORM_WARMUP_SECONDS (10), BENCH_OUTAGE_SECONDS (30),
 * BENCH_INTAKE_SECONDS (10), BENCH_RATE (1000), BENCH_WARMUP_SECONDS (5), BENCH_CONNECTIONS (64).
 * Long run (environment or flag): BENCH_LONGRUN_ALERTS / --alerts (1000000),
 * BENCH_LONGRUN_FINGERPRINTS / --fingerprints (alerts / 5), BENCH_LONGRUN_STEPS / --steps (10),
 * BENCH_LONGRUN_OPEN / --open (2000 problems open at a time), BENCH_LONGRUN_CONNECTIONS (16),
 * BENCH_LONGRUN_REOPEN_WINDOW (15s), BENCH_LONGRUN_RETENTION (20s), BENCH_LONGRUN_LATENCY_MS (0),
 * BENCH_LONGRUN_SEED (1).
 */
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { body as benchBody, type LoadJob, type LoadResult, type LongrunResult } from './load.js';
import { CONCURRENCY, CONNECTIONS, cpuSeconds, daemonConfig, daemonEnv, daemonNodeArgs, DIST, env, FINGERPRINTS, freePort, glpiState, HERE, INTAKE_SECONDS, LATENCY, load, metricsText, neighbours, type Proc, RATE, ROOT, sleep, startGlpi, stop, STORM_EVENTS, STORM_SECONDS, sumMetric, TOKEN, WARMUP_SECONDS } from './common.js';

const OUTAGE_SECONDS = env('BENCH_OUTAGE_SECONDS', 30);
/** The storm's uncounted warm-up on other hosts (see stormRun). */
const STORM_WARMUP_SECONDS = env('BENCH_STORM_WARMUP_SECONDS', 10);
/** The daemon's node options: the systemd unit's, and BENCH_DAEMON_NODE_ARGS (common.ts). */
const DAEMON_NODE_ARGS = daemonNodeArgs();
/**
 * How often the bench scrapes /metrics while load runs (backlog, heaps). Each scrape gathers both threads' metrics and
 * is charged to the daemon's CPU; every 250-500 ms it was 5-10 % of the main thread's CPU in a storm (issue 16's
 * profile), where Prometheus scrapes every 15 s or more. A second still times the backlog's return to normal.
 */
const SCRAPE_EVERY_MS = 1_000;
/** File the daemon's log lines are appended to (BENCH_DAEMON_LOG); unset: they are read and dropped. */
const DAEMON_LOG = process.env.BENCH_DAEMON_LOG;

/** Extra keys of the store and correlation sections (indented YAML lines). */
interface DaemonTuning {
  readonly store?: readonly string[];
  readonly correlation?: readonly string[];
  /** Rules file; default config/rules.example.yaml. */
  readonly rulesFile?: string;
}

/** A started daemon: its data folder, and how long from spawning it until /healthz answered (webhooks are taken from then on). */
interface Daemon extends Proc {
  readonly dir: string;
  readonly startupMs: number;
}

async function startDaemon(glpiUrl: string, tuning: DaemonTuning & { dir?: string } = {}): Promise<Daemon> {
  const dir = tuning.dir ?? mkdtempSync(join(tmpdir(), 'zgb-bench-'));
  const port = await freePort();
  const config = join(dir, 'bridge.yaml');
  writeFileSync(config, daemonConfig({ port, dir, glpiUrl, store: ['  synchronous: full', ...(tuning.store ?? [])], correlation: tuning.correlation, rulesFile: tuning.rulesFile }));
  // Logs go where an operator's would (a pipe), and are drained (into BENCH_DAEMON_LOG when set: the daemon's whole log, appended).
  const started = performance.now();
  const child = spawn(process.execPath, [...DAEMON_NODE_ARGS, join(DIST, 'bridge', 'main.js'), 'run', '--config', config], { stdio: ['ignore', 'pipe', 'inherit'], env: daemonEnv() });
  if (DAEMON_LOG) child.stdout!.pipe(createWriteStream(DAEMON_LOG, { flags: 'a' }));
  else child.stdout!.resume();
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 3000; i++) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) return { child, url, dir, startupMs: performance.now() - started };
    } catch {
      await sleep(10);
    }
  }
  throw new Error('daemon did not start');
}

/** utime + stime of a process, in seconds. */

/**
 * CPU seconds of a process by thread: the main thread (HTTP intake), the processing thread (decisions, GLPI;
 * the one thread the daemon runs at nice 19) and the others (libuv's pool running the inbox's fdatasync, V8's
 * garbage collection and compiler threads).
 */
function threadCpu(pid: number): { main: number; processing: number; other: number } {
  const out = { main: 0, processing: 0, other: 0 };
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const f = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      const cpu = (Number(f[11]) + Number(f[12])) / 100;
      if (tid === String(pid)) out.main += cpu;
      else if (Number(f[16]) === 19) out.processing += cpu;
      else out.other += cpu;
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
}

function cpuSplit(before: ReturnType<typeof threadCpu>, after: ReturnType<typeof threadCpu>, alerts: number): string {
  const per = (k: keyof typeof before) => ((after[k] - before[k]) / (alerts / 1000)).toFixed(3);
  return `main ${per('main')}, processing ${per('processing')}, other threads ${per('other')}`;
}

/** Largest V8 heap of each thread (zgb_thread_heap_bytes) seen by the samples, in MB. */
class HeapPeaks {
  main = { used: 0, total: 0 };
  processing = { used: 0, total: 0 };
  sample(text: string): void {
    for (const m of text.matchAll(/^zgb_thread_heap_bytes\{thread="(main|processing)",state="(used|total)"\} ([0-9.eE+]+)$/gm)) {
      const t = this[m[1] as 'main' | 'processing'];
      const k = m[2] as 'used' | 'total';
      t[k] = Math.max(t[k], Number(m[3]) / 1_048_576);
    }
  }
  toString(): string {
    const f = (x: { used: number; total: number }) => `${x.used.toFixed(0)} / ${x.total.toFixed(0)}`;
    return `main ${f(this.main)}, processing ${f(this.processing)} MB`;
  }
}

function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Math.round(Number(m?.[1] ?? 0) / 1024);
}

/** Sum of a metric's samples whose labels contain every given label (none: all samples). */

/** A counter's samples by one label (e.g. GLPI requests by operation). */
function byLabel(text: string, name: string, label: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}\\{[^}]*${label}="([^"]*)"[^}]*\\} ([0-9.eE+-]+)$`).exec(line);
    if (m) out.set(m[1]!, (out.get(m[1]!) ?? 0) + Number(m[2]));
  }
  return out;
}

async function backlog(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const n = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
  return n(/^zgb_queue_depth\{state="pending"\} (\d+)/m) + n(/^zgb_queue_depth\{state="running"\} (\d+)/m) + n(/^zgb_inbox_depth (\d+)/m);
}

/** backlog(), and the threads' heaps from the same scrape. */
async function backlogAndHeaps(url: string, heaps: HeapPeaks): Promise<number> {
  const text = await metricsText(url);
  heaps.sample(text);
  const n = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
  return n(/^zgb_queue_depth\{state="pending"\} (\d+)/m) + n(/^zgb_queue_depth\{state="running"\} (\d+)/m) + n(/^zgb_inbox_depth (\d+)/m);
}

async function caughtUp(url: string): Promise<number> {
  const started = Date.now();
  // Every scrape costs the daemon (both threads gather their metrics): often enough to time, not to weigh.
  while ((await backlog(url)) > 0) await sleep(250);
  return (Date.now() - started) / 1000;
}

async function faults(url: string, f: Record<string, unknown>): Promise<void> {
  await fetch(`${url}/_fake/faults`, { method: 'POST', body: JSON.stringify(f) });
}

const rows: [string, string][] = [];
const row = (k: string, v: string) => {
  rows.push([k, v]);
  process.stdout.write(`  ${k.padEnd(52)} ${v}\n`);
};

/**
 * BENCH_CEILING=checked: the ceiling also checks the body's fields and deduplicates by delivery key (bench/ceiling.ts
 * says what it does); the figures are then read against that one. Unset: the bare ceiling issue 16 states its goals against.
 */
const CEILING_CHECKED = process.env.BENCH_CEILING === 'checked';
if (process.env.BENCH_CEILING !== undefined && !CEILING_CHECKED) throw new Error(`BENCH_CEILING="${process.env.BENCH_CEILING}": the only other ceiling is "checked"`);

/** The bare intake (bench/ceiling.ts): the least a correct intake must do, on this machine, in this run. */
async function startCeiling(): Promise<Proc & { dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'zgb-ceiling-'));
  const port = await freePort();
  const child = spawn(process.execPath, [join(DIST, 'bench', 'ceiling.js'), String(port), dir, TOKEN, ...(CEILING_CHECKED ? ['checked'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  return { child, url: `http://127.0.0.1:${port}`, dir };
}

/** Daemon rounds of the intake (BENCH_INTAKE_ROUNDS), alternated with the ceiling's: ceiling, daemon, ceiling, …, ceiling. */
const INTAKE_ROUNDS = Math.max(1, env('BENCH_INTAKE_ROUNDS', 3));

/** Cores in use during a saturation (CPU seconds per second of it: 1 = a whole core), by thread, and the load generator's. */
interface Busy {
  readonly main: number;
  readonly processing: number;
  readonly other: number;
  readonly load: number;
}

interface IntakeFigures {
  readonly rate: LoadResult;
  readonly saturation: LoadResult;
  readonly cpuSeconds: number;
  /** Alerts accepted in the round, warm-up included. */
  readonly alerts: number;
  readonly peakRssMb: number;
  /** Cores busy at saturation. */
  readonly busy: Busy;
  /** Cores busy at the fixed rate, warm-up included: what runs beside the intake while its p99 is measured. */
  readonly rateBusy: Busy;
  /** Daemon only: alerts decided per second during the saturation (intake first holds decisions back meanwhile). */
  readonly decidedPerSecond?: number;
}

/**
 * One round of the intake measures against a server at `url` (the daemon's webhook or the ceiling); `daemonUrl`:
 * the daemon's listener, whose decisions during the saturation are counted.
 */
async function intakeRound(url: string, pid: number, firstEventId: number, daemonUrl?: string): Promise<IntakeFigures> {
  const cpu0 = cpuSeconds(pid);
  const measured = async (run: () => Promise<LoadResult>): Promise<{ result: LoadResult; busy: Busy }> => {
    const t0 = threadCpu(pid);
    const wall0 = performance.now();
    const result = await run();
    const wall = (performance.now() - wall0) / 1000;
    const t1 = threadCpu(pid);
    return { result, busy: { main: (t1.main - t0.main) / wall, processing: (t1.processing - t0.processing) / wall, other: (t1.other - t0.other) / wall, load: (result.loadCpuSeconds ?? 0) / wall } };
  };
  const rate = await measured(() => load({ mode: 'rate', url, token: TOKEN, rate: RATE, seconds: INTAKE_SECONDS, firstEventId, warmupSeconds: WARMUP_SECONDS }));
  const decided = async () => (daemonUrl === undefined ? 0 : sumMetric(await bothThreadsMetrics(daemonUrl), 'zgb_decisions_total'));
  const decided0 = await decided();
  const saturation = await measured(() => load({ mode: 'saturate', url, token: TOKEN, connections: CONNECTIONS, seconds: INTAKE_SECONDS, firstEventId: firstEventId + 5_000_000 }));
  const decidedPerSecond = daemonUrl === undefined ? undefined : (await decided() - decided0) / saturation.result.seconds;
  const alerts = rate.result.accepted + RATE * WARMUP_SECONDS + saturation.result.accepted;
  return { rate: rate.result, saturation: saturation.result, cpuSeconds: cpuSeconds(pid) - cpu0, alerts, peakRssMb: peakRssMb(pid), busy: saturation.busy, rateBusy: rate.busy, ...(decidedPerSecond === undefined ? {} : { decidedPerSecond }) };
}

const perSecond = (r: LoadResult) => r.accepted / r.seconds;
const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const pct = (x: number) => `${(x * 100).toFixed(0)} %`;
/** "median [lowest–highest] of n" of a list of figures. */
const spread = (xs: readonly number[], f: (x: number) => string) => (xs.length === 1 ? f(xs[0]!) : `${f(median(xs))} [${f(Math.min(...xs))}–${f(Math.max(...xs))}, ${xs.length} rounds]`);
const busyText = (b: Busy, processing: boolean) =>
  `main ${b.main.toFixed(2)}${processing ? `, processing ${b.processing.toFixed(2)}` : ''}, other threads ${b.other.toFixed(2)}; load generator ${b.load.toFixed(2)}`;
const medianBusy = (fs: readonly IntakeFigures[], at: 'busy' | 'rateBusy' = 'busy'): Busy => ({
  main: median(fs.map((f) => f[at].main)),
  processing: median(fs.map((f) => f[at].processing)),
  other: median(fs.map((f) => f[at].other)),
  load: median(fs.map((f) => f[at].load)),
});

/**
 * The intake against the bare ceiling, alternated on the same machine in the same run: a ratio carries from
 * machine to machine, an absolute figure does not, and one pair of rounds does not either (the ceiling's own p99
 * moves several times over from run to run). Each daemon round is read against the mean of the two ceiling
 * rounds around it; the table gives the median of those ratios and their range. One daemon process serves every
 * round, warm, as in service; its decisions and GLPI work catch up before the next ceiling round starts.
 */
async function intake(): Promise<void> {
  const glpi = await startGlpi();
  const ceilings: IntakeFigures[] = [];
  const ceilingRound = async () => {
    const c = await startCeiling();
    try {
      ceilings.push(await intakeRound(c.url, c.child.pid!, 100_000_000 + ceilings.length * 10_000_000));
    } finally {
      await stop(c);
      rmSync(c.dir, { recursive: true, force: true });
    }
  };
  await ceilingRound();
  const d = await startDaemon(glpi.url);
  const heaps = new HeapPeaks();
  const heapSampler = setInterval(() => void metricsText(d.url).then((t) => heaps.sample(t), () => undefined), SCRAPE_EVERY_MS);
  try {
    const cpu0 = cpuSeconds(d.child.pid!);
    const threads0 = threadCpu(d.child.pid!);
    const rounds: IntakeFigures[] = [];
    const catchUps: number[] = [];
    for (let r = 0; r < INTAKE_ROUNDS; r++) {
      rounds.push(await intakeRound(`${d.url}/zabbix/webhook`, d.child.pid!, 1 + r * 10_000_000, d.url));
      // Decisions and GLPI work lag behind a saturating intake; they finish before the ceiling's round (they would
      // take its cores), and their CPU is counted below.
      catchUps.push(await caughtUp(d.url));
      await ceilingRound();
    }
    const around = (r: number, pick: (f: IntakeFigures) => number) => (pick(ceilings[r]!) + pick(ceilings[r + 1]!)) / 2;
    const sat = (f: IntakeFigures) => perSecond(f.saturation);
    const p99 = (f: IntakeFigures) => f.rate.latenciesMs.p99;
    const satShares = rounds.map((f, r) => sat(f) / around(r, sat));
    const p99Ratios = rounds.map((f, r) => p99(f) / Math.max(around(r, p99), 0.001));
    const list = (fs: readonly IntakeFigures[], pick: (f: IntakeFigures) => number, digits: number) => fs.map((f) => pick(f).toFixed(digits)).join(', ');
    const failed = (fs: readonly IntakeFigures[]) => fs.reduce((n, f) => n + f.rate.failed + f.saturation.failed, 0);
    if (CEILING_CHECKED) row('intake: the ceiling (BENCH_CEILING=checked)', 'checks the fields and deduplicates by delivery key, as the daemon must (bench/ceiling.ts)');
    row(`intake at ${RATE}/s: accepted/s by round (after ${WARMUP_SECONDS} s of warm-up)`, `${list(rounds, (f) => perSecond(f.rate), 0)} (${failed(rounds)} failed in all rounds)`);
    row(`intake at ${RATE}/s: 202 latency p50 / p99 / max, daemon by round`, rounds.map((f) => `${f.rate.latenciesMs.p50.toFixed(2)} / ${f.rate.latenciesMs.p99.toFixed(2)} / ${f.rate.latenciesMs.max.toFixed(1)}`).join('; ') + ' ms');
    row(`intake at ${RATE}/s: p99 of the ceiling by round`, `${list(ceilings, p99, 2)} ms`);
    row(`intake at ${RATE}/s: daemon's p99 ÷ the ceiling's around it (goal ≤ 1.5 ×)`, spread(p99Ratios, (x) => `${x.toFixed(2)} ×`));
    // Beside the intake at this rate the daemon decides every alert and calls GLPI (and here the GLPI fake answers on
    // the same cores): with decisions off its p99 is the ceiling's (docs/performance-log.md, "The sixth sitting").
    row(`intake at ${RATE}/s: cores busy, daemon / ceiling (median of rounds)`, `${busyText(medianBusy(rounds, 'rateBusy'), true)} / ${busyText(medianBusy(ceilings, 'rateBusy'), false)}`);
    row(`intake at saturation (${CONNECTIONS} connections): accepted/s, daemon by round`, list(rounds, sat, 0));
    row('intake at saturation: accepted/s, ceiling by round', list(ceilings, sat, 0));
    row('intake at saturation: daemon as a share of the ceiling around it (goal ≥ 85 %)', spread(satShares, pct));
    row('intake at saturation: daemon 202 latency p50 / p99 / max, by round', rounds.map((f) => `${f.saturation.latenciesMs.p50.toFixed(2)} / ${f.saturation.latenciesMs.p99.toFixed(2)} / ${f.saturation.latenciesMs.max.toFixed(1)}`).join('; ') + ' ms');
    // What limits it: on 2 cores the load generator, the server's threads and (for the daemon) the GLPI fake share them.
    row('intake at saturation: cores busy, daemon (median of rounds)', busyText(medianBusy(rounds), true));
    row('intake at saturation: cores busy, ceiling (median of rounds)', busyText(medianBusy(ceilings), false));
    // Intake first (services/processor.ts): while Zabbix queues, one batch of up to 512 a second is decided, no more.
    row('intake at saturation: alerts decided per second meanwhile, daemon by round (held back: up to 512)', list(rounds, (f) => f.decidedPerSecond ?? 0, 0));
    row('intake at saturation: decisions and GLPI caught up after the load', spread(catchUps, (x) => `${x.toFixed(1)} s`));
    const cpu = cpuSeconds(d.child.pid!) - cpu0;
    const alerts = rounds.reduce((n, f) => n + f.alerts, 0);
    const ceilingCpu = ceilings.reduce((n, f) => n + f.cpuSeconds, 0) / (ceilings.reduce((n, f) => n + f.alerts, 0) / 1000);
    row('intake: CPU seconds per 1,000 alerts, daemon (all work, caught up) / ceiling', `${(cpu / (alerts / 1000)).toFixed(3)} / ${ceilingCpu.toFixed(3)}`);
    row('intake: daemon CPU seconds per 1,000 alerts by thread', cpuSplit(threads0, threadCpu(d.child.pid!), alerts));
    row('intake: peak RSS, daemon / ceiling', `${peakRssMb(d.child.pid!)} / ${Math.max(...ceilings.map((f) => f.peakRssMb))} MB`);
    row('intake: daemon peak V8 heap used / reserved, by thread', heaps.toString());
    row('startup: process start until webhooks are taken (/healthz answers), fresh store', `${d.startupMs.toFixed(0)} ms`);
  } finally {
    clearInterval(heapSampler);
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
    // A daemon meets a storm warm: the same paths have run for hours. A fresh process spends its first seconds of
    // load compiling them (V8's optimising compiler on its own threads: a fifth of a cold storm's CPU in perf), so
    // the same storm on other hosts runs first, uncounted (its tickets, requests and CPU are left out below).
    const warmup = STORM_WARMUP_SECONDS > 0 ? await warmUp(d.url, glpi.url) : { requests: 0, ops: new Map<string, number>() };
    const cpu0 = cpuSeconds(d.child.pid!);
    const threads0 = threadCpu(d.child.pid!);
    const heaps = new HeapPeaks();
    let maxBacklog = 0;
    let outageStarted = 0;
    let outageEnded = 0;
    let baseline = 0; // largest backlog before the outage: the storm's normal level
    let drainedAt = 0;
    const sampler = setInterval(
      () =>
        void backlogAndHeaps(d.url, heaps).then(
          (b) => {
            maxBacklog = Math.max(maxBacklog, b);
            if (outageStarted === 0) baseline = Math.max(baseline, b);
            if (outageEnded > 0 && drainedAt === 0 && b <= baseline) drainedAt = Date.now();
          },
          () => undefined,
        ),
      SCRAPE_EVERY_MS,
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
    const m = await metricsText(d.url);
    const tickets = state.tickets.filter((t) => !t.name.includes(WARMUP_HOSTS));
    const names = new Set(tickets.map((t) => t.name));
    const duplicates = tickets.length - names.size;
    const lost = FINGERPRINTS - names.size;
    const unsolved = tickets.filter((t) => t.status !== 5).length;
    const cpu = cpuSeconds(d.child.pid!) - cpu0;
    row(`${label}: events sent / accepted`, `${result.sent} / ${result.accepted} in ${result.seconds.toFixed(0)} s`);
    row(`${label}: tickets expected / created`, `${FINGERPRINTS} / ${tickets.length} (duplicates ${duplicates}, lost ${lost}, not solved at the end ${unsolved})`);
    // What each ticket costs GLPI: every request the fake answered (failed ones too), and the bridge's own count by operation.
    const opened = tickets.length;
    const ops = byLabel(m, 'zgb_glpi_requests_total', 'operation');
    for (const [op, n] of warmup.ops) ops.set(op, (ops.get(op) ?? 0) - n);
    for (const [op, n] of ops) if (n <= 0) ops.delete(op);
    const searches = ops.get('searchTicket') ?? 0;
    const requests = state.requests - warmup.requests;
    const perTicket = opened > 0 ? (requests / opened).toFixed(2) : 'n/a';
    row(`${label}: GLPI requests in all / per event / per ticket opened`, `${requests} / ${(requests / result.accepted).toFixed(3)} / ${perTicket}`);
    row(`${label}: GLPI ticket searches (marker look-ups) / per ticket opened`, `${searches} / ${opened > 0 ? (searches / opened).toFixed(2) : 'n/a'}`);
    row(
      `${label}: GLPI requests by operation (the bridge's count)`,
      [...ops.entries()]
        .sort((a, b) => b[1] - a[1])
        .map(([op, n]) => `${op} ${n}`)
        .join(', '),
    );
    if (outage) {
      row(`${label}: largest backlog (alerts + jobs)`, String(maxBacklog));
      row(`${label}: backlog back to the storm's normal level after GLPI came back`, `${(((drainedAt || lastEvent + catchUp * 1000) - outageEnded) / 1000).toFixed(1)} s (normal level ${baseline})`);
      row(`${label}: time from last event until GLPI caught up`, `${catchUp.toFixed(1)} s`);
    } else {
      row(`${label}: time from last event until GLPI caught up`, `${catchUp.toFixed(1)} s`);
    }
    row(`${label}: 202 latency p50 / p99 / max`, `${result.latenciesMs.p50.toFixed(2)} / ${result.latenciesMs.p99.toFixed(2)} / ${result.latenciesMs.max.toFixed(1)} ms`);
    row(`${label}: daemon CPU seconds per 1,000 alerts`, (cpu / (result.accepted / 1000)).toFixed(3));
    row(`${label}: daemon CPU seconds per 1,000 alerts by thread`, cpuSplit(threads0, threadCpu(d.child.pid!), result.accepted));
    row(`${label}: daemon peak RSS`, `${peakRssMb(d.child.pid!)} MB`);
    row(`${label}: daemon peak V8 heap used / reserved, by thread`, heaps.toString());
  } finally {
    await stop(d);
    await stop(glpi);
    rmSync(d.dir, { recursive: true, force: true });
  }
  if (!outage) await stormCeiling();
}

/** Hosts of the warm-up storm (their fingerprints are not the measured storm's). */
const WARMUP_HOSTS = 'warmup-';

/** The storm's load on other hosts for STORM_WARMUP_SECONDS, until caught up: GLPI's request counts after it. */
async function warmUp(url: string, glpiUrl: string): Promise<{ requests: number; ops: Map<string, number> }> {
  const events = Math.round((STORM_EVENTS / STORM_SECONDS) * STORM_WARMUP_SECONDS);
  await load({ mode: 'storm', url: `${url}/zabbix/webhook`, token: TOKEN, fingerprints: FINGERPRINTS, events, seconds: STORM_WARMUP_SECONDS, firstEventId: 50_000_000, hostPrefix: WARMUP_HOSTS });
  await caughtUp(url);
  return { requests: (await glpiState(glpiUrl)).requests, ops: byLabel(await metricsText(url), 'zgb_glpi_requests_total', 'operation') };
}

/**
 * The same storm against the bare ceiling (bench/ceiling.ts), after the daemon's: what answering and storing
 * the storm's webhooks costs at least on this machine today, to read the daemon's figures against.
 */
async function stormCeiling(): Promise<void> {
  const c = await startCeiling();
  try {
    // Warmed up the same way as the daemon.
    if (STORM_WARMUP_SECONDS > 0) {
      const events = Math.round((STORM_EVENTS / STORM_SECONDS) * STORM_WARMUP_SECONDS);
      await load({ mode: 'storm', url: `${c.url}/zabbix/webhook`, token: TOKEN, fingerprints: FINGERPRINTS, events, seconds: STORM_WARMUP_SECONDS, firstEventId: 50_000_000, hostPrefix: WARMUP_HOSTS });
    }
    const cpu0 = cpuSeconds(c.child.pid!);
    const r = await load({ mode: 'storm', url: `${c.url}/zabbix/webhook`, token: TOKEN, fingerprints: FINGERPRINTS, events: STORM_EVENTS, seconds: STORM_SECONDS, firstEventId: 1 });
    const cpu = cpuSeconds(c.child.pid!) - cpu0;
    row('storm, bare ceiling (same load): CPU seconds per 1,000 alerts / peak RSS', `${(cpu / (r.accepted / 1000)).toFixed(3)} / ${peakRssMb(c.child.pid!)} MB`);
    row('storm, bare ceiling: 202 latency p50 / p99 / max', `${r.latenciesMs.p50.toFixed(2)} / ${r.latenciesMs.p99.toFixed(2)} / ${r.latenciesMs.max.toFixed(1)} ms`);
  } finally {
    await stop(c);
    rmSync(c.dir, { recursive: true, force: true });
  }
}

const RESULTS = join(ROOT, 'bench', 'last-results.md');

/**
 * Write one scenario's results into bench/last-results.md, replacing that
 * scenario's earlier section and keeping the others (the default run and the
 * long run are run separately).
 */
function writeResults(section: string, text: string): void {
  const begin = `<!-- bench:${section} -->`;
  const end = `<!-- /bench:${section} -->`;
  // Under what load: on a shared machine the figures describe the day (README, Performance).
  const load =
    `\nLoad average (1, 5, 15 min) when written: ${loadavg().map((x) => x.toFixed(1)).join(', ')} on ${cpus().length} cores.` +
    (BESIDE !== '' ? `\nRunning beside the bench when it started: ${BESIDE}. These figures do not compare with a quiet machine's.` : '');
  const block = `${begin}\n${text.trimEnd()}\n${load}\n${end}`;
  const old = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : '';
  const i = old.indexOf(begin);
  const j = old.indexOf(end);
  let next: string;
  if (i >= 0 && j > i) next = `${old.slice(0, i)}${block}${old.slice(j + end.length)}`;
  else if (old.includes('<!-- bench:')) next = `${old.trimEnd()}\n\n${block}\n`;
  else next = `${block}\n`; // a file from before the sections: replaced
  writeFileSync(RESULTS, next.endsWith('\n') ? next : `${next}\n`);
}

function table(r: readonly [string, string][]): string {
  return ['| Measure | Result |', '|---|---|', ...r.map(([k, v]) => `| ${k} | ${v} |`)].join('\n');
}

const MACHINE = `${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), Node ${process.version}, ${process.platform}`;
const DATE = new Date().toISOString().slice(0, 10);

async function defaultRun(): Promise<void> {
  process.stdout.write(`zabbix-glpi-bridge benchmark — ${DATE}\nmachine: ${MACHINE}\nGLPI fake latency ${LATENCY} ms per request, max_concurrency ${CONCURRENCY}, store synchronous=full\n\n`);
  await intake();
  await stormRun(false);
  await stormRun(true);
  await hostile();
  await restart();
  writeResults(
    'default',
    `Last run: ${DATE} on ${MACHINE}; GLPI fake latency ${LATENCY} ms, max_concurrency ${CONCURRENCY}, storm ${STORM_EVENTS} events over ${STORM_SECONDS} s across ${FINGERPRINTS} fingerprints.\n\n${table(rows)}\n`,
  );
  process.stdout.write('\nwritten to bench/last-results.md\n');
}

// ---------------------------------------------------------------------------
// Restart after kill -9 (issue 16 item 4): npm run bench -- restart

const RESTART_ALERTS = env('BENCH_RESTART_ALERTS', 100_000);

/**
 * A daemon in use is killed (SIGKILL) with RESTART_ALERTS alerts accepted but not decided: they are written
 * into its inbox while it is down, through the daemon's own intake store (the rows a crashed daemon leaves:
 * committed, fsynced, undecided). Then it is started again on the same folder. Reports the time until
 * webhooks are taken (/healthz) and until the inbox is decided (zgb_inbox_depth 0); GLPI's share (the jobs
 * those decisions queued, at 30 ms a request) is not waited for.
 */
async function restart(): Promise<void> {
  const glpi = await startGlpi();
  let d: Daemon | undefined;
  try {
    d = await startDaemon(glpi.url);
    row('startup: process start until webhooks are taken (/healthz answers), fresh store', `${d.startupMs.toFixed(0)} ms`);
    await load({ mode: 'storm', url: `${d.url}/zabbix/webhook`, token: TOKEN, fingerprints: FINGERPRINTS, events: 500, seconds: 2, firstEventId: 1 });
    await caughtUp(d.url);
    d.child.kill('SIGKILL');
    await new Promise((r) => (d!.child.exitCode !== null || d!.child.signalCode !== null ? r(undefined) : d!.child.once('exit', r)));
    const filled = await fillInbox(join(d.dir, 'bridge.db'), RESTART_ALERTS);
    row(`restart: alerts left undecided in the inbox by kill -9`, `${RESTART_ALERTS} (${filled.fingerprints} fingerprints; written in ${filled.seconds.toFixed(1)} s)`);
    const dir = d.dir;
    d = await startDaemon(glpi.url, { dir });
    const started = performance.now() - d.startupMs;
    row('restart: process start until webhooks are taken again', `${d.startupMs.toFixed(0)} ms`);
    for (;;) {
      const text = await metricsText(d.url);
      if (sumMetric(text, 'zgb_inbox_depth') === 0 && sumMetric(text, 'zgb_decisions_total') > 0) break;
      await sleep(250);
    }
    const drained = (performance.now() - started) / 1000;
    row(`restart: process start until the ${RESTART_ALERTS} alerts are decided (inbox drained)`, `${drained.toFixed(1)} s (${(RESTART_ALERTS / drained).toFixed(0)} decisions/s)`);
    row('restart: peak RSS while draining', `${peakRssMb(d.child.pid!)} MB`);
  } finally {
    if (d) {
      await stop(d);
      rmSync(d.dir, { recursive: true, force: true });
    }
    await stop(glpi);
  }
}

/** Commit `count` storm-like alerts (problem, update, recovery per incident, over 500 fingerprints) to a stopped daemon's inbox. */
async function fillInbox(stateFile: string, count: number): Promise<{ fingerprints: number; seconds: number }> {
  const { openIntakeStore } = await import('../src/adapters/store/sqlite/index.js');
  const { parseWebhookBody } = await import('../src/adapters/zabbix/webhook-body.js');
  const { normalise } = await import('../src/core/normalise.js');
  const { deliveryKey } = await import('../src/core/fingerprint.js');
  const { nodeDigests } = await import('../src/adapters/digests.js');
  const lanes = 500;
  const started = performance.now();
  const store = openIntakeStore(stateFile);
  try {
    for (let i = 0; i < count; i += 1000) {
      const batch = [];
      for (let j = i; j < Math.min(count, i + 1000); j++) {
        const lane = j % lanes;
        const step = Math.floor(j / lanes);
        const kind = (['problem', 'update', 'recovery'] as const)[step % 3]!;
        const eventId = 90_000_000 + lane * 10_000 + Math.floor(step / 3) * 2;
        const parsed = parseWebhookBody(JSON.parse(benchBody(`restart-${lane}`, String(400_000 + lane), eventId, kind, j)));
        if (!parsed.ok) throw new Error(`bench body refused: ${parsed.message}`);
        const alert = normalise(parsed.event, 'webhook');
        batch.push({ key: deliveryKey(alert, nodeDigests), receivedAt: Date.now(), alert });
      }
      store.acceptDeliveries(batch);
      await store.syncInbox();
    }
  } finally {
    store.close();
  }
  return { fingerprints: lanes, seconds: (performance.now() - started) / 1000 };
}

// ---------------------------------------------------------------------------
// Hostile text (issue 11): alerts built to make value parsing and rule matching backtrack.

/** Rules whose patterns a backtracking matcher would choke on, over fields an attacker controls. */
const HOSTILE_RULES = `
categories:
  - name: cpu
    match:
      item_key: ["*cpu*util*avg*", "system.*.*.*"]
      trigger_name: ["*x*y*z*w*", "/(a|aa)+$/"]
      host: ["*web*db*cache*"]
    thresholds:
      - { above: 95, severity: disaster }
      - { above: "900 Mbps", severity: high }
  - name: disk
    match:
      tags: [{ tag: component, value: [storage, disk] }]
      trigger_name: ["*free*space*on*"]
`;

/** A body whose free text is the worst case of each matcher and of the value parser, within the field limits. */
function hostileBody(eventId: number, fp: number): string {
  const b = JSON.parse(benchBody(`host-${fp}`, String(70_000 + fp), eventId, 'problem')) as Record<string, string>;
  b.item_value = `1${' '.repeat(65_000)}x y`;
  b.event_opdata = `${'x '.repeat(2_000)}`;
  b.trigger_name = `${'x'.repeat(100)}${'y'.repeat(100)}${'a'.repeat(50)}!`;
  b.event_name = b.trigger_name;
  b.item_key = `system.${'cpu.'.repeat(400)}`;
  b.host_host = `web${'-'.repeat(100)}db`;
  return JSON.stringify(b);
}

function normalBody(eventId: number, fp: number): string {
  return benchBody(`host-${fp}`, String(70_000 + fp), eventId, 'problem');
}

/** Post bodies with a few in flight; returns the statuses seen. */
async function postAll(url: string, bodies: readonly string[]): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < bodies.length) {
        const payload = bodies[next++]!;
        const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` }, body: payload });
        await res.arrayBuffer();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      }
    }),
  );
  return statuses;
}

const HOSTILE_ALERTS = env('BENCH_HOSTILE_ALERTS', 300);

/**
 * The same number of alerts over the same fingerprints, once plain and once
 * hostile: daemon CPU per alert and time until decided and dispatched, as the
 * ratio hostile / normal. Goal: the same order of time (ratio well under 10).
 */
async function hostile(): Promise<void> {
  const glpi = await startGlpi();
  const dir = mkdtempSync(join(tmpdir(), 'zgb-bench-rules-'));
  const rulesFile = join(dir, 'rules.yaml');
  writeFileSync(rulesFile, HOSTILE_RULES);
  let d: Daemon | undefined;
  try {
    d = await startDaemon(glpi.url, { rulesFile });
    const daemon = d;
    const measure = async (make: (eventId: number, fp: number) => string, firstEventId: number) => {
      const bodies = Array.from({ length: HOSTILE_ALERTS }, (_, i) => make(firstEventId + i, i % 30));
      const cpu0 = cpuSeconds(daemon.child.pid!);
      const started = Date.now();
      const statuses = await postAll(`${daemon.url}/zabbix/webhook`, bodies);
      await caughtUp(daemon.url);
      const wall = (Date.now() - started) / 1000;
      const cpu = cpuSeconds(daemon.child.pid!) - cpu0;
      return { cpuMs: (cpu * 1000) / HOSTILE_ALERTS, wall, statuses: [...statuses].map(([k, v]) => `${v}×${k}`).join(', '), bytes: Buffer.byteLength(bodies[0]!) };
    };
    // Warm up (JIT, first tickets), then plain, then hostile, then plain again (the figure is the mean of both plain runs).
    await measure(normalBody, 1_000_000);
    const a = await measure(normalBody, 2_000_000);
    const h = await measure(hostileBody, 3_000_000);
    const b = await measure(normalBody, 4_000_000);
    const plainCpu = (a.cpuMs + b.cpuMs) / 2;
    const plainWall = (a.wall + b.wall) / 2;
    row(`hostile text: ${HOSTILE_ALERTS} plain alerts (${a.bytes} B): CPU per alert / until done`, `${plainCpu.toFixed(2)} ms / ${plainWall.toFixed(1)} s (${a.statuses})`);
    row(`hostile text: ${HOSTILE_ALERTS} hostile alerts (${Math.round(h.bytes / 1024)} KiB): CPU per alert / until done`, `${h.cpuMs.toFixed(2)} ms / ${h.wall.toFixed(1)} s (${h.statuses})`);
    row('hostile text: ratio hostile / plain, CPU per alert and time until done', `${(h.cpuMs / plainCpu).toFixed(2)}× / ${(h.wall / plainWall).toFixed(2)}×`);
  } finally {
    if (d) await stop(d);
    await stop(glpi);
    if (d) rmSync(d.dir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
// The long run (npm run bench -- longrun [--alerts N] [--fingerprints N] [--steps N] [--open N])

interface LongrunOptions {
  readonly alerts: number;
  readonly fingerprints: number;
  readonly steps: number;
  readonly open: number;
  readonly connections: number;
  readonly reopenWindow: string;
  readonly retention: string;
  readonly latencyMs: number;
  readonly seed: number;
}

function longrunOptions(args: readonly string[]): LongrunOptions {
  const { values } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: { alerts: { type: 'string' }, fingerprints: { type: 'string' }, steps: { type: 'string' }, open: { type: 'string' } },
  });
  const num = (flag: string | undefined, name: string, d: number) => {
    const v = Number(flag ?? process.env[name] ?? d);
    if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} (or its flag) must be a positive integer, not ${flag ?? process.env[name]}`);
    return v;
  };
  const alerts = num(values.alerts, 'BENCH_LONGRUN_ALERTS', 1_000_000);
  const fingerprints = num(values.fingerprints, 'BENCH_LONGRUN_FINGERPRINTS', Math.max(1, Math.round(alerts / 5)));
  return {
    alerts,
    fingerprints,
    steps: num(values.steps, 'BENCH_LONGRUN_STEPS', 10),
    open: Math.min(num(values.open, 'BENCH_LONGRUN_OPEN', 2000), Math.max(1, Math.floor(fingerprints / 2))),
    connections: num(undefined, 'BENCH_LONGRUN_CONNECTIONS', 16),
    reopenWindow: process.env.BENCH_LONGRUN_REOPEN_WINDOW ?? '15s',
    retention: process.env.BENCH_LONGRUN_RETENTION ?? '20s',
    latencyMs: Number(process.env.BENCH_LONGRUN_LATENCY_MS ?? 0),
    seed: num(undefined, 'BENCH_LONGRUN_SEED', 1),
  };
}

async function startStub(latencyMs: number): Promise<Proc> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(HERE, 'glpi-stub.js'), String(port)], {
    env: { ...process.env, BENCH_STUB_LATENCY_MS: String(latencyMs) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  child.stdout!.resume();
  return { child, url: `http://127.0.0.1:${port}` };
}

/** Bytes of the state file (with its WAL) and of the inbox file (with its WAL). */
function storeSizes(dir: string): { state: number; inbox: number } {
  let state = 0;
  let inbox = 0;
  for (const f of readdirSync(dir)) {
    if (!/\.db(-wal)?$/.test(f)) continue;
    const size = statSync(join(dir, f)).size;
    if (f.includes('.inbox.')) inbox += size;
    else state += size;
  }
  return { state, inbox };
}

/** Rows per table of both files, read-only (what grows). */
async function tableRows(dir: string): Promise<string> {
  const { default: Database } = await import('better-sqlite3');
  const out: string[] = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.db')).sort()) {
    const db = new Database(join(dir, f), { readonly: true, fileMustExist: true });
    try {
      db.pragma('busy_timeout = 5000');
      const tables = db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all();
      for (const { name } of tables) {
        const n = db.prepare<[], { n: number }>(`SELECT COUNT(*) AS n FROM "${name}"`).get()?.n ?? 0;
        if (n > 0 && name !== 'meta') out.push(`${name} ${n}`);
      }
    } finally {
      db.close();
    }
  }
  return out.join(', ');
}

const mb = (bytes: number) => (bytes / 1_048_576).toFixed(1);

interface StepMeasure {
  readonly sent: number;
  readonly seconds: number;
  readonly intakeRate: number;
  readonly decided: number;
  readonly decisionRate: number;
  readonly decidedAfter: number;
  readonly glpiDoneAfter: number;
  readonly state: number;
  readonly inbox: number;
  readonly rss: number;
  readonly rows: string;
  readonly result: LongrunResult;
}

/**
 * The long run: `alerts` alerts over `fingerprints` incidents (problems,
 * updates, redeliveries, recoveries; see LongrunStream in load.ts), sent in
 * `steps` equal steps at saturation (BENCH_LONGRUN_CONNECTIONS connections).
 * After each step the bench waits until every alert is decided and GLPI has
 * caught up, then measures:
 * - the decision rate: alerts decided in the step (zgb_decisions_total) per
 *   second from the step's first alert until its last one was decided;
 * - the store: bridge.db + its WAL, and the inbox (bridge.inbox.db + its WAL).
 * The first step is "the start", the last one "the end"; goal: both ratios
 * end / start within 2x. The windows the store prunes on are scaled to a run
 * of minutes (reopen window 15 s, retention 20 s, pruned every 5 s: about one step's worth, so that the first step already holds a full window) and GLPI is a lean stub
 * (bench/glpi-stub.ts) without latency, so that the run measures the bridge.
 */
/**
 * /metrics with the processing thread's part: a scrape it did not answer in time (busy with large batches) has the
 * main thread's metrics only, and its decision counter read as 0 gave the 2026-12-02 run negative rates.
 */
async function bothThreadsMetrics(url: string): Promise<string> {
  for (let i = 0; i < 120; i++) {
    const text = await metricsText(url);
    if (text.includes('zgb_thread_heap_bytes{thread="processing"')) return text;
    await sleep(250);
  }
  throw new Error('the processing thread did not answer /metrics for 30 s');
}

async function longrun(o: LongrunOptions): Promise<void> {
  process.stdout.write(
    `zabbix-glpi-bridge long run — ${DATE}\nmachine: ${MACHINE}\n${o.alerts} alerts over ${o.fingerprints} fingerprints in ${o.steps} steps, ${o.open} problems open at a time, ${o.connections} connections; ` +
      `reopen_window ${o.reopenWindow}, store.retention ${o.retention}; GLPI stub latency ${o.latencyMs} ms, max_concurrency ${CONCURRENCY}, store synchronous=full\n\n`,
  );
  const glpi = await startStub(o.latencyMs);
  const d = await startDaemon(glpi.url, { store: [`  retention: ${o.retention}`, '  prune_interval: 5s'], correlation: [`  reopen_window: ${o.reopenWindow}`] });
  const job: LoadJob = { mode: 'longrun', url: `${d.url}/zabbix/webhook`, token: TOKEN, fingerprints: o.fingerprints, openTarget: o.open, connections: o.connections, seed: o.seed };
  const gen = spawn(process.execPath, [join(HERE, 'load.js'), JSON.stringify(job)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const answers = createInterface({ input: gen.stdout! })[Symbol.asyncIterator]();
  const steps: StepMeasure[] = [];
  const started = Date.now();
  try {
    let sent = 0;
    for (let i = 0; i < o.steps; i++) {
      const count = Math.floor((o.alerts * (i + 1)) / o.steps) - sent;
      const decisions0 = sumMetric(await bothThreadsMetrics(d.url), 'zgb_decisions_total');
      const t0 = Date.now();
      gen.stdin!.write(`${JSON.stringify({ send: count })}\n`);
      const answer = await answers.next();
      if (answer.done) throw new Error('the load generator stopped');
      const result = JSON.parse(answer.value) as LongrunResult;
      sent += count;
      // Decided: the inbox is empty. GLPI caught up: no job pending or running.
      let decidedAt = 0;
      let text = '';
      for (;;) {
        text = await bothThreadsMetrics(d.url);
        const now = Date.now();
        if (decidedAt === 0 && sumMetric(text, 'zgb_inbox_depth') === 0) decidedAt = now;
        if (decidedAt > 0 && sumMetric(text, 'zgb_queue_depth', { state: 'pending' }) + sumMetric(text, 'zgb_queue_depth', { state: 'running' }) === 0) break;
        await sleep(250);
      }
      const glpiDoneAt = Date.now();
      const decided = sumMetric(text, 'zgb_decisions_total') - decisions0;
      const sizes = storeSizes(d.dir);
      const m: StepMeasure = {
        sent,
        seconds: result.seconds,
        intakeRate: result.accepted / result.seconds,
        decided,
        decisionRate: decided / ((decidedAt - t0) / 1000),
        decidedAfter: (decidedAt - t0) / 1000,
        glpiDoneAfter: (glpiDoneAt - t0) / 1000,
        state: sizes.state,
        inbox: sizes.inbox,
        rss: peakRssMb(d.child.pid!),
        rows: await tableRows(d.dir),
        result,
      };
      steps.push(m);
      process.stdout.write(
        `  step ${String(i + 1).padStart(2)}: ${String(sent).padStart(8)} alerts sent (${result.kinds.problem} problems, ${result.kinds.update} updates, ${result.kinds.redelivery} redeliveries, ${result.kinds.recovery} recoveries; ${result.duplicates} duplicates, ${result.failed} refused), ` +
          `intake ${m.intakeRate.toFixed(0)}/s, decisions ${m.decisionRate.toFixed(0)}/s (decided after ${m.decidedAfter.toFixed(1)} s, GLPI after ${m.glpiDoneAfter.toFixed(1)} s), ` +
          `state ${mb(m.state)} MB, inbox ${mb(m.inbox)} MB, RSS ${m.rss} MB, ${result.touched} fingerprints seen, ${result.open} open\n      rows: ${m.rows}\n`,
      );
    }
  } finally {
    gen.stdin!.end();
    await new Promise((r) => (gen.exitCode !== null ? r(undefined) : gen.once('exit', r)));
    await stop(d);
    await stop(glpi);
    rmSync(d.dir, { recursive: true, force: true });
  }
  const first = steps[0]!;
  const last = steps[steps.length - 1]!;
  const minutes = ((Date.now() - started) / 60_000).toFixed(1);
  const ratio = (end: number, start: number) => (start > 0 ? end / start : Number.NaN);
  const sizeRatio = ratio(last.state + last.inbox, first.state + first.inbox);
  const rateRatio = ratio(last.decisionRate, first.decisionRate);
  const verdict = (ok: boolean) => (ok ? 'within 2x' : 'NOT within 2x');
  // Issue 16 item 3: with history in the store, intake and decision rates within 20 % of the fresh store's.
  const within20 = (r: number) => `${r.toFixed(2)} (${r >= 0.8 ? 'within 20 %' : 'NOT within 20 %'})`;
  const intakeRatio = ratio(last.intakeRate, first.intakeRate);
  const lr: [string, string][] = [
    ['long run: alerts sent / fingerprints / steps', `${last.sent} / ${o.fingerprints} (${last.result.touched} had a problem) / ${o.steps}, in ${minutes} min`],
    ['long run: state file + WAL at the start / at the end', `${mb(first.state)} / ${mb(last.state)} MB`],
    ['long run: inbox + WAL at the start / at the end', `${mb(first.inbox)} / ${mb(last.inbox)} MB`],
    ['long run: store size (both) end / start (goal within 2x)', `${sizeRatio.toFixed(2)} (${verdict(sizeRatio <= 2)})`],
    ['long run: decisions per second at the start / at the end', `${first.decisionRate.toFixed(0)} / ${last.decisionRate.toFixed(0)}`],
    ['long run: decision rate end / start (goal within 2x; issue 16: within 20 %)', `${rateRatio.toFixed(2)} (${verdict(rateRatio >= 0.5)}); ${within20(rateRatio)}`],
    ['long run: intake rate end / start (issue 16: within 20 %)', within20(intakeRatio)],
    ['long run: intake accepted per second at the start / at the end', `${first.intakeRate.toFixed(0)} / ${last.intakeRate.toFixed(0)}`],
    ['long run: daemon peak RSS at the start / at the end', `${first.rss} / ${last.rss} MB`],
    ['long run: rows at the start', first.rows],
    ['long run: rows at the end', last.rows],
  ];
  process.stdout.write('\n');
  for (const [k, v] of lr) process.stdout.write(`  ${k.padEnd(60)} ${v}\n`);
  const perStep = [
    '| Step | Alerts sent | Intake /s | Decisions /s | Decided after | GLPI done after | State + WAL | Inbox + WAL | RSS |',
    '|---|---|---|---|---|---|---|---|---|',
    ...steps.map(
      (m, i) =>
        `| ${i + 1} | ${m.sent} | ${m.intakeRate.toFixed(0)} | ${m.decisionRate.toFixed(0)} | ${m.decidedAfter.toFixed(1)} s | ${m.glpiDoneAfter.toFixed(1)} s | ${mb(m.state)} MB | ${mb(m.inbox)} MB | ${m.rss} MB |`,
    ),
  ].join('\n');
  writeResults(
    'longrun',
    `Long run: ${DATE} on ${MACHINE}; ${o.alerts} alerts over ${o.fingerprints} fingerprints in ${o.steps} steps, ${o.open} open at a time, ${o.connections} connections; ` +
      `reopen_window ${o.reopenWindow}, store.retention ${o.retention}; GLPI stub latency ${o.latencyMs} ms, max_concurrency ${CONCURRENCY}.\n\n${table(lr)}\n\n${perStep}\n`,
  );
  process.stdout.write('\nwritten to bench/last-results.md\n');
}

/** Services running beside the bench when it started (common.ts neighbours); said on the terminal and in the results. */
const BESIDE = neighbours();

async function main(): Promise<void> {
  if (BESIDE !== '') {
    process.stderr.write(
      `warning: running beside the bench: ${BESIDE}. They take cores and disk from the figures. After .ci/run: bash test/e2e/zabbix/down.sh; bash test/e2e/zabbix7/down.sh; pg_ctlcluster 15 main stop\n`,
    );
  }
  const args = process.argv.slice(2);
  const scenario = args.find((a) => !a.startsWith('-') && !/^\d+$/.test(a));
  if (scenario === undefined) return defaultRun();
  if (scenario === 'longrun') return longrun(longrunOptions(args));
  if (scenario === 'hostile') {
    await hostile();
    writeResults('hostile', `Last run: ${DATE} on ${MACHINE}.\n\n${table(rows)}\n`);
    return;
  }
  if (scenario === 'restart') {
    await restart();
    writeResults('restart', `Last run: ${DATE} on ${MACHINE}; GLPI fake latency ${LATENCY} ms.\n\n${table(rows)}\n`);
    return;
  }
  if (scenario === 'storm') {
    await stormRun(false);
    writeResults('storm', `Last run: ${DATE} on ${MACHINE}; GLPI fake latency ${LATENCY} ms, max_concurrency ${CONCURRENCY}, storm ${STORM_EVENTS} events over ${STORM_SECONDS} s across ${FINGERPRINTS} fingerprints.\n\n${table(rows)}\n`);
    return;
  }
  if (scenario === 'postgres') {
    // Issue 15: bridges on PostgreSQL against one on SQLite, and a storm with a node killed (bench/postgres.ts; about 7 minutes, on request only).
    writeResults('postgres', await (await import('./postgres.js')).postgres());
    process.stdout.write('\nwritten to bench/last-results.md\n');
    return;
  }
  if (scenario === 'intake') {
    await intake();
    writeResults('intake', `Last run: ${DATE} on ${MACHINE}.\n\n${table(rows)}\n`);
    return;
  }
  throw new Error(`unknown scenario "${scenario}" (none: the default run; intake; storm; restart; longrun; hostile; postgres)`);
}

void main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
