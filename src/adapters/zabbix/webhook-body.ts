import * as z from 'zod';
import type { Tag } from '../../core/alert.js';
import { fits, LIMITS, longerThan, PARAMETER_MAX, type LimitedField } from '../../core/limits.js';
import type { ZabbixEvent } from '../../core/normalise.js';
import { present } from '../../core/normalise.js';

/** Longest value we accept in any one parameter (Zabbix's own alert message limit is 64 KiB). */
export const FIELD_MAX = PARAMETER_MAX;

const text = z.string({ error: (i) => (i.input === undefined ? 'is required' : `must be a string (every media type parameter is a string), got ${typeof i.input}`) }).max(FIELD_MAX, `is longer than ${FIELD_MAX} characters`);
const optionalText = text.optional();
const DIGITS = /^\d+$/;
const NUMERIC_MESSAGE = 'must be a number in a string, e.g. "1234"';
/** Within what Zabbix allows for this field (core/limits.ts), measured as normalise() takes it (trimmed; a macro is absent). */
const within = (field: LimitedField) => (v: string | undefined): boolean => fits(present(v) ?? '', LIMITS[field].max);
/** An id: digits, no longer than Zabbix's ids. */
const id = (field: LimitedField) => text.regex(DIGITS, NUMERIC_MESSAGE).refine(within(field), longerThan(field));
/** A parameter that may also be absent: empty, or a macro Zabbix left unexpanded. */
const macroOr = (pattern: RegExp, message: string) => optionalText.refine((v) => present(v) === undefined || pattern.test((v as string).trim()), message);
const optionalId = (field: LimitedField) => macroOr(DIGITS, NUMERIC_MESSAGE).refine(within(field), longerThan(field));
/** Text Zabbix bounds (host names, event name, item key): longer is refused, naming the parameter. */
const boundedText = (field: LimitedField) => optionalText.refine(within(field), longerThan(field));

const tagList = z.array(
  z.object({
    tag: z.string().refine((v) => fits(v, LIMITS.tagName.max), longerThan('tagName')),
    value: z.string().refine((v) => fits(v, LIMITS.tagValue.max), longerThan('tagValue')).default(''),
  }),
  { error: 'must be a JSON array of {"tag","value"} objects (the {EVENT.TAGSJSON} macro)' },
);

/** tagsJson()'s answer for text that is not JSON. */
const NOT_JSON = Symbol('not JSON');

/**
 * event_tags read as JSON (it arrives as a JSON string inside the JSON body, {EVENT.TAGSJSON}): an unexpanded
 * macro means no tags. The schema and the quick path both read it here; each then checks the list its own way.
 */
function tagsJson(v: string | undefined): unknown {
  const raw = present(v);
  if (raw === undefined) return [];
  try {
    return JSON.parse(raw);
  } catch {
    return NOT_JSON;
  }
}

const eventTags = optionalText.transform((v, ctx): Tag[] => {
  const parsed = tagsJson(v);
  if (parsed === NOT_JSON) {
    ctx.addIssue({ code: 'custom', message: 'is not valid JSON (expected the {EVENT.TAGSJSON} macro)' });
    return z.NEVER;
  }
  const r = tagList.safeParse(parsed);
  if (!r.success) {
    const issue = r.error.issues[0];
    // A bad tag field is named by its place ("event_tags[3].value is longer than 255 characters"), never by its text.
    const inTag = issue?.path.length === 2;
    ctx.addIssue({ code: 'custom', message: issue?.message ?? 'has the wrong shape', ...(inTag ? { path: issue.path } : {}) });
    return z.NEVER;
  }
  return r.data;
});

/**
 * The JSON body our media type sends. Unknown parameters are allowed (admins
 * add their own) and ignored; the ones we use are checked here.
 */
