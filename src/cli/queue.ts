import { rerenderCreate } from '../composition/dead-letters.js';
import type { Config } from '../config/schema.js';
import { loadStoreBackend, openToolStore } from '../composition/store.js';
import type { Job, ParkedDelivery } from '../core/ports.js';
import { loadOrReport, UsageError } from './common.js';

function line(j: Job): string {
  const when = j.status === 'pending' ? ` next ${new Date(j.nextAttemptAt).toISOString()}` : '';
  return `  #${j.id} ${j.type} ${j.fingerprint} (cycle ${j.cycle}) attempts ${j.attempts}${when}${j.lastError ? `\n      last error: ${j.lastError}` : ''}`;
}

function parkedLine(p: ParkedDelivery): string {
  return `  delivery ${p.deliveryId} ${p.kind} of event ${p.eventId}, parked ${new Date(p.parkedAt).toISOString()}\n      error: ${p.error}`;
}

/** `queue --config FILE [--json]`: pending jobs, dead letters and parked alerts. */
export async function queueListCommand(file: string | undefined, json: boolean): Promise<number> {
  const config = loadOrReport(file);
  if (!config) return 1;
  await loadStoreBackend(config);
  const store = openToolStore(config, { cli: true });
  try {
    const pending = [...store.jobs('running'), ...store.jobs('pending')];
    const dead = store.jobs('dead');
    const parked = store.parkedDeliveries();
    if (json) {
      process.stdout.write(`${JSON.stringify({ pending, dead, parked }, null, 2)}\n`);
    } else {
      process.stdout.write(`pending: ${pending.length}\n${pending.map(line).join('\n')}${pending.length ? '\n' : ''}`);
      process.stdout.write(`dead letters: ${dead.length}\n${dead.map(line).join('\n')}${dead.length ? '\n' : ''}`);
      if (dead.length) process.stdout.write(`Fix the cause, then: zabbix-glpi-bridge queue retry --config ${file} ID|--all\n`);
      if (parked.length) {
        process.stdout.write(`parked alerts (their decision failed; BRIDGE_DELIVERY_PARKED): ${parked.length}\n${parked.map(parkedLine).join('\n')}\n`);
      }
    }
    return 0;
  } finally {
    store.close();
  }
}

/** `queue retry --config FILE ID|--all`: put dead letters back in the queue. A running daemon picks them up within seconds. */
export async function queueRetryCommand(file: string | undefined, target: string | undefined, all: boolean): Promise<number> {
  if (!all && (target === undefined || !/^\d+$/.test(target))) throw new UsageError('queue retry needs a job ID or --all');
  const config = loadOrReport(file);
  if (!config) return 1;
  await loadStoreBackend(config);
  const store = openToolStore(config, { cli: true });
  try {
    const now = Date.now();
    const targets = all ? store.jobs('dead', 100_000) : [store.job(Number(target))].filter((j): j is Job => j?.status === 'dead');
    const rerendered = targets.filter((j) => rerenderCreate(store, config, j, now)).length;
    const n = store.retryDead(all ? 'all' : Number(target), now);
    if (rerendered > 0) process.stdout.write(`${rerendered} ticket creation(s) rendered again with the rules in force\n`);
    process.stdout.write(`${n} dead letter(s) queued again\n`);
    return n > 0 || all ? 0 : 1;
  } finally {
    store.close();
  }
}

