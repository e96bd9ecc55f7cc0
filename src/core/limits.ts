import type { Alert, AlertUpdate } from './alert.js';

/**
 * The most the bridge takes of each field of an alert, whichever way it
 * came in (webhook or poller). Lengths count characters as Zabbix's
 * varchar(n) columns do (Unicode code points, not bytes).
 *
 * - `refuse`: a field Zabbix itself bounds (a column it stores the value in,
 *   before any macro is expanded). Longer is not from Zabbix: the webhook
 *   answers 400 naming the parameter, the poller skips the problem.
 * - `truncate`: text Zabbix may legitimately send longer (item values,
 *   messages, names with macros expanded in them). Kept up to the maximum,
 *   the end replaced by a visible marker: "… [truncated 57,344 characters]".
 *
 * The README's "Field limits" table lists the same (a test keeps them in step).
 */
export type OverMax = 'refuse' | 'truncate';

export interface FieldLimit {
  readonly max: number;
  readonly over: OverMax;
  /** The media type parameter(s) that carry it. */
  readonly parameters: readonly string[];
  /** What `max` counts: characters, digits (ids), or tags. */
  readonly unit?: 'digits' | 'tags';
}

/**
 * What a ticket shows of one value at most (render's per-value cap is
 * 2,000), less room for a follow-up line's label ("Value: ", "Message: "):
 * a truncated value reaches GLPI with its marker.
 */
const LONG_TEXT = 1_900;

export const LIMITS = {
  /** events.eventid, bigint unsigned. */
  eventId: { max: 20, over: 'refuse', parameters: ['event_id'], unit: 'digits' },
  recoveryEventId: { max: 20, over: 'refuse', parameters: ['event_recovery_id'], unit: 'digits' },
  triggerId: { max: 20, over: 'refuse', parameters: ['trigger_id'], unit: 'digits' },
  itemId: { max: 20, over: 'refuse', parameters: ['item_id'], unit: 'digits' },
  /** hosts.host varchar(128): the technical name, no macros. */
  host: { max: 128, over: 'refuse', parameters: ['host_host'] },
  /** hosts.name varchar(128). */
  hostName: { max: 128, over: 'refuse', parameters: ['host_name'] },
  /** events.name varchar(2048): Zabbix stores the event name, macros expanded, and notifies from it. */
  eventName: { max: 2_048, over: 'refuse', parameters: ['event_name'] },
  /** items.key_ varchar(2048). */
  itemKey: { max: 2_048, over: 'refuse', parameters: ['item_key'] },
  /** event_tag.tag and event_tag.value varchar(255) each. */
  tagName: { max: 255, over: 'refuse', parameters: ['event_tags'] },
  tagValue: { max: 255, over: 'refuse', parameters: ['event_tags'] },
  /** Zabbix sets no number of tags (host, template, trigger and item tags add up): the first ones are kept. */
  tagCount: { max: 50, over: 'truncate', parameters: ['event_tags'], unit: 'tags' },
  /** triggers.description varchar(255) bounds the name before its macros ({HOST.NAME}, {ITEM.VALUE}) are expanded, not after. */
  triggerName: { max: 255, over: 'truncate', parameters: ['trigger_name'] },
  /** triggers.comments is a text column (64 KiB), macros expanded: a runbook can be long; its beginning is what a ticket needs. */
  triggerDescription: { max: LONG_TEXT, over: 'truncate', parameters: ['trigger_description'] },
  /** items.name varchar(255) bounds the name before its macros are expanded, not after. */
  itemName: { max: 255, over: 'truncate', parameters: ['item_name'] },
  /** interface.dns varchar(255) (ip: 64), user macros expanded. */
  hostIp: { max: 255, over: 'truncate', parameters: ['host_ip'] },
  /** Item values: text and log items hold up to 64 KiB. */
  itemValue: { max: LONG_TEXT, over: 'truncate', parameters: ['item_value'] },
  /** triggers.opdata varchar(255), with item values expanded in it. */
  opdata: { max: LONG_TEXT, over: 'truncate', parameters: ['event_opdata'] },
  /** acknowledges.message varchar(2048). */
  updateMessage: { max: LONG_TEXT, over: 'truncate', parameters: ['event_update_message'] },
  /** Built by Zabbix from a fixed vocabulary and severity names (varchar(32)); flags are read before it is cut. */
  updateAction: { max: 512, over: 'truncate', parameters: ['event_update_action'] },
  /** users.name, surname and username: varchar(100) each. */
  updateUser: { max: 512, over: 'truncate', parameters: ['user_fullname'] },
} as const satisfies Record<string, FieldLimit>;

