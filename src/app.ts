import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { ConfigError, formatProblem } from './config/load.js';
import type { Config } from './config/schema.js';
import { pino } from 'pino';
import { systemClock } from './adapters/clock.js';
import { nodeDigests } from './adapters/digests.js';
import { buildServer, type ReadinessCheck } from './adapters/http/server.js';
import { PollCursor } from './adapters/store/poll-cursor.js';
import { SqliteStore } from './adapters/store/sqlite-store.js';
import { storeFile, zabbixApi } from './components.js';
import type { Logger } from './observability/logger.js';
import { createMetrics, mergedExposition, type Metrics } from './observability/metrics.js';
import { Intake } from './services/intake.js';
import { Poller } from './services/poller.js';
import { ProcessingThread, type LogSink } from './threads/processing-thread.js';

export interface AppDeps {
  readonly logger: Logger;
  /** Read the configuration file again (reload on SIGHUP and POST /-/reload). */
  readonly loadConfig?: () => Config;
  /** The logger writes to standard output (the daemon): the processing thread writes its lines there itself. */
  readonly logsToStdout?: boolean;
  /** The processing thread died on its own: the daemon stops (and systemd starts it again). */
  readonly onFatal?: (reason: string) => void;
}

export interface App {
  readonly config: () => Config;
  readonly server: FastifyInstance;
  readonly store: SqliteStore;
  readonly metrics: Metrics;
  /** Listen and start processing; resolves with the address. */
  start(): Promise<string>;
  /** Swap in a new, already validated configuration (rules, correlation, token). */
  reload(next: Config): void;
  /** Re-read the configuration file and apply it, or keep the running one and return the problems. */
  reloadFromFile(): { ok: true; summary: Record<string, unknown> } | { ok: false; problems: string[] };
  /**
   * Stop intake, finish or park work in flight, close the store. Safe to call twice; resolves with the
   * process exit code, also logged: 1 when a shutdown step failed, or when `failed` (the bridge could not
   * start, or its processing thread died).
   */
  stop(failed?: boolean): Promise<number>;
}

/** A queue whose oldest job waits longer than this is reported as stuck by /readyz. */
const STUCK_AFTER_MS = 15 * 60_000;
const DRAIN_TIMEOUT_MS = 10_000;
/** /readyz writes to the store at most this often; a webhook committed within it stands for the check. */
const WRITE_CHECK_EVERY_MS = 30_000;

