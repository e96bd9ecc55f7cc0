import { systemClock } from '../adapters/clock.js';
import { lowerThisThread } from '../adapters/cpu-priority.js';
import type { SessionState } from '../adapters/glpi/connection.js';
import { ensureMarkerKey } from '../adapters/marker-key.js';
import type { Config } from '../config/schema.js';
import type { Clock, ProblemDesk, QueueStats, TicketWatch } from '../core/ports.js';
import type { Logger } from '../observability/logger.js';
import { createMetrics, setQueueGauges, type Metrics, type MetricsSnapshot } from '../observability/metrics.js';
import { Dispatcher } from '../services/dispatcher.js';
import { Processor } from '../services/processor.js';
import { glpiClient, zabbixApi } from './clients.js';
import { dispatcherOptions, nameSettings, processingSettings } from './from-config.js';
import { openProcessingSideStore } from './store.js';
import { NameResolver, problemRoutingDesk, routingDesk } from '../services/glpi-names.js';
import { ValueHistory } from '../services/value-history.js';
import { GlpiWatcher } from '../services/glpi-watcher.js';
import { deciderRole } from './cluster.js';

/** What the processing side reports for /readyz. */
export interface ProcessingStatus {
  readonly session: SessionState;
  /** GLPI's error code of the last refused login (its text stays in the log). */
  readonly lastLoginError?: string;
  /** The queue as /readyz reports it, read on this side (off the thread answering webhooks); or why it cannot be read. */
  readonly queue: { readonly ok: true; readonly stats: QueueStats } | { readonly ok: false; readonly error: string };
}

/**
 * The processing side of the bridge, built and running: decisions (inbox →
 * action queue), the GLPI and Zabbix write-back dispatcher and the state's
 * housekeeping, on its own connection to the state file. It runs in the
 * processing thread (threads/processing-worker.ts), or in the caller's
 * thread in tests (threads/in-process.ts).
 */
export interface ProcessingSide {
  /** Deliveries up to this id are on disk: decide on them. */
  wake(durableThrough: number): void;
  reload(config: Config): void;
  status(): ProcessingStatus;
  metrics(): Promise<MetricsSnapshot>;
  /** Decide on what is left, let jobs in flight finish (up to timeoutMs), close the GLPI session and the store. */
  stop(timeoutMs: number): Promise<{ code: number; jobsLeft: number }>;
}

export interface ProcessingOptions {
  readonly logger: Logger;
  readonly clock?: Clock;
  /** Deliveries up to this id are on disk at start. */
  readonly durableThrough: number;
  /** Lower this thread's scheduling priority (only where it has a thread of its own). */
  readonly lowPriority?: boolean;
  /** Whether Zabbix is queueing on the intake right now (the processing thread: WakeSignal.intakeBusy); decisions yield to it (Processor). */
  readonly intakeBusy?: () => boolean;
}

/** /metrics and /readyz read the queue's counts at most this often. */
const QUEUE_READ_EVERY_MS = 1_000;
/** The intake's connection leaves the inbox's WAL to this side. */
const CHECKPOINT_EVERY_MS = 1_000;

/** Whether the GLPI adapter speaks Problems and ITIL links (core/ports.ts ProblemDesk). */
function isProblemDesk(glpi: object): glpi is ProblemDesk {
  return 'findProblemsByMarker' in glpi && 'linkProblemTicket' in glpi;
}

/** Whether the GLPI adapter can read the bridge's tickets back (core/ports.ts TicketWatch; the legacy API's search). */
function isTicketWatch(glpi: object): glpi is TicketWatch {
  return 'ticketsModifiedSince' in glpi;
}

/**
 * The marker key: this data_dir's, or, with several bridges on one PostgreSQL, the one the cluster stores (the
 * first node's, or the SQLite bridge's that migrate-store copied), so that every node renders the same markers.
 */