export type LimitedField = keyof typeof LIMITS;

/** Any one media type parameter, used or not: Zabbix's alert parameters are at most 64 KiB (text columns). */
export const PARAMETER_MAX = 65_535;

/** Length in Unicode code points (a surrogate pair is one character, as Zabbix counts). */
export function characters(text: string): number {
  let n = text.length;
  for (let i = 0; i < text.length - 1; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n--;
        i++;
      }
    }
  }
  return n;
}

/** Whether text is at most `max` characters (quick when its UTF-16 length already is). */
export function fits(text: string, max: number): boolean {
  return text.length <= max || characters(text) <= max;
}

/** The UTF-16 offset after the first `count` characters (never inside a surrogate pair). */
function offsetOf(text: string, count: number): number {
  let i = 0;
  for (let seen = 0; seen < count && i < text.length; seen++) {
    const c = text.charCodeAt(i);
    const pair = c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
    i += pair ? 2 : 1;
  }
  return i;
}

function thousands(n: number): string {
  const digits = String(n);
  let out = '';
  for (let i = 0; i < digits.length; i++) {
    if (i > 0 && (digits.length - i) % 3 === 0) out += ',';
    out += digits[i];
  }
  return out;
}

/** The marker that ends a truncated text. */
export function truncationMarker(removed: number): string {
  return `… [truncated ${thousands(removed)} characters]`;
}

/**
 * Text of at most `max` characters: unchanged when it fits, otherwise its
 * beginning and a marker saying how many characters were cut (the marker
 * counts in the maximum).
 */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  const total = characters(text);
  if (total <= max) return text;
  // Start from the longest marker (for the most that could be cut); keeping more cuts less, so the marker
  // only gets shorter: grow what is kept until text and marker fill the maximum exactly.
  let keep = Math.max(0, max - truncationMarker(total).length);
  for (let next = keep; ; keep = next) {
    next = Math.max(0, max - truncationMarker(total - keep).length);
    if (next <= keep) break;
  }
  return `${text.slice(0, offsetOf(text, keep))}${truncationMarker(total - keep)}`;
}

export interface TooLong {
  /** The alert's field ("host", "tags[3].tag"). */
  readonly field: string;
  /** The media type parameter that carries it. */
  readonly parameter: string;
  readonly message: string;
}

/** "is longer than 128 characters": what a refusal says of a field (never its value). */
export function longerThan(field: LimitedField): string {
  const limit: FieldLimit = LIMITS[field];
  return `is longer than ${thousands(limit.max)} ${limit.unit ?? 'characters'}`;
}

function tooLong(field: LimitedField, name: string = field): TooLong {
  return { field: name, parameter: LIMITS[field].parameters[0] ?? field, message: longerThan(field) };
}

/** The first refused field of an alert that is longer than Zabbix allows, if any. */
export function refusedField(alert: Alert): TooLong | undefined {
  const checks: readonly [LimitedField, string | undefined][] = [
    ['eventId', alert.eventId],
    ['recoveryEventId', alert.recoveryEventId],
    ['triggerId', alert.triggerId],
    ['itemId', alert.itemId],
    ['host', alert.host],
    ['hostName', alert.hostName],
    ['eventName', alert.eventName],
    ['itemKey', alert.itemKey],
  ];
  for (const [field, value] of checks) {
    if (value !== undefined && !fits(value, LIMITS[field].max)) return tooLong(field);
  }
  for (const [i, t] of alert.tags.entries()) {
    if (!fits(t.tag, LIMITS.tagName.max)) return tooLong('tagName', `tags[${i}].tag`);
    if (!fits(t.value, LIMITS.tagValue.max)) return tooLong('tagValue', `tags[${i}].value`);
  }
  return undefined;
}

