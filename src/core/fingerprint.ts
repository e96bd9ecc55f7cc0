import { createHash } from 'node:crypto';
import type { Alert } from './alert.js';

function eventKey(eventSource: string, eventId: string, kind: Alert['kind']): string {
  return `zbx:${eventSource}:${eventId}:${kind}`;
}

/** Delivery key of a problem event (what the poller and the inbox pruning look up). */
export function problemDeliveryKey(eventSource: string, eventId: string): string {
  return eventKey(eventSource, eventId, 'problem');
}

/**
 * Delivery key: the same Zabbix event delivered twice (a Zabbix retry, or
 * the webhook and the poller) is one alert. Updates are told apart by their
 * time and content, since one problem can receive many.
 */
export function deliveryKey(alert: Alert): string {
  const base = eventKey(alert.eventSource, alert.eventId, alert.kind);
  if (alert.kind !== 'update' || !alert.update) return base;
  const u = alert.update;
  const digest = createHash('sha256').update(`${u.at ?? ''}\n${u.action}\n${u.message ?? ''}\n${u.user ?? ''}`).digest('hex');
  return `${base}:${digest.slice(0, 16)}`;
}

/** Fields an operator may build the incident fingerprint from. */
export const FINGERPRINT_FIELDS = ['host', 'trigger', 'trigger_name', 'item_key', 'event_name', 'category'] as const;
export type FingerprintField = (typeof FINGERPRINT_FIELDS)[number] | `tag:${string}`;

function fieldValue(alert: Alert, category: string, field: FingerprintField): string {
  switch (field) {
    case 'host':
      return alert.host;
    case 'trigger':
      return alert.triggerId !== undefined ? `#${alert.triggerId}` : alert.triggerName;
    case 'trigger_name':
      return alert.triggerName;
    case 'item_key':
      return alert.itemKey ?? '';
    case 'event_name':
      return alert.eventName;
    case 'category':
      return category;
    default: {
      const name = field.slice('tag:'.length);
      return alert.tags
        .filter((t) => t.tag === name)
        .map((t) => t.value)
        .sort()
        .join(',');
    }
  }
}

/** Incident fingerprint: the readable identity of "the same incident" (default host + trigger). */
export function fingerprint(alert: Alert, category: string, fields: readonly FingerprintField[]): string {
  return fields.map((f) => `${f}=${fieldValue(alert, category, f)}`).join('|');
}

/** Short stable hash of a fingerprint plus the incident's sequence number: the GLPI ticket marker. */
export function ticketMarker(fp: string, incidentSeq: number): string {
  const h = createHash('sha256').update(`${fp}#${incidentSeq}`).digest('hex');
  return `[zbx:${h.slice(0, 16)}]`;
}
