import type { Alert } from './alert.js';
import type { Classification } from './classify.js';
import { stripMarkers } from './fingerprint.js';

/** Placeholders templates may use. check-config rejects any other. */
export const TEMPLATE_VARIABLES = [
  'host', 'host_name', 'host_ip', 'trigger', 'event_name', 'event_id', 'severity', 'zabbix_severity',
  'category', 'value', 'opdata', 'item_key', 'tags', 'occurred_at', 'severity_reason', 'matched_by',
] as const;
export type TemplateVariable = (typeof TEMPLATE_VARIABLES)[number];

/** GLPI's ticket `name` column holds 255 characters, counted after GLPI 10 has HTML-encoded the text. */
export const TITLE_MAX = 255;
export const BODY_MAX = 60_000;
const VALUE_MAX = 2_000;

const PLACEHOLDER = /\{\{\s*([a-z_]+)\s*\}\}/g;

export function templateVariables(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1] ?? '');
}

export function variablesOf(alert: Alert, c: Classification): Record<TemplateVariable, string> {
  return {
    host: alert.host,
    host_name: alert.hostName,
    host_ip: alert.hostIp ?? '',
    trigger: alert.triggerName,
    event_name: alert.eventName,
    event_id: alert.eventId,
    severity: c.severity,
    zabbix_severity: alert.severity,
    category: c.category,
    value: alert.itemValue ?? '',
    opdata: alert.opdata ?? '',
    item_key: alert.itemKey ?? '',
    tags: alert.tags.map((t) => (t.value ? `${t.tag}:${t.value}` : t.tag)).join(', '),
    occurred_at: alert.occurredAt ?? '',
    severity_reason: c.severityReason,
    matched_by: c.matchedBy,
  };
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/g;

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** A complete HTML tag (`<b>`, `</a>`, `<br/>`): not a lone `<` as in "free < 20%". */
const TAG = /<\/?[a-zA-Z][^<>]*>/g;

/** Text for a plain-text field such as a ticket title: no control characters, no tags, no marker look-alikes, one line. */
export function plain(text: string, max = VALUE_MAX): string {
  return clip(stripMarkers(text.replace(CONTROL, '').replace(TAG, '')).replace(/\s+/g, ' ').trim(), max);
}

/**
 * Length of a text as GLPI 10 measures it against the column: its sanitizer
 * escapes quotes and backslashes for SQL (2 characters each) and encodes `&`,
 * `<` and `>` as 5-character entities (`&#38;`), then cuts the result at 255
 * (CommonDBTM::filterValues). A title within this budget is never cut, so the
 * cut can never land inside an entity or after a lone backslash.
 */
export function glpiStoredLength(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) n += storedCost(text.charCodeAt(i));
  return n;
}

/** Characters one UTF-16 unit takes once GLPI 10 has stored it (see glpiStoredLength). */
function storedCost(c: number): number {
  if (c === 38 || c === 60 || c === 62) return 5; // & < > → &#38; &#60; &#62;
  if (c === 34 || c === 39 || c === 92) return 2; // " ' \ → escaped for SQL
  return 1;
}

/** The longest prefix of text (ending in "…" when cut) whose stored length fits max. */
function clipStored(text: string, max: number): string {
  if (glpiStoredLength(text) <= max) return text;
  let n = 0;
  let i = 0;
  for (; i < text.length; i++) {
    const step = storedCost(text.charCodeAt(i));
    if (n + step > max - 1) break;
    n += step;
  }
  // Never cut a surrogate pair in two.
  if (i > 0 && /[\uD800-\uDBFF]/.test(text.charAt(i - 1))) i--;
  return `${text.slice(0, i).trimEnd()}…`;
}

/** Text to put inside GLPI's HTML content: escaped so no markup from Zabbix can get through. */
export function escapeHtml(text: string): string {
  return text
    .replace(CONTROL, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** Zabbix-supplied values go in capped and without marker look-alikes. */
function fill(template: string, vars: Readonly<Record<string, string>>, each: (v: string) => string): string {
  return template.replace(PLACEHOLDER, (_all, name: string) => each(stripMarkers(clip(vars[name] ?? '', VALUE_MAX))));
}

/**
 * The ticket title: the bridge's marker first (so no amount of text pushes it
 * out of the column), then the operator's template as plain text, cut so
 * that the whole fits GLPI's 255 characters once HTML-encoded.
 */
export function renderTitle(template: string, vars: Readonly<Record<string, string>>, marker: string): string {
  const title = plain(fill(template, vars, (v) => v), BODY_MAX);
  return `${marker} ${clipStored(title, TITLE_MAX - glpiStoredLength(marker) - 1)}`;
}

/** An HTML body from a text template: values escaped, line breaks kept, capped. */
export function renderBody(template: string, vars: Readonly<Record<string, string>>): string {
  const filled = fill(escapeHtml(template), vars, escapeHtml);
  return clip(filled.split('\n').join('<br>\n'), BODY_MAX);
}

/** A free-text message (follow-up, solution) as safe HTML. */
export function htmlText(lines: readonly string[]): string {
  return clip(lines.map((l) => escapeHtml(stripMarkers(clip(l, VALUE_MAX)))).join('<br>\n'), BODY_MAX);
}
