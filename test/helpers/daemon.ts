import { afterEach, beforeEach, expect } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { FakeGlpi } from '../../src/glpi-fake/server.js';
import { ROOT } from './fixtures.js';

export const TOKEN = 'test-webhook-token-0123456789';
export const MAIN = join(ROOT, 'dist', 'bridge', 'main.js');

export interface DaemonOptions {
  readonly glpiUrl: string;
  readonly dataDir?: string;
  /** Extra YAML appended to the generated config (top-level keys). */
  readonly extra?: string;
  readonly correlation?: string;
  readonly glpiExtra?: string;
  /** The glpi section's credential lines (default: user_token and app_token from the environment). */
  readonly glpiAuth?: string;
  readonly env?: Record<string, string>;
  /** host:port; default any free port on 127.0.0.1. */
  readonly listen?: string;
  /** The rules YAML (text): written to rules.yaml in the data dir, which rules_file then names (default: config/rules.example.yaml). */
  readonly rulesYaml?: string;
}

export interface LogLine {
  readonly level: string;
  readonly msg: string;
  readonly [key: string]: unknown;
}

/**
 * The real built daemon in a child process, with its own config, data dir and log capture.
 * When a test fails, the whole log of every daemon it used is printed (see the hooks at the end).
 */
export class Daemon {
  /** Standard output's JSON lines, parsed. */
  readonly logs: LogLine[] = [];
  readonly stderr: string[] = [];
  /** Everything the daemon wrote, in order, over all its starts: stdout lines as they are, stderr lines prefixed. */
  readonly output: string[] = [];
  url = '';
  exitCode: number | null | undefined;
  #child: ChildProcess | undefined;
  #exited: Promise<number | null> | undefined;
  readonly configFile: string;
  readonly dataDir: string;
  /** The rules file the config names (a test may rewrite it, e.g. to fix a rule before `queue retry`). */
  readonly rulesFile: string;

  constructor(readonly opt: DaemonOptions) {
    this.dataDir = opt.dataDir ?? mkdtempSync(join(tmpdir(), 'zgb-it-'));
    daemons.add(this);
    this.configFile = join(this.dataDir, 'bridge.yaml');
    this.rulesFile = opt.rulesYaml === undefined ? join(ROOT, 'config', 'rules.example.yaml') : join(this.dataDir, 'rules.yaml');
    if (opt.rulesYaml !== undefined) writeFileSync(this.rulesFile, opt.rulesYaml);
    writeFileSync(
      this.configFile,
      [
        `listen: ${opt.listen ?? '127.0.0.1:0'}`,
        `data_dir: ${this.dataDir}`,
        'log_level: debug',
        'webhook:',
        '  token: ${BRIDGE_WEBHOOK_TOKEN}',
        'glpi:',
        `  url: ${opt.glpiUrl}`,
        opt.glpiAuth ?? '  user_token: ${GLPI_USER_TOKEN}\n  app_token: ${GLPI_APP_TOKEN:-}',
        opt.glpiExtra ?? '  timeout: 2s',
        'retry:',
        '  attempts: 1',
        '  min_delay: 50ms',
        '  max_delay: 200ms',
        '  backoff_cap: 500ms',
        'correlation:',
        opt.correlation ?? '  coalesce_window: 0',
        `rules_file: ${this.rulesFile}`,
        opt.extra ?? '',
      ].join('\n'),
    );
  }