export const webhookBody = z
  .object({
    event_id: id('eventId'),
    event_value: text.regex(/^[01]$/, 'must be "1" (problem) or "0" (recovery)'),
    event_source: macroOr(/^[0-3]$/, 'must be "0".."3"'),
    event_update_status: macroOr(/^[01]$/, 'must be "0" or "1"'),
    event_nseverity: text.regex(/^[0-5]$/, 'must be a Zabbix severity number "0".."5" ({EVENT.NSEVERITY})'),
    event_recovery_id: optionalId('recoveryEventId'),
    // {EVENT.CAUSE.ID} exists from Zabbix 6.4; 6.0 sends the macro unexpanded (absent, like the other macros), and a
    // real 7.0.22 sends "*UNKNOWN*" (Zabbix's text for a macro it cannot resolve) for an event that is not a symptom.
    event_cause_id: optionalId('eventId'),
    trigger_id: optionalId('triggerId'),
    item_id: optionalId('itemId'),
    host_host: text.refine((v) => present(v) !== undefined, 'must name the host ({HOST.HOST})').refine(within('host'), longerThan('host')),
    event_tags: eventTags,
    event_name: boundedText('eventName'),
    event_update_action: optionalText,
    event_update_message: optionalText,
    event_update_date: optionalText,
    event_update_time: optionalText,
    event_recovery_date: optionalText,
    event_recovery_time: optionalText,
    event_severity: optionalText,
    event_date: optionalText,
    event_time: optionalText,
    event_opdata: optionalText,
    trigger_name: optionalText,
    // Long text (truncated by normalise, core/limits.ts): a trigger's description is a 64 KiB text column.
    trigger_description: optionalText,
    item_name: optionalText,
    host_name: boundedText('hostName'),
    host_ip: optionalText,
    item_key: boundedText('itemKey'),
    item_value: optionalText,
    user_fullname: optionalText,
  })
  .catchall(text)
  // Parameters we do not use (event_status, alert_subject, admin additions) must still be strings.
  .refine((b) => present(b.trigger_name) !== undefined || present(b.event_name) !== undefined, {
    message: 'is required (or event_name)',
    path: ['trigger_name'],
  });

export type WebhookBody = z.output<typeof webhookBody>;

export type ParseResult = { ok: true; event: ZabbixEvent } | { ok: false; field: string; message: string };

const EVENT_VALUE = /^[01]$/;
const SOURCE = /^[0-3]$/;
const SEVERITY = /^[0-5]$/;
const withinEventId = within('eventId');
const withinRecoveryId = within('recoveryEventId');
const withinTriggerId = within('triggerId');
const withinItemId = within('itemId');
const withinHost = within('host');
const withinHostName = within('hostName');
const withinEventName = within('eventName');
const withinItemKey = within('itemKey');

/** macroOr(): absent, empty, a macro, or matching `pattern` once trimmed. */
const macroOrOk = (v: string | undefined, pattern: RegExp): boolean => v === undefined || present(v) === undefined || pattern.test(v.trim());
const optionalIdOk = (v: string | undefined, fits: (v: string | undefined) => boolean): boolean => macroOrOk(v, DIGITS) && fits(v);

/** event_tags as tagList gives it (read by tagsJson()), or undefined when tagList would refuse it. */
function quickTags(parsed: unknown): Tag[] | undefined {
  if (!Array.isArray(parsed)) return undefined;
  const tags: Tag[] = new Array<Tag>(parsed.length);
  for (let i = 0; i < parsed.length; i++) {
    const t: unknown = parsed[i];
    if (t === null || typeof t !== 'object' || Array.isArray(t)) return undefined;
    const { tag, value } = t as { tag?: unknown; value?: unknown };
    if (typeof tag !== 'string' || !fits(tag, LIMITS.tagName.max)) return undefined;
    if (value === undefined) tags[i] = { tag, value: '' };
    else if (typeof value !== 'string' || !fits(value, LIMITS.tagValue.max)) return undefined;
    else tags[i] = { tag, value };
  }
  return tags;
}

