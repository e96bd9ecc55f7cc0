/**
 * The processing thread's entry point: builds the processing side
 * (composition/processing.ts) from the configuration it is started with and
 * answers the main thread's messages. Its log lines go to standard output
 * itself (the daemon) or to the main thread's logger destination.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { startProcessing } from '../composition/processing.js';
import { loadStoreBackend } from '../composition/store.js';
import { fromTransferable } from '../config/thread-transfer.js';
import { batchedStdout, createLogger } from '../observability/logger.js';
import { WAKE_POLL_MS, WakeSignal, type FromProcessing, type ProcessingInit, type ToProcessing } from './messages.js';

if (!parentPort) throw new Error('processing-worker.js runs as a worker thread of the bridge; start the bridge with "zabbix-glpi-bridge run"');
const port = parentPort;
const send = (m: FromProcessing): void => port.postMessage(m);

/** Log lines for the main thread's destination, sent as one message per event-loop turn. */
function batchedLines(): { write(line: string): void; flush(): void } {
  let lines: string[] = [];
  const flush = (): void => {
    if (lines.length === 0) return;
    send({ t: 'log', text: lines.join('') });
    lines = [];
  };
  return {
    write(line) {
      if (lines.length === 0) setImmediate(flush);
      lines.push(line);
    },
    flush,
  };
}

const init = workerData as ProcessingInit;
const config = fromTransferable(init.config);
const relay = batchedLines();
const stdout = init.logToStdout ? batchedStdout() : undefined;
const logger = createLogger(config.log_level, stdout ?? relay);
/**
 * Deliveries on disk, read from the shared position: on a 'wake' message, then every WAKE_POLL_MS while new
 * ones keep coming; once a read finds nothing new the thread sleeps until the next message (WakeSignal).
 */
const signal = new WakeSignal(init.wake);
await loadStoreBackend(config);
const side = startProcessing(config, { logger, durableThrough: init.durableThrough, lowPriority: true, intakeBusy: () => signal.intakeBusy() });
let admitted = init.durableThrough;
let polling: NodeJS.Timeout | undefined;
let stopping = false;
function readPosition(): void {
  polling = undefined;
  if (stopping) return;
  const through = signal.through();
  if (through > admitted) {
    admitted = through;
    side.wake(through);
  } else if (signal.sleep(admitted)) return;
  polling = setTimeout(readPosition, WAKE_POLL_MS);
}
readPosition();

port.on('message', (m: ToProcessing) => {
  switch (m.t) {
    case 'wake':
      if (polling === undefined) readPosition();
      break;
    case 'reload':
      side.reload(fromTransferable(m.config));
      break;
    case 'metrics':
      void side.metrics().then((snapshot) => send({ t: 'metrics', id: m.id, snapshot }));
      break;
    case 'status':
      send({ t: 'status', id: m.id, status: side.status() });
      break;
    case 'stop':
      // What the intake committed last is decided before the stop, not at the next start.
      stopping = true;
      clearTimeout(polling);
      side.wake(signal.through());
      void side.stop(m.timeoutMs).then(({ code, jobsLeft }) => {
        relay.flush();
        stdout?.close();
        send({ t: 'stopped', code, jobsLeft });
        port.close();
      });
      break;
  }
});

send({ t: 'ready' });
