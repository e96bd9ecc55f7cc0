#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { UsageError } from './cli/common.js';

// Each command's modules are loaded when it runs: the daemon's main thread does not carry the demo (with its
// GLPI fake), migrate-store or the command-line tools (heap and start-up time, issue 16).

const HELP: Readonly<Record<string, string>> = {
  '': `zabbix-glpi-bridge — Zabbix alerts in, one well-kept GLPI ticket per incident out.

Usage: zabbix-glpi-bridge <command> [options]

Commands:
  run --config FILE                 run the daemon
  check-config --config FILE [--online]  validate the configuration and rules (exit 1 with every problem)
  explain --config FILE [ALERT|-]   show what one webhook body would become; no side effects
  queue --config FILE [--json]      list pending jobs and dead letters
  queue retry --config FILE ID|--all  put dead letters back in the queue
  status --config FILE [--json]     the daemon's state: connections, open incidents, queue, dead letters, last decisions
  migrate-store --config FILE [--from DATA_DIR]  copy a stopped bridge's SQLite store into the configured PostgreSQL
  demo                              run the whole flow locally against a built-in GLPI fake (about 30 s)

Run "zabbix-glpi-bridge <command> --help" for a command's options.`,
  run: 'Usage: zabbix-glpi-bridge run --config FILE\n\nRuns the daemon. SIGTERM/SIGINT stop it gracefully; SIGHUP reloads the configuration (an invalid one is rejected and the running one kept).',
  'check-config': 'Usage: zabbix-glpi-bridge check-config --config FILE [--online]\n\nValidates the daemon configuration and the rules. Exit 0 when valid; exit 1 and every problem as FILE:LINE: YAML.PATH: message otherwise.\n--online also logs in to GLPI, checks that every ITIL category, group, entity and request type id the rules use exists, and checks the Zabbix API token when zabbix.url is set. Secrets are never printed.',
  explain: 'Usage: zabbix-glpi-bridge explain --config FILE [ALERT.json | -]\n\nReads one webhook body (JSON, as the media type sends it) from the file or stdin and prints, as JSON, the normalised alert, category, severity and why, fingerprint, action and reason, and the ticket title and body. Nothing is stored or sent.',
  demo: 'Usage: zabbix-glpi-bridge demo [--pace N]\n\n--pace 0.5 runs twice as fast (timers and hold-down scaled alike).\nStarts the bridge on a temporary embedded store against a built-in GLPI fake, replays a CPU spike that recovers, a disk that fills, a flapping network link and a temperature alarm acknowledged by an operator, and prints what each alert became. Needs nothing else; leaves nothing behind.',
  status:
    'Usage: zabbix-glpi-bridge status --config FILE [--json]\n\nAsks the running daemon (GET /status?format=json on its listen address, with admin.token when set) and prints its connection state, counts, open incidents, dead letters and last decisions; --json prints the whole summary. When the daemon does not answer, reads the same from the store (no connection state, no per-minute history).',
  'migrate-store':
    "Usage: zabbix-glpi-bridge migrate-store --config FILE [--from DATA_DIR]\n\nCopies the SQLite store (bridge.db and bridge.inbox.db in DATA_DIR, default the config's data_dir) into the PostgreSQL database the config names (store.backend: postgres): incidents, tickets, pending jobs and dead letters, the inbox with its delivery keys and the decided position, parked alerts, the poller's memory, the GLPI read-back cursor and the decision log, in one transaction; copies the marker key into data_dir when it is another folder. Stop the bridge first. Refuses a database that already holds incidents, jobs or deliveries. The SQLite files are left as they are.",
  queue: 'Usage: zabbix-glpi-bridge queue --config FILE [--json]\n       zabbix-glpi-bridge queue retry --config FILE ID|--all\n\nLists pending GLPI jobs and dead letters (permanent failures with their reason), or queues dead letters again once the cause is fixed.',
};

async function main(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      help: { type: 'boolean', short: 'h' },
      all: { type: 'boolean' },
      json: { type: 'boolean' },
      version: { type: 'boolean' },
      pace: { type: 'string' },
      online: { type: 'boolean' },
      from: { type: 'string' },
    },
  });
  const [command = '', ...rest] = positionals;
  if (values.help || command === 'help' || command === '') {
    process.stdout.write(`${HELP[command === 'help' ? (rest[0] ?? '') : command] ?? HELP['']}\n`);
    return command === '' && !values.help ? 2 : 0;
  }
  switch (command) {
    case 'run': {
      const { runCommand } = await import('./cli/run.js');
      const code = await runCommand(values.config);
      // Idle keep-alive sockets and timers must not hold a stopped daemon.
      process.exit(code);
    }
    case 'check-config': {
      const { checkConfigCommand } = await import('./cli/check-config.js');
      return checkConfigCommand(values.config, values.online ?? false);
    }
    case 'explain': {
      const { explainCommand } = await import('./cli/explain.js');
      return explainCommand(values.config, rest[0], values.online ?? false);
    }
    case 'queue': {
      const { queueListCommand, queueRetryCommand } = await import('./cli/queue.js');
      if (rest[0] === 'retry') return queueRetryCommand(values.config, rest[1], values.all ?? false);
      if (rest[0] !== undefined) throw new UsageError(`unknown queue subcommand "${rest[0]}"`);
      return queueListCommand(values.config, values.json ?? false);
    }
    case 'migrate-store': {
      const { migrateStoreCommand } = await import('./cli/migrate-store.js');
      return migrateStoreCommand(values.config, values.from);
    }
    case 'status': {
      const { statusCommand } = await import('./cli/status.js');
      return statusCommand(values.config, values.json ?? false);
    }
    case 'demo': {
      const pace = values.pace === undefined ? 1 : Number(values.pace);
      if (!(pace > 0 && pace <= 10)) throw new UsageError('--pace takes a number between 0 and 10 (1 = normal speed)');
      const { demoCommand } = await import('./cli/demo.js');
      const code = await demoCommand(process.stdout, pace);
      process.exit(code);
    }
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    const usage = e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`zabbix-glpi-bridge: ${(e as Error).message}\n${usage ? 'Run "zabbix-glpi-bridge --help" for usage.\n' : ''}`);
    process.exitCode = usage ? 2 : 1;
  },
);