  async start(): Promise<void> {
    this.url = '';
    const child = spawn(process.execPath, [MAIN, 'run', '--config', this.configFile], {
      env: { ...process.env, BRIDGE_WEBHOOK_TOKEN: TOKEN, GLPI_USER_TOKEN: 'user-token', ...this.opt.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#child = child;
    this.exitCode = undefined;
    this.startedDuring = currentTest;
    this.output.push(`--- started: pid ${child.pid ?? '?'}, ${MAIN} run --config ${this.configFile}`);
    // 'close', not 'exit': every line the daemon wrote has been read by then.
    this.#exited = new Promise((resolve) =>
      child.once('close', (code, signal) => {
        this.output.push(`--- exited: code ${code}${signal ? `, signal ${signal}` : ''}`);
        resolve(code);
      }),
    );
    void this.#exited.then((c) => (this.exitCode = c));
    createInterface({ input: child.stderr! }).on('line', (l) => {
      this.stderr.push(l);
      this.output.push(`[stderr] ${l}`);
    });
    const started = new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        this.output.push(line);
        let parsed: LogLine;
        try {
          parsed = JSON.parse(line) as LogLine;
        } catch {
          return;
        }
        this.logs.push(parsed);
        if (parsed.msg === 'bridge started') {
          this.url = String(parsed.address);
          resolve();
        }
      });
      void this.#exited!.then((code) => reject(new Error(`daemon exited with ${code} before starting; its log:\n${this.output.join('\n')}`)));
    });
    await started;
  }

  get pid(): number {
    return this.#child?.pid ?? -1;
  }

  /** Stop reading the daemon's standard output (a log reader that falls behind: the pipe fills), until resumeOutput(). */
  pauseOutput(): void {
    this.#child?.stdout?.pause();
  }

  resumeOutput(): void {
    this.#child?.stdout?.resume();
  }

  /** Started and not exited yet. */
  get running(): boolean {
    return this.#child !== undefined && this.exitCode === undefined;
  }

  /** The test during which start() was last called (to tell which daemons a failing test used). */
  startedDuring: number | undefined;

  post(body: unknown, token: string = TOKEN, raw?: string): Promise<Response> {
    return fetch(`${this.url}/zabbix/webhook`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: raw ?? JSON.stringify(body),
    });
  }

  get(path: string): Promise<Response> {
    return fetch(`${this.url}${path}`);
  }

  /** SIGTERM and wait for the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (!this.#child || this.exitCode !== undefined) return this.exitCode ?? null;
    // Its output read to the end again (a test may have paused it): the exit is seen once every line is read.
    this.#child.stdout?.resume();
    this.#child.kill(signal);
    return this.#exited!;
  }

  decisions(): LogLine[] {
    return this.logs.filter((l) => l.msg === 'decision');
  }
}

/** Every daemon of this test file (each test file has its own module registry, hence its own set). */
const daemons = new Set<Daemon>();
let testsStarted = 0;
let currentTest: number | undefined;
const outputAtTestStart = new Map<Daemon, number>();

/**
 * Whether the test now running (in a hook: the test the hook runs for) has failed so far:
 * jest-circus keeps the errors on the running test in its state on the test's global
 * (a non-registered symbol, found by its description). Undefined when that state is
 * not found (another runner, or jest internals changed): test/integration/lifecycle.test.ts
 * checks that it is found.
 */
export function currentTestFailed(): boolean | undefined {
  const g = globalThis as unknown as Record<symbol, { currentlyRunningTest?: { errors?: unknown[] } | null } | undefined>;
  const sym = Object.getOwnPropertySymbols(g).find((s) => s.description === 'JEST_STATE_SYMBOL');
  const errors = sym ? g[sym]?.currentlyRunningTest?.errors : undefined;
  return Array.isArray(errors) ? errors.length > 0 : undefined;
}

/** The whole log of one daemon, framed, on stderr (not buffered by jest's console: shown even if the worker dies). */
export function printDaemonLog(d: Daemon, why: string): void {
  const head = `===== daemon log (${why}; data dir ${d.dataDir}; exit code ${d.exitCode === undefined ? 'none yet' : String(d.exitCode)}): ${d.output.length} lines =====`;
  process.stderr.write(`\n${head}\n${d.output.join('\n')}\n===== end of daemon log =====\n`);
}

beforeEach(() => {
  currentTest = ++testsStarted;
  outputAtTestStart.clear();
  for (const d of daemons) outputAtTestStart.set(d, d.output.length);
});

// A failed test prints the whole log (stdout JSON lines and stderr) of each daemon it used:
// started during the test, still running, or that wrote something during it. ZGB_TEST_LOGS=always prints them for every test.
afterEach(() => {
  const failed = currentTestFailed();
  const always = process.env.ZGB_TEST_LOGS === 'always';
  if (!always && failed === false) return;
  const name = (expect.getState().currentTestName as string | undefined) ?? 'unknown test';
  for (const d of daemons) {
    if (d.output.length === 0) continue;
    const used = d.startedDuring === currentTest || d.running || d.output.length > (outputAtTestStart.get(d) ?? 0);
    if (used) printDaemonLog(d, `${failed === undefined ? 'test outcome unknown' : failed ? 'failed' : 'finished'}: ${name}`);
  }
});

/** A GLPI fake on a free port (the test's user token) and a started daemon pointed at it. */
export async function startWithGlpi(opt: Omit<DaemonOptions, 'glpiUrl'> = {}): Promise<{ glpi: FakeGlpi; daemon: Daemon }> {
  const glpi = new FakeGlpi({ userTokens: ['user-token'] });
  await glpi.listen();
  const daemon = new Daemon({ ...opt, glpiUrl: glpi.url });
  await daemon.start();
  return { glpi, daemon };
}

/** Poll until the check passes (waiting for asynchronous work, not measuring it). */
export async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Environment the generated configs need (the same the daemon gets). */
export const CONFIG_ENV = { BRIDGE_WEBHOOK_TOKEN: TOKEN, GLPI_USER_TOKEN: 'user-token' };

export function runCli(args: readonly string[], env: Record<string, string> = CONFIG_ENV, input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}