/**
 * The alert's text fields truncateAlert cuts, each under its own name in LIMITS (the one list: normalise's quick
 * check and truncateAlert both read it, so a field added here is both checked and cut).
 */
export const TRUNCATED_FIELDS = ['triggerName', 'triggerDescription', 'itemName', 'hostIp', 'itemValue', 'opdata'] as const satisfies readonly (LimitedField & keyof Alert)[];

/** The update's text fields truncateAlert cuts, with their limit in LIMITS. */
export const TRUNCATED_UPDATE_FIELDS = [
  ['action', 'updateAction'],
  ['message', 'updateMessage'],
  ['user', 'updateUser'],
] as const satisfies readonly (readonly [keyof AlertUpdate, LimitedField])[];

/**
 * Whether truncateAlert() returns the alert as it is without looking further: every text it cuts is at most its
 * maximum in UTF-16 units (so in characters too), and there are at most tagCount tags. The common case, without
 * counting characters or copying.
 */
export function withinTruncationLimits(alert: Alert): boolean {
  if (alert.tags.length > LIMITS.tagCount.max) return false;
  return fieldsWithin(alert, ALERT_FIELDS) && (alert.update === undefined || fieldsWithin(alert.update, TRUNCATED_UPDATE_FIELDS));
}

/** TRUNCATED_FIELDS as [key, limit] pairs, like TRUNCATED_UPDATE_FIELDS (each alert field's limit has its name). */
const ALERT_FIELDS = TRUNCATED_FIELDS.map((f) => [f, f] as const);

/** Whether each of `fields` of `source` is at most its limit in UTF-16 units (so in characters too). */
function fieldsWithin(source: object, fields: readonly (readonly [string, LimitedField])[]): boolean {
  for (const [key, field] of fields) {
    const v = (source as Record<string, unknown>)[key];
    if (typeof v === 'string' && v.length > LIMITS[field].max) return false;
  }
  return true;
}

/** A copy of `source` with each of `fields` cut to its limit; undefined when none needed it (key order kept). */
function cutFields(source: object, fields: readonly (readonly [string, LimitedField])[]): Record<string, unknown> | undefined {
  let next: Record<string, unknown> | undefined;
  for (const [key, field] of fields) {
    const v = (source as Record<string, unknown>)[key];
    if (typeof v !== 'string') continue;
    const kept = truncate(v, LIMITS[field].max);
    if (kept !== v) (next ??= { ...source })[key] = kept;
  }
  return next;
}

/**
 * The alert with its long text truncated (see LIMITS). Pure; returns the
 * same object when nothing is too long. Refused fields are not checked here
 * (refusedField): the intake refuses them before.
 */
export function truncateAlert(alert: Alert): Alert {
  if (withinTruncationLimits(alert)) return alert;
  let next = cutFields(alert, ALERT_FIELDS);
  if (alert.tags.length > LIMITS.tagCount.max) (next ??= { ...alert }).tags = alert.tags.slice(0, LIMITS.tagCount.max);
  const update = alert.update && cutFields(alert.update, TRUNCATED_UPDATE_FIELDS);
  if (update) (next ??= { ...alert }).update = update;
  return next ? withoutUndefined(next as unknown as Alert) : alert;
}

/** Optional fields stay absent (not `undefined`): alerts are stored as JSON and compared in tests. */
function withoutUndefined(alert: Alert): Alert {
  const a = { ...alert } as Record<string, unknown>;
  for (const k of Object.keys(a)) if (a[k] === undefined) delete a[k];
  if (alert.update) {
    const u = { ...alert.update } as Record<string, unknown>;
    for (const k of Object.keys(u)) if (u[k] === undefined) delete u[k];
    a.update = u;
  }
  return a as unknown as Alert;
}

export type Bounded = { readonly ok: true; readonly alert: Alert } | ({ readonly ok: false } & TooLong);

/** An alert within every limit: refused when a field Zabbix bounds is longer, long text truncated. */
export function boundAlert(alert: Alert): Bounded {
  const refused = refusedField(alert);
  return refused ? { ok: false, ...refused } : { ok: true, alert: truncateAlert(alert) };
}
