import { secureDataDir } from '../adapters/data-dir.js';
import { buildApp } from '../app.js';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../observability/logger.js';
import { loadOrReport } from './common.js';

/** `run --config FILE`: the daemon. SIGTERM/SIGINT stop it gracefully, SIGHUP reloads the configuration. */
export async function runCommand(configFile: string | undefined): Promise<number> {
  const config = loadOrReport(configFile);
  if (!config || !configFile) return 1;
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
  try {
    await app.start();
  } catch (e) {
    logger.fatal({ err: (e as Error).message }, 'cannot start');
    return app.stop('failure');
  }
  const stop = (signal: string) => {
    logger.info({ signal }, 'stopping');
    void app.stop().then(exit);
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    logger.info({ signal: 'SIGHUP' }, 'reloading the configuration');
    app.reloadFromFile();
  });
  return exited;
}
