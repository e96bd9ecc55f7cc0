import type { Alert } from './alert.js';
import type { Digests } from './ports.js';

function eventKey(eventSource: string, eventId: string, kind: Alert['kind']): string {
  return `zbx:${eventSource}:${eventId}:${kind}`;
}

/** Delivery key of a problem event (what the poller and the inbox pruning look up). */
export function problemDeliveryKey(eventSource: string, eventId: string): string {
  return eventKey(eventSource, eventId, 'problem');
}

/** Every update of one problem event has a delivery key starting with this (then a digest of the update). */
export function updateKeyPrefix(eventSource: string, eventId: string): string {
  return `${eventKey(eventSource, eventId, 'update')}:`;
}

/** Delivery key of a recovery event: its presence is the tombstone a late problem delivery is checked against. */
export function recoveryDeliveryKey(eventSource: string, eventId: string): string {
  return eventKey(eventSource, eventId, 'recovery');
}

/**
 * Delivery key: the same Zabbix event delivered twice (a Zabbix retry, or
 * the webhook and the poller) is one alert. Updates are told apart by their
 * time and content, since one problem can receive many.
 */
export function deliveryKey(alert: Alert, digests: Digests): string {
  const base = eventKey(alert.eventSource, alert.eventId, alert.kind);
  // A note names its change: one delivery per change of one event (the poller sees it again every sweep).
  if (alert.kind === 'note' && alert.note) return `${base}:${alert.note.key}`;
  if (alert.kind !== 'update' || !alert.update) return base;
  const u = alert.update;
  const digest = digests.sha256Hex(`${u.at ?? ''}\n${u.action}\n${u.message ?? ''}\n${u.user ?? ''}`);
  return `${updateKeyPrefix(alert.eventSource, alert.eventId)}${digest.slice(0, 16)}`;
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

/**
 * The fixed-size key the store files an incident under: the first 128 bits
 * of the SHA-256 of its readable fingerprint, in hex (32 characters). A
 * readable fingerprint grows with the fields it is built from (tags, item
 * keys); its key does not, so every row that names an incident (its
 * tickets, events and jobs) stays small, and the readable form is kept once,
 * with the incident. Not a secret: ticket markers stay HMACs of the readable
 * fingerprint (see ticketMarker).
 */
export function fingerprintKey(fp: string, digests: Digests): string {
  return digests.sha256Hex(fp).slice(0, 32);
}

/**
 * The GLPI ticket marker of one ticket cycle: `[zbx:<hex>]`, an HMAC of the
 * fingerprint, the cycle number and the event that opened the cycle, keyed
 * with the install's secret (data_dir/marker-key). Unguessable, so text in
 * Zabbix cannot name another incident's ticket; never repeated across cycles
 * (the opening event differs), so a pruned incident's next ticket never finds
 * the old one; deterministic, so a decision taken again after a power cut
 * searches for the same marker.
 */
export function ticketMarker(digests: Digests, key: string, fp: string, incidentCycle: number, openingEventId: string): string {
  const h = digests.hmacSha256Hex(key, `${fp}\n${incidentCycle}\n${openingEventId}`);
  return `[zbx:${h.slice(0, 20)}]`;
}

/** Marker look-alikes (ticket markers and follow-up job tags) in text that came from Zabbix. */
const MARKER_LIKE = /\[\s*zbx(?:-job)?\s*:[^\]\n]{0,64}\]?/gi;

/** Zabbix-supplied text never carries a marker into GLPI: look-alikes are removed. */
export function stripMarkers(text: string): string {
  return text.includes('[') ? text.replace(MARKER_LIKE, '') : text;
}
