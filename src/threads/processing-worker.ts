/**
 * The processing thread: decisions (inbox → action queue), the GLPI and
 * Zabbix write-back dispatcher and store housekeeping, on their own
 * connection to the state file. The main thread keeps the HTTP intake, so
 * answering Zabbix never waits for decisions or GLPI.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { pino } from 'pino';
import { systemClock } from '../adapters/clock.js';
import { ensureMarkerKey } from '../adapters/marker-key.js';
import { SqliteStore } from '../adapters/store/sqlite-store.js';
import { dispatcherOptions, glpiClient, processingSettings, storeFile, zabbixApi } from '../components.js';
import { fromTransferable } from '../config/thread-transfer.js';
import { createLogger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { Dispatcher } from '../services/dispatcher.js';
import { Processor } from '../services/processor.js';
import type { FromProcessing, ProcessingInit, ProcessingStatus, ToProcessing } from './messages.js';

if (!parentPort) throw new Error('processing-worker.js runs as a worker thread of the bridge; start the bridge with "zabbix-glpi-bridge run"');
const port = parentPort;
const send = (m: FromProcessing): void => port.postMessage(m);

/** Log lines are written by the main thread's logger destination, a batch per event-loop turn. */
let lines: string[] = [];
const flushLogs = (): void => {
  if (lines.length === 0) return;
  send({ t: 'log', text: lines.join('') });
  lines = [];
};
const logDestination = {
  write(line: string): void {
    if (lines.length === 0) setImmediate(flushLogs);
    lines.push(line);
  },
};

/**
 * Under a storm the cores go to answering Zabbix first: this thread runs at
 * the lowest scheduling priority (Linux: per-thread nice value), so decisions
 * use the CPU the intake (and the Zabbix server beside it) leave, and catch
 * up after the burst; the inbox holds the backlog. Best effort.
 */
function lowerPriority(): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, PROCESSING_NICE);
  } catch {
    // Not Linux, or not allowed: same priority as the intake.
  }
}
const PROCESSING_NICE = 19;
const CHECKPOINT_EVERY_MS = 1_000;

const init = workerData as ProcessingInit;
let config = fromTransferable(init.config);
const markerKey = ensureMarkerKey(config.data_dir);
let settings = processingSettings(config, markerKey);
const logger = createLogger(config.log_level, init.logToStdout ? pino.destination({ dest: 1, sync: true }) : logDestination);
const metrics = createMetrics({ processMetrics: false });
const clock = systemClock;
const store = new SqliteStore(storeFile(config), { synchronous: config.store.synchronous, maxSizeBytes: config.store.max_size });
const glpi = glpiClient(config, logger.child({ component: 'glpi' }), metrics);
const zabbix = zabbixApi(config, logger.child({ component: 'zabbix' }));
const dispatcher = new Dispatcher(store, glpi, clock, logger.child({ component: 'dispatcher' }), metrics, {
  ...dispatcherOptions(config),
  ...(zabbix && config.zabbix.write_back.enabled ? { writeBack: { zabbix, prefix: config.zabbix.write_back_prefix, acknowledge: config.zabbix.write_back.acknowledge } } : {}),
  // Both run on this thread: a closed ticket's new cycle is decided at once, and held creates wait for the decisions behind them.
  onTicketClosed: (job, ticketId) => processor.ticketClosed(job.fingerprint, job.cycle, ticketId),
  createHorizon: (now) => processor.decidedHorizon(now),
});
const processor: Processor = new Processor(store, () => settings, clock, logger.child({ component: 'processor' }), metrics, () => dispatcher.wake());

const status = (): ProcessingStatus => ({ session: glpi.sessionState, ...(glpi.lastLoginError !== undefined ? { lastLoginError: glpi.lastLoginError } : {}) });

const pruneTimer = setInterval(() => {
  try {
    processor.prune(clock.now(), config.store.retention);
  } catch (e) {
    logger.warn({ err: (e as Error).message }, 'pruning finished jobs failed');
  }
}, config.store.prune_interval);
// The intake's connection leaves the inbox's WAL to this thread.
const checkpointTimer = setInterval(() => {
  try {
    store.checkpointInbox();
  } catch (e) {
    logger.warn({ err: (e as Error).message }, 'checkpointing the inbox failed');
  }
}, CHECKPOINT_EVERY_MS);

async function stop(timeoutMs: number): Promise<void> {
  clearInterval(pruneTimer);
  clearInterval(checkpointTimer);
  let code = 0;
  let jobsLeft = 0;
  try {
    processor.drain();
    jobsLeft = await dispatcher.stop(timeoutMs);
    if (jobsLeft > 0) logger.warn({ jobs: jobsLeft }, 'jobs still in flight at shutdown; they are retried at next start');
    await glpi.close();
  } catch (e) {
    code = 1;
    logger.error({ err: (e as Error).message }, 'stopping the processing thread failed');
  }
  store.close();
  flushLogs();
  send({ t: 'stopped', code, jobsLeft });
  port.close();
}

port.on('message', (m: ToProcessing) => {
  switch (m.t) {
    case 'wake':
      processor.admit(m.durableThrough);
      processor.schedule();
      break;
    case 'reload':
      config = fromTransferable(m.config);
      settings = processingSettings(config, markerKey);
      break;
    case 'metrics':
      void metrics.registry.getMetricsAsJSON().then((snapshot) => send({ t: 'metrics', id: m.id, snapshot }));
      break;
    case 'status':
      send({ t: 'status', id: m.id, status: status() });
      break;
    case 'stop':
      void stop(m.timeoutMs);
      break;
  }
});

lowerPriority();
dispatcher.start();
processor.admit(init.durableThrough);
processor.schedule();
send({ t: 'ready' });