/** The webhook token: configured, or generated once into the data directory (mode 0600) and reused. */
export function webhookToken(c: Config, logger: Logger): string {
  if (!c.webhook.token.empty) return c.webhook.token.reveal();
  const file = join(c.data_dir, 'webhook-token');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(c.data_dir, { recursive: true });
  writeFileSync(file, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  logger.warn({ file }, 'no webhook.token configured: generated one; put it in the Zabbix media type (bridge_token)');
  return readFileSync(file, 'utf8').trim();
}

/** The admin token; empty (admin endpoints off) when it is not set, or when it is the webhook token (that one is in every Zabbix media type). */
function adminToken(c: Config, webhook: string, logger: Logger): string {
  const admin = c.admin.token.reveal();
  if (admin !== '' && admin === webhook) {
    logger.error({ code: 'BRIDGE_ADMIN_DISABLED' }, 'admin.token is the webhook token: admin endpoints stay off until it is a token of its own');
    return '';
  }
  return admin;
}

/** What /readyz says of a failed GLPI login: our code and GLPI's (ERROR_…), never GLPI's text. */
export function loginFailedDetail(lastLoginError: string | undefined): string {
  const glpiCode = /\bERROR_[A-Z0-9_]{1,60}\b/.exec(lastLoginError ?? '')?.[0];
  return `GLPI_LOGIN_FAILED${glpiCode ? ` (${glpiCode})` : ''}: see the log`;
}

/** The stream a pino logger writes to (the processing thread's lines are written there too). */
function logSink(logger: Logger): LogSink {
  return (logger as unknown as Record<symbol, LogSink>)[pino.symbols.streamSym] as LogSink;
}

/**
 * Composition root: wires adapters into services. The main thread runs the
 * HTTP intake and the poller; decisions and GLPI dispatch run in the
 * processing thread (threads/). No globals; only main.ts touches signals and exit codes.
 */
export function buildApp(initial: Config, deps: AppDeps): App {
  let config = initial;
  let token = webhookToken(config, deps.logger);
  let admin = adminToken(config, token, deps.logger);
  const logger = deps.logger;
  const clock = systemClock;
  const metrics = createMetrics();
  // The intake writes the inbox file; the processing thread checkpoints it (so this thread never copies WAL pages).
  const store = new SqliteStore(storeFile(config), { synchronous: config.store.synchronous, maxSizeBytes: config.store.max_size, inboxCheckpoint: 'external' });
  let processing: ProcessingThread | undefined;
  /** The last write to the inbox that proved it writable (a commit, or /readyz's own check) and what that check found. */
  let writeCheck: { at: number; error?: string } = { at: Number.NEGATIVE_INFINITY };
  const intake = new Intake(store, clock, nodeDigests, logger.child({ component: 'intake' }), metrics, (through) => {
    writeCheck = { at: clock.now() };
    processing?.wake(through);
  });
  const zabbix = zabbixApi(config, logger.child({ component: 'zabbix' }));
  const poller = zabbix && config.zabbix.poll.enabled ? new Poller(zabbix, store, new PollCursor(store), intake, logger.child({ component: 'poller' }), metrics, { hostGroups: config.zabbix.poll.host_groups, minSeverity: config.zabbix.poll.min_severity, baseline: config.zabbix.poll.baseline }) : undefined;
  let stopping = false;
  let stopped: Promise<number> | undefined;
  let pruneTimer: NodeJS.Timeout | undefined;

  const checkWrite = (now: number): { at: number; error?: string } => {
    try {
      store.checkWritable(now);
      return { at: now };
    } catch (e) {
      return { at: now, error: (e as Error).message };
    }
  };

  const readiness = async (): Promise<Record<string, ReadinessCheck>> => {
    const now = clock.now();
    // Probes do not write: a commit or a write check younger than WRITE_CHECK_EVERY_MS answers for the store.
    if (now - writeCheck.at >= WRITE_CHECK_EVERY_MS) writeCheck = checkWrite(now);
    const storeCheck: ReadinessCheck = intake.storeError
      ? { ok: false, detail: `last commit failed: ${intake.storeError}` }
      : writeCheck.error !== undefined
        ? { ok: false, detail: `not writable: ${writeCheck.error}` }
        : { ok: true, detail: 'writable' };
    const status = await processing?.status();
    const glpiCheck: ReadinessCheck = !status
      ? { ok: false, detail: 'the processing thread does not answer' }
      : status.session === 'login_failed'
        ? { ok: false, detail: loginFailedDetail(status.lastLoginError) }
        : { ok: true, detail: `session ${status.session}` };
    const stats = store.stats();
    const age = stats.oldestPendingAt !== undefined ? now - stats.oldestPendingAt : 0;
    const queueCheck: ReadinessCheck =
      processing?.exitReason !== undefined && !stopping
        ? { ok: false, detail: `processing thread ${processing.exitReason}` }
        : age > STUCK_AFTER_MS
          ? { ok: false, detail: `oldest job waiting ${Math.round(age / 1000)} s (${stats.pending} pending, ${stats.dead} dead)` }
          : { ok: true, detail: `${stats.pending} pending, ${stats.running} running, ${stats.dead} dead` };
    const checks: Record<string, ReadinessCheck> = { store: storeCheck, glpi: glpiCheck, queue: queueCheck, intake: stopping ? { ok: false, detail: 'stopping' } : { ok: true, detail: 'accepting' } };
    // Informational: the webhook keeps working while the Zabbix API is unreachable.
    if (poller) checks.zabbix_poll = { ok: true, detail: poller.lastError ? `last sweep failed: ${poller.lastError}` : poller.lastSuccessAt ? `last sweep ${new Date(poller.lastSuccessAt).toISOString()}` : 'no sweep yet' };
    return checks;
  };

  const applyConfig = (next: Config): void => {
    config = next;
    processing?.reload(next);
    token = webhookToken(next, logger);
    admin = adminToken(next, token, logger);
    metrics.configReloads.inc({ result: 'success' });
    logger.info({ config: next.sources.config, rules: next.sources.rules, categories: next.rules.categories.map((c) => c.name) }, 'configuration reloaded');
  };
  /** Load and apply the configuration file again; an invalid one is rejected and the running one kept. */
  const reloadFromFile = (): { ok: true; summary: Record<string, unknown> } | { ok: false; problems: string[] } => {
    if (!deps.loadConfig) return { ok: false, problems: ['no configuration file to reload from'] };
    try {
      const next = deps.loadConfig();
      applyConfig(next);
      return { ok: true, summary: { config: next.sources.config, rules: next.sources.rules, categories: next.rules.categories.map((c) => c.name) } };
    } catch (e) {
      metrics.configReloads.inc({ result: 'failure' });
      const problems = e instanceof ConfigError ? e.problems.map(formatProblem) : [(e as Error).message];
      logger.error({ code: 'CONFIG_INVALID', problems }, 'configuration reload rejected; keeping the running configuration');
      return { ok: false, problems };
    }
  };

  const server = buildServer({
    reload: reloadFromFile,
    logger,
    metrics,
    intake,
    webhookPath: config.webhook.path,
    bodyLimit: config.webhook.body_limit,
    limits: {
      requestTimeoutMs: config.webhook.request_timeout,
      headerTimeoutMs: config.webhook.header_timeout,
      keepAliveTimeoutMs: config.webhook.keep_alive_timeout,
      maxRequestsPerSocket: config.webhook.max_requests_per_socket,
      maxConnections: config.webhook.max_connections,
    },
    token: () => token,
    adminToken: () => admin,
    metricsAuth: () => config.metrics.auth,
    timezoneOffsetMinutes: () => config.zabbix.timezone_offset_minutes,
    readiness,
    isStopping: () => stopping,
    scrape: async () => {
      const s = store.stats();
      metrics.queueDepth.set({ state: 'pending' }, s.pending);
      metrics.queueDepth.set({ state: 'running' }, s.running);
      metrics.queueDepth.set({ state: 'dead' }, s.dead);
      metrics.inboxDepth.set(s.unprocessed);
      metrics.oldestPendingAge.set(s.oldestPendingAt !== undefined ? (clock.now() - s.oldestPendingAt) / 1000 : 0);
      return mergedExposition(metrics.registry, processing ? [await processing.metrics()] : []);
    },
  });

  const stop = (failed = false): Promise<number> => {
    stopped ??= (async () => {
      stopping = true;
      let code = 0;
      const step = async (name: string, fn: () => Promise<unknown> | unknown) => {
        try {
          await fn();
        } catch (e) {
          code = 1;
          logger.error({ step: name, err: (e as Error).message }, 'shutdown step failed');
        }
      };
      if (pruneTimer) clearInterval(pruneTimer);
      await step('close listener', () => server.close());
      await step('stop poller', () => poller?.stop());
      // Decides on the rest of the inbox, drains GLPI jobs, closes the GLPI session.
      await step('stop processing thread', async () => {
        if (!processing) return;
        const r = await processing.stop(DRAIN_TIMEOUT_MS);
        if (r.code !== 0) throw new Error('the processing thread did not stop cleanly');
      });
      if (code === 0) await step('mark clean stop', () => store.recordCleanStop());
      await step('close store', () => store.close());
      // The code the process exits with: the log line and the exit status must agree.
      const exitCode = failed ? 1 : code;
      logger.info({ exit_code: exitCode }, 'bridge stopped');
      return exitCode;
    })();
    return stopped;
  };

  return {
    config: () => config,
    reloadFromFile,
    server,
    store,
    metrics,
    async start() {
      const [host, port] = splitListen(config.listen);
      processing = new ProcessingThread(config, store.lastDeliveryId(), deps.logsToStdout ? 'stdout' : logSink(logger), logger, (reason) => {
        if (stopping) return;
        logger.fatal({ reason, code: 'BRIDGE_PROCESSING_FAILED' }, 'the processing thread stopped unexpectedly; stopping the bridge so that it is restarted');
        void stop(true).then(() => deps.onFatal?.(reason));
      });
      await processing.ready();
      writeCheck = checkWrite(clock.now());
      // The inbox is written on this thread only.
      pruneTimer = setInterval(() => {
        try {
          store.pruneDeliveries(clock.now(), config.store.retention);
        } catch (e) {
          logger.warn({ err: (e as Error).message }, 'pruning old deliveries failed');
        }
      }, config.store.prune_interval);
      pruneTimer.unref();
      const address = await server.listen({ host, port });
      poller?.start(config.zabbix.poll.schedule);
      logger.info({ address, webhook: config.webhook.path, store: store.file, glpi: config.glpi.url, zabbix_api: config.zabbix.url || undefined }, 'bridge started');
      return address;
    },
    reload: applyConfig,
    stop,
  };
}

export function splitListen(listen: string): [string, number] {
  const i = listen.lastIndexOf(':');
  return [listen.slice(0, i).replace(/^\[|\]$/g, ''), Number(listen.slice(i + 1))];
}
