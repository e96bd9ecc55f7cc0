import type { FastifyInstance } from 'fastify';
import { systemClock } from './adapters/clock.js';
import { buildServer } from './adapters/http/server.js';
import type { IntakeStore } from './adapters/store/sqlite/index.js';
import { announceNode, clusterSummary, pollerRole } from './composition/cluster.js';
import { buildIntakeSide } from './composition/intake.js';
import type { ProcessingStatus } from './composition/processing.js';
import { readinessProbe } from './composition/readiness.js';
import { statusSources } from './composition/status.js';
import { adminToken, webhookToken } from './composition/tokens.js';
import { ConfigError, formatProblem } from './config/load.js';
import type { Config } from './config/schema.js';
import type { Logger } from './observability/logger.js';
import { createMetrics, mergedExposition, setQueueGauges, type Metrics } from './observability/metrics.js';
import type { LogSink, ProcessingHandle } from './threads/handle.js';
import { ProcessingThread } from './threads/processing-thread.js';

export interface AppDeps {
  readonly logger: Logger;
  /**
   * Where the logger writes, for the processing side's lines: 'stdout' (the daemon: the processing thread
   * writes its lines to file descriptor 1 itself) or the logger's own destination stream.
   */
  readonly logDestination: LogSink | 'stdout';
  /** Read the configuration file again (reload on SIGHUP and POST /-/reload). */
  readonly loadConfig?: () => Config;
  /** The processing side runs in its own thread (the daemon), or in this one (tests). */
  readonly processing?: 'thread' | 'in-process';
  /** The processing thread died on its own: the daemon stops (and systemd starts it again). */
  readonly onFatal?: (reason: string) => void;
}

export interface App {
  readonly config: () => Config;
  readonly server: FastifyInstance;
  readonly store: IntakeStore;
  readonly metrics: Metrics;
  /** The processing side's GLPI session (systemd's STATUS= line); undefined when it does not answer. */
  processingStatus(): Promise<ProcessingStatus | undefined>;
  /** Start processing and listen; resolves with the address. */
  start(): Promise<string>;
  /** Swap in a new, already validated configuration (rules, correlation, tokens). */
  reload(next: Config): void;
  /** Re-read the configuration file and apply it, or keep the running one and return the problems. */
  reloadFromFile(): ReloadResult;
  /**
   * Stop intake, finish or park work in flight, close the store. Safe to call twice; resolves with the
   * process exit code, also logged: 1 when a shutdown step failed, or after a `failure` (the bridge could
   * not start, or its processing thread died).
   */
  stop(why?: 'requested' | 'failure'): Promise<number>;
}

export type ReloadResult = { ok: true; summary: Record<string, unknown> } | { ok: false; problems: string[] };

const DRAIN_TIMEOUT_MS = 10_000;

/**
 * The bridge: the main thread's side (HTTP intake, inbox, poller;
 * composition/intake.ts) and a handle on the processing side (decisions and
 * GLPI dispatch; composition/processing.ts, in its own thread). Build, start,
 * reload, stop — in that order below. No globals; only cli/run.ts touches
 * signals and exit codes.
 */