function clusterMarkerKey(store: object, local: string, logger: Logger): string {
  if (!('sharedMarkerKey' in store) || typeof store.sharedMarkerKey !== 'function') return local;
  const shared = (store.sharedMarkerKey as (offered: string) => string)(local);
  if (shared !== local) logger.warn({ code: 'MARKER_KEY_FROM_DATABASE' }, "this node's data_dir marker-key differs from the one the bridges on this database share: the database's is used (markers stay the same on every node)");
  return shared;
}

/** Build the processing side from the configuration and start it. */
export function startProcessing(initial: Config, options: ProcessingOptions): ProcessingSide {
  const { logger } = options;
  const clock = options.clock ?? systemClock;
  let config = initial;
  const metrics: Metrics = createMetrics({ processMetrics: false });
  const store = openProcessingSideStore(config);
  const markerKey = clusterMarkerKey(store, ensureMarkerKey(config.data_dir), logger);
  let settings = processingSettings(config, markerKey);
  const glpi = glpiClient(config, logger.child({ component: 'glpi' }), metrics);
  const zabbix = zabbixApi(config, logger.child({ component: 'zabbix' }));
  // Rules' names and hosts' assets are resolved when a create runs, through a cache (services/glpi-names.ts says why); warmed at start and reload.
  const names = new NameResolver(glpi, clock, logger.child({ component: 'glpi-names' }), metrics, () => nameSettings(config));
  void names.warm(config.rules, 'start').catch(() => undefined);
  // zabbix.value_history: the item's last values appended to each new ticket's body when its create runs.
  const history = zabbix && new ValueHistory(zabbix, () => ({ enabled: config.zabbix.value_history.enabled, count: config.zabbix.value_history.count, timeoutMs: config.zabbix.value_history.timeout }), logger.child({ component: 'value-history' }), metrics);
  const desk = routingDesk(glpi, names);
  const dispatcher = new Dispatcher(store, history ? history.desk(desk) : desk, clock, logger.child({ component: 'dispatcher' }), metrics, {
    ...dispatcherOptions(config),
    // Narrowed exactly while decisions wait (Processor.holdsBack): past its time bound both run at full speed.
    ...(options.intakeBusy ? { intakeBusy: () => processor.holdsBack() } : {}),
    // GLPI Problems (issue 14 item 1): both APIs create and find them; v2 has no link routes (the adapter says the links in follow-ups, docs/glpi-api-v2.md).
    ...(isProblemDesk(glpi) ? { problems: problemRoutingDesk(glpi, names) } : {}),
    ...(zabbix && config.zabbix.write_back.enabled ? { writeBack: { zabbix, prefix: config.zabbix.write_back_prefix, acknowledge: config.zabbix.write_back.acknowledge } } : {}),
    // Both run on this side: a closed ticket's new cycle is decided at once, and held creates wait for the decisions behind them.
    onTicketClosed: (job, ticketId) => (decider ? decider.ticketClosed(job.fingerprint, job.cycle, ticketId, clock.now()) : processor.ticketClosed(job.fingerprint, job.cycle, ticketId)),
    createHorizon: (now) => processor.decidedHorizon(now),
  });
  const processor: Processor = new Processor(store, () => settings, clock, logger.child({ component: 'processor' }), metrics, () => dispatcher.wake(), options.intakeBusy);

  const pruneTimer = setInterval(() => {
    if (decider && !decider.holds()) return;
    try {
      processor.prune(clock.now(), config.store.retention);
    } catch (e) {
      logger.warn({ err: (e as Error).message }, 'pruning finished jobs failed');
    }
  }, config.store.prune_interval);
  const checkpointTimer = setInterval(() => {
    try {
      store.checkpointInbox();
    } catch (e) {
      logger.warn({ err: (e as Error).message }, 'checkpointing the inbox failed');
    }
  }, CHECKPOINT_EVERY_MS);
  pruneTimer.unref();
  checkpointTimer.unref();

  // Issue 14 item 5: the bridge's tickets read back from GLPI on the poller's schedule (services/glpi-watcher.ts says why on this side).
  const wb = config.zabbix.write_back;
  const watcher =
    zabbix && wb.enabled && wb.glpi_status && isTicketWatch(glpi)
      ? new GlpiWatcher(glpi, store, clock, logger.child({ component: 'glpi-watch' }), metrics, () => ({ writeBackPrefix: config.zabbix.write_back_prefix, closeProblem: config.zabbix.write_back.close_problem, mirrorFollowups: config.zabbix.write_back.mirror_followups }), () => dispatcher.wake())
      : undefined;
  if (wb.glpi_status && !watcher) logger.warn({ zabbix_api: Boolean(zabbix), write_back: wb.enabled, glpi_api: config.glpi.api }, 'zabbix.write_back.glpi_status is on but cannot run: it needs zabbix.url and zabbix.write_back.enabled');

  // Several bridges on one PostgreSQL: decisions, closed tickets' handovers, the read-back and housekeeping on one node at a time (composition/cluster.ts).
  const decider = deciderRole(store, {
    logger, metrics, schedule: () => processor.schedule(), forget: () => processor.forget(), ticketClosed: (fp, cycle, ticketId) => processor.ticketClosed(fp, cycle, ticketId),
    ...(watcher ? { bound: { task: watcher, schedule: config.zabbix.poll.schedule } } : {}),
  });

  if (options.lowPriority) {
    // Under a storm the cores go to answering Zabbix first: decisions use the CPU the intake leaves (adapters/cpu-priority.ts).
    const lowered = lowerThisThread();
    logger.info({ cpu_policy: lowered.policy, ...('why' in lowered ? { why: lowered.why } : {}) }, lowered.policy === 'idle' ? 'processing thread runs at SCHED_IDLE: webhooks come first' : 'processing thread could not be set to SCHED_IDLE; webhooks may wait for it under load');
  }
  dispatcher.start();
  processor.admit(options.durableThrough);
  processor.schedule();
  if (!decider) watcher?.start(config.zabbix.poll.schedule);

  // The queue's counts for /metrics and /readyz: read here, not on the main thread, where a scan of a long queue
  // held every webhook behind it (6-9 ms a scrape, up to 180 ms under a backlog). Read at most once a second.
  let queueRead: { at: number; q: ProcessingStatus['queue'] } | undefined;
  const readQueue = (): ProcessingStatus['queue'] => {
    const now = clock.now();
    if (queueRead && now - queueRead.at < QUEUE_READ_EVERY_MS) return queueRead.q;
    let q: ProcessingStatus['queue'];
    try {
      q = { ok: true, stats: store.stats() };
    } catch (e) {
      q = { ok: false, error: (e as Error).message };
    }
    queueRead = { at: now, q };
    return q;
  };

  return {
    wake(durableThrough) {
      processor.admit(durableThrough);
      processor.schedule();
    },
    reload(next) {
      config = next;
      settings = processingSettings(config, markerKey);
      void names.warm(config.rules, 'reload').catch(() => undefined);
    },
    status: () => ({ session: glpi.sessionState, ...(glpi.lastLoginError !== undefined ? { lastLoginError: glpi.lastLoginError } : {}), queue: readQueue() }),
    metrics: () => {
      const q = readQueue();
      // A store that cannot be read (PostgreSQL down) leaves the gauges at their last values: /readyz says why.
      if (q.ok) setQueueGauges(metrics, q.stats, clock.now());
      return metrics.registry.getMetricsAsJSON();
    },
    async stop(timeoutMs) {
      clearInterval(pruneTimer);
      clearInterval(checkpointTimer);
      await watcher?.stop();
      let code = 0;
      let jobsLeft = 0;
      try {
        processor.drain();
        await decider?.stop(); // the other nodes need not wait for this one's jobs to take over the decisions
        jobsLeft = await dispatcher.stop(timeoutMs);
        if (jobsLeft > 0) logger.warn({ jobs: jobsLeft }, 'jobs still in flight at shutdown; they are retried at next start');
        await glpi.close();
        // Everything in flight finished or is parked: the next start need not doubt the queued creates.
        store.recordCleanStop();
      } catch (e) {
        code = 1;
        logger.error({ err: (e as Error).message }, 'stopping the processing thread failed');
      }
      store.close();
      return { code, jobsLeft };
    },
  };
}
