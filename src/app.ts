import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { ConfigError, formatProblem } from './config/load.js';
import type { Config } from './config/schema.js';
import type { TicketDesk } from './core/ports.js';
import { systemClock, type Clock } from './adapters/clock.js';
import { GlpiClient } from './adapters/glpi/client.js';
import { buildServer, type ReadinessCheck } from './adapters/http/server.js';
import { SqliteStore } from './adapters/store/sqlite-store.js';
import { ZabbixApi } from './adapters/zabbix/api-client.js';
import type { Logger } from './observability/logger.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { Dispatcher } from './services/dispatcher.js';
import { Intake } from './services/intake.js';
import { Poller } from './services/poller.js';
import { Processor, type ProcessingSettings } from './services/processor.js';

export interface AppDeps {
  readonly logger: Logger;
  readonly clock?: Clock;
  /** Replace the GLPI client (tests, demo). */
  readonly desk?: TicketDesk;
  /** Read the configuration file again (reload on SIGHUP and POST /-/reload). */
  readonly loadConfig?: () => Config;
}

/** The GLPI client the configuration describes. */
export function glpiClient(c: Config, logger: Logger, metrics?: Metrics): GlpiClient {
  return new GlpiClient({
    url: c.glpi.url,
    appToken: c.glpi.app_token,
    userToken: c.glpi.user_token,
    username: c.glpi.username,
    password: c.glpi.password,
    timeoutMs: c.glpi.timeout,
    logger,
    ...(metrics ? { metrics } : {}),
  });
}

/** The Zabbix API client, when zabbix.url is set. */
export function zabbixApi(c: Config, logger: Logger): ZabbixApi | undefined {
  if (c.zabbix.url === '') return undefined;
  return new ZabbixApi({ url: c.zabbix.url, token: c.zabbix.api_token, authMode: c.zabbix.auth, timeoutMs: c.zabbix.timeout, logger });
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
  /** Stop intake, finish or park work in flight, close the store. Safe to call twice; resolves with an exit code. */
  stop(): Promise<number>;
}

/** A queue whose oldest job waits longer than this is reported as stuck by /readyz. */
const STUCK_AFTER_MS = 15 * 60_000;
const DRAIN_TIMEOUT_MS = 10_000;

export function processingSettings(c: Config): ProcessingSettings {
  return {
    rules: c.rules,
    fingerprintFields: c.correlation.fingerprint,
    coalesceWindowMs: c.correlation.coalesce_window,
    policy: {
      holdDownMs: c.correlation.hold_down,
      reopenWindowMs: c.correlation.reopen_window,
      recovery: c.glpi.recovery,
      followupPrivate: c.glpi.followup_private,
      writeBackPrefix: c.zabbix.write_back_prefix,
    },
  };
}

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

export function storeFile(c: Config): string {
  return join(c.data_dir, c.store.file);
}

