import { buildApp } from '../app.js';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../observability/logger.js';
import { loadOrReport } from './common.js';

/** `run --config FILE`: the daemon. SIGTERM/SIGINT stop it gracefully, SIGHUP reloads the configuration. */
export async function runCommand(configFile: string | undefined): Promise<number> {
  const config = loadOrReport(configFile);
  if (!config || !configFile) return 1;
  const logger = createLogger(config.log_level);
  let exit: (code: number) => void = () => undefined;
  const exited = new Promise<number>((resolve) => (exit = resolve));
  // The app has already stopped itself when its processing thread died: exit 1 so systemd restarts the bridge.
  const app = buildApp(config, { logger, logsToStdout: true, loadConfig: () => loadConfig(configFile), onFatal: () => exit(1) });
  try {
    await app.start();
  } catch (e) {
    logger.fatal({ err: (e as Error).message }, 'cannot start');
    return app.stop(true);
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
