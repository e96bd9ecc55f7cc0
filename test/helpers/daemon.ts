import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT } from './fixtures.js';

export const TOKEN = 'test-webhook-token-0123456789';
export const MAIN = join(ROOT, 'dist', 'src', 'main.js');

export interface DaemonOptions {
  readonly glpiUrl: string;
  readonly dataDir?: string;
  /** Extra YAML appended to the generated config (top-level keys). */
  readonly extra?: string;
  readonly correlation?: string;
  readonly glpiExtra?: string;
  readonly env?: Record<string, string>;
  /** host:port; default any free port on 127.0.0.1. */
  readonly listen?: string;
}

export interface LogLine {
  readonly level: string;
  readonly msg: string;
  readonly [key: string]: unknown;
}

/** The real built daemon in a child process, with its own config, data dir and log capture. */
export class Daemon {
  readonly logs: LogLine[] = [];
  readonly stderr: string[] = [];
  url = '';
  exitCode: number | null | undefined;
  #child: ChildProcess | undefined;
  #exited: Promise<number | null> | undefined;
  readonly configFile: string;
  readonly dataDir: string;

  constructor(readonly opt: DaemonOptions) {
    this.dataDir = opt.dataDir ?? mkdtempSync(join(tmpdir(), 'zgb-it-'));
    this.configFile = join(this.dataDir, 'bridge.yaml');
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
        '  user_token: ${GLPI_USER_TOKEN}',
        '  app_token: ${GLPI_APP_TOKEN:-}',
        opt.glpiExtra ?? '  timeout: 2s',
        'retry:',
        '  attempts: 1',
        '  min_delay: 50ms',
        '  max_delay: 200ms',
        '  backoff_cap: 500ms',
        'correlation:',
        opt.correlation ?? '  coalesce_window: 0',
        `rules_file: ${join(ROOT, 'config', 'rules.example.yaml')}`,
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
    this.#exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    void this.#exited.then((c) => (this.exitCode = c));
    createInterface({ input: child.stderr! }).on('line', (l) => this.stderr.push(l));
    const started = new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
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
      void this.#exited!.then((code) => reject(new Error(`daemon exited with ${code} before starting: ${this.stderr.join('\n')}`)));
    });
    await started;
  }

  get pid(): number {
    return this.#child?.pid ?? -1;
  }

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
    this.#child.kill(signal);
    return this.#exited!;
  }

  decisions(): LogLine[] {
    return this.logs.filter((l) => l.msg === 'decision');
  }
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
