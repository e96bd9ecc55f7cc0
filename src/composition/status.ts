import type { IntakeStore } from '../adapters/store/sqlite/index.js';
import type { StatusSources, TryAnswer, TryInput } from '../adapters/http/status/routes.js';
import { asPostgresStore } from '../adapters/store/postgres/kind.js';
import { parseWebhookBody } from '../adapters/zabbix/webhook-body.js';
import type { Config } from '../config/schema.js';
import type { Alert } from '../core/alert.js';
import { normalise } from '../core/normalise.js';
import type { Job } from '../core/ports.js';
import { clusterSummary } from './cluster.js';
import { rerenderCreate } from './dead-letters.js';
import { explainAlert } from './explain.js';
import { openToolStore } from './store.js';

/** GLPI's web page of a ticket, from the API URL (as the GLPI clients link tickets: apirest.php, api.php/v1 or api.php/v2 stripped). */
export function glpiTicketUrl(apiUrl: string, id: number): string {
  const base = apiUrl.replace(/\/+$/, '').replace(/\/apirest\.php$/, '').replace(/\/api\.php(\/v\d+(\.\d+)*)?$/, '');
  return `${base}/front/ticket.form.php?id=${id}`;
}

/**
 * Queue a dead letter again, as `queue retry ID` does (both render a create again with dead-letters.ts): a
 * ticket creation is rendered again from its stored alert with the rules in force (the marker kept), so that
 * fixing a rule fixes the ticket. A short-lived
 * connection to the state file, as `queue retry` opens from its own process (the processing thread picks
 * the job up at its next claim).
 */
export function retryDeadLetter(config: Config, id: number, now: number): { queued: number; rerendered: boolean } {
  const store = openToolStore(config);
  try {
    const job: Job | undefined = store.job(id);
    if (job?.status !== 'dead') return { queued: 0, rerendered: false };
    const rerendered = rerenderCreate(store, config, job, now);
    return { queued: store.retryDead(id, now), rerendered };
  } finally {
    store.close();
  }
}

/** The status page's sources on the main thread: its store's read side and the configuration in force. */
export function statusSources(config: () => Config, store: IntakeStore): StatusSources {
  return {
    store,
    ticketUrl: (id) => glpiTicketUrl(config().glpi.url, id),
    categories: () => config().rules.categories.map((c) => c.name),
    tryRule: (input: TryInput, now: number): TryAnswer => {
      const c = config();
      try {
        let alert: Alert | undefined;
        if ('deliveryId' in input) {
          alert = store.deliveryAlertById(input.deliveryId);
          if (!alert) return { ok: false, error: `delivery ${input.deliveryId} is no longer stored (store.retention)` };
        } else {
          const parsed = parseWebhookBody(input.body);
          if (!parsed.ok) return { ok: false, error: `BRIDGE_INVALID_FIELD: ${parsed.message}` };
          alert = normalise(parsed.event, 'webhook', c.zabbix.timezone_offset_minutes);
        }
        // PostgreSQL: the markers the bridges render are keyed with the database's key (not this data_dir's).
        const shared = asPostgresStore(store)?.storedMarkerKey();
        return { ok: true, result: explainAlert(c, alert, now, shared).out };
      } catch (e) {
        return { ok: false, error: (e as Error).message };
      }
    },
    retry: (id, now) => retryDeadLetter(config(), id, now),
    cluster: () => clusterSummary(store),
  };
}
