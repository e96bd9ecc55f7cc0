import { secureDataDir } from '../adapters/data-dir.js';
import { statusLine, SystemdNotifier } from '../adapters/systemd/notify.js';
import { buildApp } from '../app.js';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../observability/logger.js';
import { loadStoreBackend } from '../composition/store.js';
import { loadOrReport } from './common.js';

/** How often systemd's STATUS= line is brought up to date (sent only when it changed). */
const STATUS_EVERY_MS = 15_000;

/** `run --config FILE`: the daemon. SIGTERM/SIGINT stop it gracefully, SIGHUP reloads the configuration. */
export async function runCommand(configFile: string | undefined): Promise<number> {
  const config = loadOrReport(configFile);
  if (!config || !configFile) return 1;
  await loadStoreBackend(config);
  const logger = createLogger(config.log_level);
  try {
    const { changed, refused } = secureDataDir(config.data_dir);
    if (changed.length > 0) logger.warn({ data_dir: config.data_dir, tightened: changed }, 'made the data directory private (0700) and its files 0600');
    if (refused.length > 0) logger.warn({ data_dir: config.data_dir, refused }, 'cannot make these private (not their owner): other users may read alert text or secrets; chown them to the bridge\'s user');
  } catch (e) {
    logger.fatal({ data_dir: config.data_dir, err: (e as Error).message }, 'cannot prepare the data directory');
    return 1;
  }
  let exit: (code: number) => void = () => undefined;
  const exited = new Promise<number>((resolve) => (exit = resolve));
  // The app has already stopped itself when its processing thread died: exit 1 so systemd restarts the bridge.
  const app = buildApp(config, { logger, logDestination: 'stdout', loadConfig: () => loadConfig(configFile), onFatal: () => exit(1) });
  // systemd (Type=notify): READY=1 once the webhook listens and the store is open, STATUS=, WATCHDOG=1, STOPPING=1.
  const systemd = new SystemdNotifier({ logger });
  let address: string;
  try {
    address = await app.start();
  } catch (e) {
    logger.fatal({ err: (e as Error).message }, 'cannot start');
    void systemd.status(`cannot start: ${(e as Error).message}`);
    const code = await app.stop('failure');
    await systemd.flush();
    return code;
  }
  const summary = async (): Promise<string> => {
    try {
      const s = app.store.stats();
      return statusLine({ address, pending: s.pending, dead: s.dead, undecided: s.unprocessed, glpiSession: (await app.processingStatus())?.session });
    } catch (e) {
      return `accepting webhooks on ${address}; cannot read the queue: ${(e as Error).message}`;
    }
  };
  const statusTimer = setInterval(() => void summary().then((line) => systemd.status(line)), STATUS_EVERY_MS);
  statusTimer.unref();
  let stopping = false;
  const stop = (signal: string) => {
    logger.info({ signal }, 'stopping');
    stopping = true;
    clearInterval(statusTimer);
    void systemd.stopping();
    void app.stop().then(async (code) => {
      await systemd.flush();
      exit(code);
    });
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    logger.info({ signal: 'SIGHUP' }, 'reloading the configuration');
    void systemd.reloading();
    const result = app.reloadFromFile();
    void summary().then((line) => systemd.ready(result.ok ? line : `configuration reload rejected, running configuration kept (see the log); ${line}`));
  });
  void summary().then((line) => {
    if (stopping) return;
    void systemd.ready(line);
    systemd.startWatchdog();
  });
  return exited;
}
