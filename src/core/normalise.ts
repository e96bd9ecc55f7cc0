import { severityFromNumber, type Alert, type AlertKind, type AlertUpdate, type Severity, type Tag } from './alert.js';
import { truncateAlert } from './limits.js';

/**
 * The fields of our media type's webhook body, already checked for type by
 * the intake adapter. Every value is a string as Zabbix sends it; `tags` is
 * event_tags parsed.
 */
export interface ZabbixEvent {
  readonly event_id: string;
  readonly event_value: string;
  readonly event_source?: string;
  readonly event_name?: string;
  readonly event_update_status?: string;
  readonly event_update_action?: string;
  readonly event_update_message?: string;
  readonly event_update_date?: string;
  readonly event_update_time?: string;
  readonly event_recovery_id?: string;
  /** {EVENT.CAUSE.ID} (Zabbix 6.4+). */
  readonly event_cause_id?: string;
  readonly event_recovery_date?: string;
  readonly event_recovery_time?: string;
  readonly event_nseverity?: string;
  readonly event_severity?: string;
  readonly event_date?: string;
  readonly event_time?: string;
  readonly event_opdata?: string;
  readonly trigger_id?: string;
  readonly trigger_name?: string;
  readonly trigger_description?: string;
  readonly host_host: string;
  readonly host_name?: string;
  readonly host_ip?: string;
  readonly item_name?: string;
  readonly item_key?: string;
  readonly item_value?: string;
  readonly item_id?: string;
  readonly user_fullname?: string;
  readonly tags: readonly Tag[];
}

const MACRO = /^\{[A-Z0-9._]+\}$/;

/**
 * What Zabbix writes for a macro it knows but cannot resolve for this event: a real 7.0.22 sends it for
 * {HOST.IP} of a host without interfaces (trapper items) and {EVENT.CAUSE.ID} of an event that is no symptom
 * (test/fixtures/zabbix/7.0/). Absent, like an unexpanded macro: never an IP to search GLPI for.
 */
export const UNRESOLVED_MACRO = '*UNKNOWN*';

/** A value that is still an unexpanded macro ("{EVENT.RECOVERY.ID}"), Zabbix's "*UNKNOWN*", or blank means absent. */
export function present(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  // A macro starts with '{': the pattern is only tried then (issue 16: present() runs for every field of every alert).
  if (trimmed === '' || trimmed === UNRESOLVED_MACRO || (trimmed.charCodeAt(0) === 0x7b && MACRO.test(trimmed))) return undefined;
  return trimmed;
}

export function kindOf(e: Pick<ZabbixEvent, 'event_value' | 'event_update_status'>): AlertKind {
  if (present(e.event_update_status) === '1') return 'update';
  return e.event_value === '0' ? 'recovery' : 'problem';
}

/** The times an alert carries, each with its own last conversion (zabbixTime). */
export type TimeSlot = 'occurred' | 'recovered' | 'updated';

/**
 * The last date and time converted for each slot, and how: the alerts of one burst mostly share their second.
 * One entry per slot, not one for all: a recovery converts its problem's time and then its own, an update its
 * problem's and the update's, and a single shared entry would hold the other one each time, missing on both.
 */
const lastTimes: Record<TimeSlot, { d: string; t: string; offset: number; iso: string | undefined } | undefined> = { occurred: undefined, recovered: undefined, updated: undefined };

/** "2026.11.23" + "06:18:41" → ISO 8601, read as UTC (Zabbix sends no zone). */
export function zabbixTime(date: string | undefined, time: string | undefined, utcOffsetMinutes = 0, slot: TimeSlot = 'occurred'): string | undefined {
  const d = present(date);
  const t = present(time);
  if (!d || !t) return undefined;
  const last = lastTimes[slot];
  if (last !== undefined && last.d === d && last.t === t && last.offset === utcOffsetMinutes) return last.iso;
  const iso = readZabbixTime(d, t, utcOffsetMinutes);
  lastTimes[slot] = { d, t, offset: utcOffsetMinutes, iso };
  return iso;
}

