import { storeFile } from '../components.js';
import { SqliteStore, type Job } from '../adapters/store/sqlite-store.js';
import { loadOrReport, UsageError } from './common.js';

function line(j: Job): string {
  const when = j.status === 'pending' ? ` next ${new Date(j.nextAttemptAt).toISOString()}` : '';
  return `  #${j.id} ${j.type} ${j.fingerprint} (cycle ${j.seq}) attempts ${j.attempts}${when}${j.lastError ? `\n      last error: ${j.lastError}` : ''}`;
}

/** `queue --config FILE [--json]`: pending jobs and dead letters. */
export function queueListCommand(file: string | undefined, json: boolean): number {
  const config = loadOrReport(file);
  if (!config) return 1;
  const store = new SqliteStore(storeFile(config), { synchronous: config.store.synchronous });
  try {
    const pending = [...store.jobs('running'), ...store.jobs('pending')];
    const dead = store.jobs('dead');
    if (json) {
      process.stdout.write(`${JSON.stringify({ pending, dead }, null, 2)}\n`);
    } else {
      process.stdout.write(`pending: ${pending.length}\n${pending.map(line).join('\n')}${pending.length ? '\n' : ''}`);
      process.stdout.write(`dead letters: ${dead.length}\n${dead.map(line).join('\n')}${dead.length ? '\n' : ''}`);
      if (dead.length) process.stdout.write(`Fix the cause, then: zabbix-glpi-bridge queue retry --config ${file} ID|--all\n`);
    }
    return 0;
  } finally {
    store.close();
  }
}

/** `queue retry --config FILE ID|--all`: put dead letters back in the queue. A running daemon picks them up within seconds. */
export function queueRetryCommand(file: string | undefined, target: string | undefined, all: boolean): number {
  if (!all && (target === undefined || !/^\d+$/.test(target))) throw new UsageError('queue retry needs a job ID or --all');
  const config = loadOrReport(file);
  if (!config) return 1;
  const store = new SqliteStore(storeFile(config), { synchronous: config.store.synchronous });
  try {
    const n = store.retryDead(all ? 'all' : Number(target), Date.now());
    process.stdout.write(`${n} dead letter(s) queued again\n`);
    return n > 0 || all ? 0 : 1;
  } finally {
    store.close();
  }
}
