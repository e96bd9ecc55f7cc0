import { classify } from '../core/classify.js';
import { ticketDraft } from '../core/decide.js';
import type { Job } from '../core/ports.js';
import type { Config } from '../config/schema.js';
import type { ToolStore } from './store.js';
import { zabbixFrontendUrl } from './from-config.js';

/**
 * A dead ticket creation is rendered again from its stored alert with the
 * rules in force, so that fixing a rule (a wrong category id) fixes the
 * ticket. The marker (the ticket cycle's identity) is kept. Used by
 * `queue retry` and by the status page's Retry, which must not drift apart.
 */
export function rerenderCreate(store: Pick<ToolStore, 'deliveryAlertById' | 'replaceJobSpec'>, config: Config, job: Job, now: number): boolean {
  if (job.spec.type !== 'create_ticket' || job.deliveryId === undefined) return false;
  const alert = store.deliveryAlertById(job.deliveryId);
  if (!alert) return false;
  const ticket = ticketDraft(alert, classify(config.rules, alert), config.rules, job.spec.ticket.marker, { zabbixFrontendUrl: zabbixFrontendUrl(config) });
  store.replaceJobSpec(job.id, { ...job.spec, ticket }, now);
  return true;
}