/**
 * The common case without zod (issue 16: zod's parse was most of the main thread's validation cost): a body
 * every check of webhookBody passes gives the event zod's would; anything else — any parameter that is not a
 * string or is too long, any check that fails — returns undefined, and zod decides (and names the field). Each
 * check here is the schema's own (the same patterns and limits), written out apart from it on purpose:
 * test/unit/webhook-body-fast.test.ts compares the two readings on the recorded bodies and thousands of variants
 * of them, which finds a difference only while they are two. Only reading event_tags' JSON text is shared.
 */
export function quickParse(body: Record<string, unknown>): ZabbixEvent | undefined {
  // Every parameter a string within FIELD_MAX. A body from JSON.parse has only own keys.
  for (const k in body) {
    const v = body[k];
    if (typeof v !== 'string' || v.length > FIELD_MAX || k === '__proto__') return undefined;
  }
  const b = body as Record<string, string | undefined>;
  const eventId = b.event_id;
  if (eventId === undefined || !DIGITS.test(eventId) || !withinEventId(eventId)) return undefined;
  if (b.event_value === undefined || !EVENT_VALUE.test(b.event_value)) return undefined;
  if (!macroOrOk(b.event_source, SOURCE) || !macroOrOk(b.event_update_status, EVENT_VALUE)) return undefined;
  if (b.event_nseverity === undefined || !SEVERITY.test(b.event_nseverity)) return undefined;
  if (!optionalIdOk(b.event_recovery_id, withinRecoveryId) || !optionalIdOk(b.event_cause_id, withinEventId)) return undefined;
  if (!optionalIdOk(b.trigger_id, withinTriggerId) || !optionalIdOk(b.item_id, withinItemId)) return undefined;
  if (b.host_host === undefined || present(b.host_host) === undefined || !withinHost(b.host_host)) return undefined;
  if (!withinEventName(b.event_name) || !withinHostName(b.host_name) || !withinItemKey(b.item_key)) return undefined;
  if (present(b.trigger_name) === undefined && present(b.event_name) === undefined) return undefined;
  const tags = quickTags(tagsJson(b.event_tags));
  if (tags === undefined) return undefined;
  // zod's event: every parameter but event_tags (in the body's order, not zod's: normalise() reads the event by
  // name), and tags. Copied by a rest pattern, not key by key: an object given 20-odd keys one by one by computed
  // name turns into a dictionary (V8 stops adding fast properties that way past a dozen), and every read of it in
  // normalise() then looks the key up in a hash table (issue 16: a fifth of the main thread's extra time per alert
  // over the ceiling's, with the scavenges of the bigger objects).
  const { event_tags: _tagsText, ...event }: Record<string, unknown> = b;
  event.tags = tags;
  return event as unknown as ZabbixEvent;
}

/** Body → ZabbixEvent, or the first offending field with a message that names it. */
export function parseWebhookBody(body: unknown): ParseResult {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return { ok: false, field: '(body)', message: 'body must be a JSON object of media type parameters' };
  }
  const quick = quickParse(body as Record<string, unknown>);
  if (quick !== undefined) return { ok: true, event: quick };
  return slowParse(body);
}

/** Body → ZabbixEvent by the zod schema alone (what parseWebhookBody gives for every body; exported for the test that compares). */
export function slowParse(body: object): ParseResult {
  const r = webhookBody.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0];
    const field = issue?.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i > 0 ? '.' : ''}${String(p)}`)).join('') || '(body)';
    return { ok: false, field, message: `${field} ${issue?.message ?? 'is invalid'}` };
  }
  const { event_tags, ...rest } = r.data;
  const fields = Object.fromEntries(Object.entries(rest).filter(([, v]) => typeof v === 'string')) as Record<string, string>;
  return { ok: true, event: { ...(fields as unknown as Omit<ZabbixEvent, 'tags'>), tags: event_tags } };
}
