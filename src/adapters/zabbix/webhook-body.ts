import { z } from 'zod';
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

/** event_tags arrives as a JSON string inside the JSON body ({EVENT.TAGSJSON}); an unexpanded macro means no tags. */
const eventTags = optionalText.transform((v, ctx): Tag[] => {
  const raw = present(v);
  if (raw === undefined) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
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

/** Body → ZabbixEvent, or the first offending field with a message that names it. */
export function parseWebhookBody(body: unknown): ParseResult {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return { ok: false, field: '(body)', message: 'body must be a JSON object of media type parameters' };
  }
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