function readZabbixTime(d: string, t: string, utcOffsetMinutes: number): string | undefined {
  const m = /^(\d{4})\.(\d{2})\.(\d{2})$/.exec(d);
  const n = /^(\d{2}):(\d{2}):(\d{2})$/.exec(t);
  if (!m || !n) return undefined;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(n[1]), Number(n[2]), Number(n[3]));
  if (Number.isNaN(ms)) return undefined;
  return new Date(ms - utcOffsetMinutes * 60_000).toISOString();
}

function severityOf(e: ZabbixEvent): Severity {
  const n = Number(present(e.event_nseverity) ?? '0');
  return severityFromNumber(n) ?? 'not_classified';
}

function updateOf(e: ZabbixEvent, utcOffsetMinutes: number): AlertUpdate {
  const action = present(e.event_update_action) ?? '';
  const user = present(e.user_fullname);
  const message = present(e.event_update_message);
  const at = zabbixTime(e.event_update_date, e.event_update_time, utcOffsetMinutes, 'updated');
  return {
    action,
    ...(message !== undefined ? { message } : {}),
    ...(user !== undefined ? { user } : {}),
    ...(at !== undefined ? { at } : {}),
    acknowledged: /\backnowledged\b/.test(action) && !/\bunacknowledged\b/.test(action),
    severityChanged: /\bchanged severity\b/.test(action),
    closed: /\bclosed\b/.test(action),
  };
}

/**
 * Webhook event → normalised alert, long text truncated to its limit
 * (core/limits.ts; the webhook parser has refused fields Zabbix bounds). Pure.
 */
export function normalise(e: ZabbixEvent, source: Alert['source'] = 'webhook', utcOffsetMinutes = 0): Alert {
  const kind = kindOf(e);
  const host = e.host_host.trim();
  const eventName = present(e.event_name);
  const triggerName = present(e.trigger_name) ?? eventName ?? '(unnamed trigger)';
  const alert: Record<string, unknown> = {
    source,
    eventSource: present(e.event_source) ?? '0',
    eventId: e.event_id.trim(),
    kind,
    severity: severityOf(e),
    eventName: eventName ?? triggerName,
    host,
    hostName: present(e.host_name) ?? host,
    triggerName,
    tags: e.tags,
  };
  // The optional fields, in this order, each only when present (an absent one is no key: alerts are stored as JSON).
  const put = (key: string, value: unknown) => {
    if (value !== undefined) alert[key] = value;
  };
  put('hostIp', present(e.host_ip));
  put('triggerId', present(e.trigger_id));
  put('triggerDescription', present(e.trigger_description));
  put('itemName', present(e.item_name));
  put('itemKey', present(e.item_key));
  put('itemId', present(e.item_id));
  put('itemValue', present(e.item_value));
  put('opdata', present(e.event_opdata));
  put('occurredAt', zabbixTime(e.event_date, e.event_time, utcOffsetMinutes));
  put('recoveryEventId', present(e.event_recovery_id));
  // "0" or empty: the event is a cause (no cause of its own).
  // Only a cause's id: "0" (a cause itself), an unexpanded macro (6.0) or Zabbix's "*UNKNOWN*" (7.0, not a symptom) are absent.
  const cause = present(e.event_cause_id);
  put('causeEventId', cause !== undefined && CAUSE_ID.test(cause) ? cause : undefined);
  put('recoveredAt', zabbixTime(e.event_recovery_date, e.event_recovery_time, utcOffsetMinutes, 'recovered'));
  put('update', kind === 'update' ? updateOf(e, utcOffsetMinutes) : undefined);
  const a = alert as unknown as Alert;
  // The same object when every field is within its limit (truncateAlert's quick check, limits.ts): the common case.
  return truncateAlert(a);
}

const CAUSE_ID = /^[1-9]\d*$/;