/** Composition root: wires adapters into services. No globals; only main.ts touches signals and exit codes. */
export function buildApp(initial: Config, deps: AppDeps): App {
  let config = initial;
  let settings = processingSettings(config);
  let token = webhookToken(config, deps.logger);
  const logger = deps.logger;
  const clock = deps.clock ?? systemClock;
  const metrics = createMetrics();
  const store = new SqliteStore(storeFile(config), config.store.synchronous, config.store.max_size);
  const glpi = deps.desk ?? glpiClient(config, logger.child({ component: 'glpi' }), metrics);
  const zabbix = zabbixApi(config, logger.child({ component: 'zabbix' }));
  const dispatcher = new Dispatcher(store, glpi, clock, logger.child({ component: 'dispatcher' }), metrics, {
    ...(zabbix && config.zabbix.write_back.enabled ? { writeBack: { zabbix, prefix: config.zabbix.write_back_prefix, acknowledge: config.zabbix.write_back.acknowledge } } : {}),
    concurrency: config.glpi.max_concurrency,
    quickRetries: config.retry.attempts,
    quickMinDelayMs: config.retry.min_delay,
    quickMaxDelayMs: config.retry.max_delay,
    minDelayMs: config.retry.min_delay,
    backoffCapMs: config.retry.backoff_cap,
    solutionTypeId: config.glpi.solution_type_id,
  });
  const processor = new Processor(store, () => settings, clock, logger.child({ component: 'processor' }), metrics, () => dispatcher.wake());
  const intake = new Intake(store, clock, logger.child({ component: 'intake' }), metrics, () => processor.schedule());
  const poller = zabbix && config.zabbix.poll.enabled ? new Poller(zabbix, store, intake, logger.child({ component: 'poller' }), metrics, { hostGroups: config.zabbix.poll.host_groups, minSeverity: config.zabbix.poll.min_severity }) : undefined;
  let stopping = false;
  let stopped: Promise<number> | undefined;
  let pruneTimer: NodeJS.Timeout | undefined;

  const readiness = (): Record<string, ReadinessCheck> => {
    const now = clock.now();
    let storeCheck: ReadinessCheck = { ok: true, detail: 'writable' };
    try {
      store.checkWritable(now);
      if (intake.storeError) storeCheck = { ok: false, detail: `last commit failed: ${intake.storeError}` };
    } catch (e) {
      storeCheck = { ok: false, detail: `not writable: ${(e as Error).message}` };
    }
    const session = glpi instanceof GlpiClient ? glpi.sessionState : 'open';
    const glpiCheck: ReadinessCheck =
      session === 'login_failed'
        ? { ok: false, detail: `GLPI_LOGIN_FAILED: ${glpi instanceof GlpiClient ? (glpi.lastLoginError ?? '') : ''}` }
        : { ok: true, detail: `session ${session}` };
    const stats = store.stats();
    const age = stats.oldestPendingAt !== undefined ? now - stats.oldestPendingAt : 0;
    const queueCheck: ReadinessCheck =
      age > STUCK_AFTER_MS
        ? { ok: false, detail: `oldest job waiting ${Math.round(age / 1000)} s (${stats.pending} pending, ${stats.dead} dead)` }
        : { ok: true, detail: `${stats.pending} pending, ${stats.running} running, ${stats.dead} dead` };
    const checks: Record<string, ReadinessCheck> = { store: storeCheck, glpi: glpiCheck, queue: queueCheck, intake: stopping ? { ok: false, detail: 'stopping' } : { ok: true, detail: 'accepting' } };
    // Informational: the webhook keeps working while the Zabbix API is unreachable.
    if (poller) checks.zabbix_poll = { ok: true, detail: poller.lastError ? `last sweep failed: ${poller.lastError}` : poller.lastSuccessAt ? `last sweep ${new Date(poller.lastSuccessAt).toISOString()}` : 'no sweep yet' };
    return checks;
  };

  const applyConfig = (next: Config): void => {
    config = next;
    settings = processingSettings(next);
    token = webhookToken(next, logger);
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
    token: () => token,
    timezoneOffsetMinutes: () => config.zabbix.timezone_offset_minutes,
    readiness,
    isStopping: () => stopping,
    beforeScrape: () => {
      const s = store.stats();
      metrics.queueDepth.set({ state: 'pending' }, s.pending);
      metrics.queueDepth.set({ state: 'running' }, s.running);
      metrics.queueDepth.set({ state: 'dead' }, s.dead);
      metrics.inboxDepth.set(s.unprocessed);
      metrics.oldestPendingAge.set(s.oldestPendingAt !== undefined ? (clock.now() - s.oldestPendingAt) / 1000 : 0);
    },
  });

  return {
    config: () => config,
    reloadFromFile,
    server,
    store,
    metrics,
    async start() {
      const [host, port] = splitListen(config.listen);
      processor.drain();
      dispatcher.start();
      pruneTimer = setInterval(() => {
        try {
          store.pruneFinished(clock.now() - 3_600_000);
          store.pruneDeliveries(clock.now() - config.store.retention);
        } catch (e) {
          logger.warn({ err: (e as Error).message }, 'pruning old state failed');
        }
      }, 600_000);
      pruneTimer.unref();
      const address = await server.listen({ host, port });
      poller?.start(config.zabbix.poll.schedule);
      logger.info({ address, webhook: config.webhook.path, store: store.file, glpi: config.glpi.url, zabbix_api: config.zabbix.url || undefined }, 'bridge started');
      return address;
    },
    reload: applyConfig,
    stop() {
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
        await step('process inbox', () => processor.drain());
        await step('drain GLPI jobs', async () => {
          const left = await dispatcher.stop(DRAIN_TIMEOUT_MS);
          if (left > 0) logger.warn({ jobs: left }, 'jobs still in flight at shutdown; they are retried at next start');
        });
        await step('close GLPI session', () => (glpi instanceof GlpiClient ? glpi.close() : undefined));
        if (code === 0) await step('mark clean stop', () => store.endRun());
        await step('close store', () => store.close());
        logger.info({ exit_code: code }, 'bridge stopped');
        return code;
      })();
      return stopped;
    },
  };
}

export function splitListen(listen: string): [string, number] {
  const i = listen.lastIndexOf(':');
  return [listen.slice(0, i).replace(/^\[|\]$/g, ''), Number(listen.slice(i + 1))];
}