export function buildApp(initial: Config, deps: AppDeps): App {
  const { logger } = deps;
  const clock = systemClock;
  const metrics = createMetrics();
  let config = initial;
  let token = webhookToken(config, logger);
  let admin = adminToken(config, token, logger);
  let processing: ProcessingHandle | undefined;
  let stopping = false;
  let stopped: Promise<number> | undefined;
  let pruneTimer: NodeJS.Timeout | undefined;

  // ---- build
  const { store, intake, poller } = buildIntakeSide(config, {
    logger,
    metrics,
    clock,
    onCommitted: (through, webhooks) => {
      readiness.committed();
      processing?.wake(through, webhooks);
    },
  });
  // Several bridges on one PostgreSQL: the poller runs on one node at a time (composition/cluster.ts); one node: as is.
  announceNode(store, logger);
  const polling = poller && pollerRole(store, poller, logger, metrics);
  const readiness = readinessProbe({
    clock,
    checkWritable: (now) => store.checkWritable(now),
    storeError: () => intake.storeError,
    processing: () => processing,
    poller: () => poller,
    stopping: () => stopping,
    cluster: () => clusterSummary(store),
  });
  const server = buildServer({
    logger,
    metrics,
    intake,
    reload: () => reloadFromFile(),
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
    readiness: () => readiness.check(),
    isStopping: () => stopping,
    scrape: async () => {
      const snapshot = processing ? await processing.metrics() : [];
      // The queue gauges are set by the processing side (composition/processing.ts), which reads the queue off this
      // thread. When it does not answer in time (overloaded), they are read here: an empty queue must not be shown.
      metrics.queueDepth.reset();
      metrics.inboxDepth.set(0);
      metrics.oldestPendingAge.set(0);
      if (snapshot.length === 0) {
        try {
          setQueueGauges(metrics, store.stats(), clock.now());
        } catch {
          // The store cannot be read either (PostgreSQL down): /readyz says why.
        }
      }
      return mergedExposition(metrics.registry, snapshot.length > 0 ? [snapshot] : []);
    },
    status: statusSources(() => config, store),
  });

  // ---- start
  const startProcessingSide = async (): Promise<ProcessingHandle> => {
    const durableThrough = store.lastDeliveryId();
    if (deps.processing === 'in-process') {
      // Tests only: the daemon's main thread never loads the processing side (decisions, GLPI clients, axios).
      const { InProcessProcessing } = await import('./threads/in-process.js');
      return new InProcessProcessing(config, durableThrough, logger);
    }
    return new ProcessingThread(config, durableThrough, deps.logDestination, logger, (reason) => {
      if (stopping) return;
      logger.fatal({ reason, code: 'BRIDGE_PROCESSING_FAILED' }, 'the processing thread stopped unexpectedly; stopping the bridge so that it is restarted');
      void stop('failure').then(() => deps.onFatal?.(reason));
    });
  };

  const start = async (): Promise<string> => {
    processing = await startProcessingSide();
    await processing.ready();
    readiness.verifyNow();
    // The inbox is written on this thread only.
    pruneTimer = setInterval(() => {
      try {
        store.pruneDeliveries(clock.now(), config.store.retention);
      } catch (e) {
        logger.warn({ err: (e as Error).message }, 'pruning old deliveries failed');
      }
    }, config.store.prune_interval);
    pruneTimer.unref();
    const [host, port] = splitListen(config.listen);
    const address = await server.listen({ host, port });
    polling?.start(config.zabbix.poll.schedule);
    logger.info({ address, webhook: config.webhook.path, store: store.file, glpi: config.glpi.url, zabbix_api: config.zabbix.url || undefined }, 'bridge started');
    return address;
  };

  // ---- reload
  const reload = (next: Config): void => {
    config = next;
    processing?.reload(next);
    token = webhookToken(next, logger);
    admin = adminToken(next, token, logger);
    metrics.configReloads.inc({ result: 'success' });
    logger.info({ config: next.sources.config, rules: next.sources.rules, categories: next.rules.categories.map((c) => c.name) }, 'configuration reloaded');
  };

  /** Load and apply the configuration file again; an invalid one is rejected and the running one kept. */
  const reloadFromFile = (): ReloadResult => {
    if (!deps.loadConfig) return { ok: false, problems: ['no configuration file to reload from'] };
    try {
      const next = deps.loadConfig();
      reload(next);
      return { ok: true, summary: { config: next.sources.config, rules: next.sources.rules, categories: next.rules.categories.map((c) => c.name) } };
    } catch (e) {
      metrics.configReloads.inc({ result: 'failure' });
      const problems = e instanceof ConfigError ? e.problems.map(formatProblem) : [(e as Error).message];
      logger.error({ code: 'CONFIG_INVALID', problems }, 'configuration reload rejected; keeping the running configuration');
      return { ok: false, problems };
    }
  };

  // ---- stop
  const stop = (why: 'requested' | 'failure' = 'requested'): Promise<number> => {
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
      await step('stop poller', () => polling?.stop());
      // Decides on the rest of the inbox, drains GLPI jobs, closes the GLPI session, records the clean stop.
      await step('stop processing thread', async () => {
        if (!processing) return;
        const r = await processing.stop(DRAIN_TIMEOUT_MS);
        if (r.code !== 0) throw new Error('the processing thread did not stop cleanly');
      });
      await step('close store', () => store.close());
      // The code the process exits with: the log line and the exit status must agree.
      const exitCode = why === 'failure' ? 1 : code;
      logger.info({ exit_code: exitCode }, 'bridge stopped');
      return exitCode;
    })();
    return stopped;
  };

  const processingStatus = async () => processing?.status();
  return { config: () => config, server, store, metrics, processingStatus, start, reload, reloadFromFile, stop };
}

export function splitListen(listen: string): [string, number] {
  const i = listen.lastIndexOf(':');
  return [listen.slice(0, i).replace(/^\[|\]$/g, ''), Number(listen.slice(i + 1))];
}
