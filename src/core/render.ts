import type { Alert } from './alert.js';
import type { Classification } from './classify.js';
import { stripMarkers } from './fingerprint.js';
import { parseQuantity } from './units.js';

/** Placeholders templates may use. check-config rejects any other. */
export const TEMPLATE_VARIABLES = [
  'host', 'host_name', 'host_ip', 'trigger', 'trigger_id', 'trigger_description', 'event_name', 'event_id', 'severity', 'zabbix_severity',
  'category', 'value', 'opdata', 'item_name', 'item_key', 'item_id', 'tags', 'occurred_at', 'severity_reason', 'matched_by',
  'event_url', 'graph_url',
] as const;
export type TemplateVariable = (typeof TEMPLATE_VARIABLES)[number];

/**
 * Placeholders whose value is a link into Zabbix's frontend: a clickable
 * link in the body (text as well, so it can be copied), the bare URL in the
 * title. Built by the bridge from the configured frontend URL and Zabbix's ids.
 */
const LINK_VARIABLES: ReadonlySet<string> = new Set<TemplateVariable>(['event_url', 'graph_url']);

/** The default ticket body (rules' templates.body): every line whose placeholders are all empty is left out. */
export const DEFAULT_BODY = [
  'Zabbix problem: {{event_name}}',
  'Host: {{host_name}} ({{host}})',
  'IP: {{host_ip}}',
  'Severity: {{severity}} ({{severity_reason}})',
  'Category: {{category}} (matched by {{matched_by}})',
  'Item: {{item_name}}',
  'Item key: {{item_key}}',
  'Value: {{value}}',
  'Operational data: {{opdata}}',
  'Started: {{occurred_at}}',
  'Zabbix event: {{event_id}}',
  'Tags: {{tags}}',
  'Event page: {{event_url}}',
  'Graph: {{graph_url}}',
  '',
  'Description: {{trigger_description}}',
].join('\n');

/** GLPI's ticket `name` column holds 255 characters, counted after GLPI 10 has HTML-encoded the text. */
export const TITLE_MAX = 255;
export const BODY_MAX = 60_000;
const VALUE_MAX = 2_000;

const PLACEHOLDER = /\{\{\s*([a-z_]+)\s*\}\}/g;

export function templateVariables(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1] ?? '');
}

/** What rendering needs besides the alert: where Zabbix's frontend is, for links. */
export interface RenderContext {
  /** Zabbix's frontend base URL ("https://zabbix.example.org/zabbix/"); without it, no links. */
  readonly zabbixFrontendUrl?: string | undefined;
}

/**
 * The frontend's base URL from the API's ("…/zabbix/api_jsonrpc.php" →
 * "…/zabbix/"): the API is served by the frontend, from its folder.
 * undefined for anything but an http(s) URL.
 */
export function frontendUrlOf(apiUrl: string): string | undefined {
  if (!URL.canParse(apiUrl)) return undefined;
  const url = new URL('.', apiUrl);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  url.search = '';
  url.hash = '';
  return url.href;
}

/** The base URL ending in "/", or undefined when it is not an http(s) URL (a link must never be javascript: or data:). */
function frontendBase(url: string | undefined): string | undefined {
  if (url === undefined || !URL.canParse(url)) return undefined;
  const u = new URL(url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
  u.search = '';
  u.hash = '';
  return u.href.endsWith('/') ? u.href : `${u.href}/`;
}

const DIGITS = /^\d+$/;

/**
 * The problem's page in Zabbix: tr_events.php?triggerid=…&eventid=…, the
 * same on 6.0 to 7.4 (Zabbix's own media types link there: zabbix/zabbix
 * templates/media/jira/media_jira.yaml, CWebhookHelper.createProblemURL).
 * Trigger events only (event source 0); ids are checked to be digits.
 */
export function eventUrl(alert: Alert, ctx: RenderContext): string {
  const base = frontendBase(ctx.zabbixFrontendUrl);
  const { triggerId, eventId } = alert;
  if (!base || alert.eventSource !== '0' || triggerId === undefined || !DIGITS.test(triggerId) || !DIGITS.test(eventId)) return '';
  return `${base}tr_events.php?triggerid=${triggerId}&eventid=${eventId}`;
}

/**
 * The item's graph: history.php?action=showgraph&itemids[]=… (zabbix/zabbix
 * ui/history.php, on 6.0 to 7.4). Only numeric items have a graph; a text or
 * log value (one that is not a number with a unit) links to the item's
 * latest values instead (action=showvalues).
 */
export function graphUrl(alert: Alert, ctx: RenderContext): string {
  const base = frontendBase(ctx.zabbixFrontendUrl);
  const { itemId } = alert;
  if (!base || itemId === undefined || !DIGITS.test(itemId)) return '';
  const numeric = alert.itemValue === undefined || parseQuantity(alert.itemValue) !== undefined;
  return `${base}history.php?action=${numeric ? 'showgraph' : 'showvalues'}&itemids[]=${itemId}`;
}

export function variablesOf(alert: Alert, c: Classification, ctx: RenderContext = {}): Record<TemplateVariable, string> {
  return {
    host: alert.host,
    host_name: alert.hostName,
    host_ip: alert.hostIp ?? '',
    trigger: alert.triggerName,
    trigger_id: alert.triggerId ?? '',
    trigger_description: alert.triggerDescription ?? '',
    event_name: alert.eventName,
    event_id: alert.eventId,
    severity: c.severity,
    zabbix_severity: alert.severity,
    category: c.category,
    value: alert.itemValue ?? '',
    opdata: alert.opdata ?? '',
    item_name: alert.itemName ?? '',
    item_key: alert.itemKey ?? '',
    item_id: alert.itemId ?? '',
    tags: alert.tags.map((t) => (t.value ? `${t.tag}:${t.value}` : t.tag)).join(', '),
    occurred_at: alert.occurredAt ?? '',
    severity_reason: c.severityReason,
    matched_by: c.matchedBy,
    event_url: eventUrl(alert, ctx),
    graph_url: graphUrl(alert, ctx),
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

/** A value as it goes into a template: capped, without marker look-alikes, one kind of line break. */
function value(vars: Readonly<Record<string, string>>, name: string): string {
  return stripMarkers(clip(vars[name] ?? '', VALUE_MAX)).replace(/\r\n?/g, '\n');
}

/** Zabbix-supplied values go in capped and without marker look-alikes. */
function fill(template: string, vars: Readonly<Record<string, string>>, each: (v: string, name: string) => string): string {
  return template.replace(PLACEHOLDER, (_all, name: string) => each(value(vars, name), name));
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

/** A link the bridge built (an http(s) URL into Zabbix), shown as itself so that it can also be copied. */
function link(url: string): string {
  if (!/^https?:\/\//i.test(url)) return escapeHtml(url);
  const href = escapeHtml(url);
  return `<a href="${href}" target="_blank" rel="noopener noreferrer">${href}</a>`;
}

/** One template line as HTML: its text and every value escaped, links as links, line breaks inside values kept. */
function htmlLine(line: string, vars: Readonly<Record<string, string>>): string {
  const parts: string[] = [];
  let at = 0;
  for (const m of line.matchAll(PLACEHOLDER)) {
    const name = m[1] ?? '';
    parts.push(escapeHtml(line.slice(at, m.index)));
    const v = value(vars, name);
    parts.push(LINK_VARIABLES.has(name) ? link(v) : escapeHtml(v));
    at = m.index + m[0].length;
  }
  parts.push(escapeHtml(line.slice(at)));
  return parts.join('').split('\n').join('<br>\n');
}

/** A line with placeholders that all came out empty ("IP: " without an IP) says nothing: it is left out. */
function saysNothing(line: string, vars: Readonly<Record<string, string>>): boolean {
  const names = templateVariables(line);
  return names.length > 0 && names.every((n) => value(vars, n).trim() === '');
}

/**
 * The longest start of an HTML text within max characters, never cut inside
 * a tag or an entity, ending in "…" when cut (GLPI balances the tags left
 * open: htmLawed on 10, its sanitizer on 11).
 */
function clipHtml(html: string, max: number): string {
  if (html.length <= max) return html;
  let cut = html.slice(0, max - 1);
  const tag = cut.lastIndexOf('<');
  if (tag > cut.lastIndexOf('>')) cut = cut.slice(0, tag);
  const entity = cut.lastIndexOf('&');
  if (entity > cut.lastIndexOf(';')) cut = cut.slice(0, entity);
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/**
 * An HTML body from a text template: text and values escaped (only the
 * bridge's own links are markup), lines joined by <br>, paragraphs (a blank
 * line in the template) as <p>, lines about nothing left out, capped.
 * What GLPI 10 and 11 keep and show (RichText::getSafeHtml: p, br, a href
 * with http/https; scripts, forms and on* attributes removed).
 */
export function renderBody(template: string, vars: Readonly<Record<string, string>>): string {
  const paragraphs: string[] = [];
  let lines: string[] = [];
  const flush = (): void => {
    if (lines.length > 0) paragraphs.push(lines.join('<br>\n'));
    lines = [];
  };
  for (const line of template.replace(/\r\n?/g, '\n').split('\n')) {
    if (line.trim() === '') flush();
    else if (!saysNothing(line, vars)) lines.push(htmlLine(line, vars));
  }
  flush();
  // A template whose every line came out empty still gives GLPI a description (it refuses none on some setups).
  if (paragraphs.length === 0) return `<p>${escapeHtml(value(vars, 'event_name') || 'Zabbix problem')}</p>`;
  const body = paragraphs.map((p) => `<p>${p}</p>`).join('\n');
  if (body.length <= BODY_MAX) return body;
  // Too long: whole paragraphs while they fit, then the start of the next one, each still a closed <p>.
  let out = '';
  for (const p of paragraphs) {
    const sep = out === '' ? '' : '\n';
    const room = BODY_MAX - out.length - sep.length - '<p></p>'.length;
    if (room < 2) break;
    const piece = clipHtml(p, room);
    out += `${sep}<p>${piece}</p>`;
    if (piece !== p) break;
  }
  return out;
}

/** A free-text message (follow-up, solution) as safe HTML. */
export function htmlText(lines: readonly string[]): string {
  return clipHtml(lines.map((l) => escapeHtml(stripMarkers(clip(l, VALUE_MAX)))).join('<br>\n'), BODY_MAX);
}

/** "1h 2m", "5m 3s", "45s", "2d 3h 4m": how long something lasted, for people. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3_600);
  const m = Math.floor((s % 3_600) / 60);
  const sec = s % 60;
  if (d > 0) return `${d}d ${h}h ${m}m`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${sec}s`;
  return `${sec}s`;
}

/** "2026-11-23 06:18:41 UTC": a moment, for people (the bridge has no time zone of its own to show). */
export function formatTime(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** One value of an item's history (Zabbix's history.get: `clock` in seconds, `value` as text). */
export interface HistoryPoint {
  /** ms since the epoch. */
  readonly at: number;
  readonly value: string;
}

/** How many of an item's last values a ticket shows, and how much of each (a log line can be 64 KiB). */
export const VALUE_HISTORY_MAX = 10;
const HISTORY_VALUE_MAX = 200;

/**
 * The item's last values as a paragraph for a ticket body, newest first
 * ("Last values:" then "2026-11-23 06:18:41 UTC: 97 %" lines), values escaped
 * and cut; '' without any. For the dispatcher to append after fetching
 * history.get, when the Zabbix API is configured (issue 14 item 7).
 */
export function valueHistoryHtml(points: readonly HistoryPoint[], units = ''): string {
  const latest = [...points].filter((p) => Number.isFinite(p.at)).sort((a, b) => b.at - a.at).slice(0, VALUE_HISTORY_MAX);
  if (latest.length === 0) return '';
  const unit = units.trim() === '' ? '' : ` ${units.trim()}`;
  const lines = latest.map((p) => `${formatTime(p.at)}: ${escapeHtml(stripMarkers(clip(p.value.replace(/\s+/g, ' ').trim(), HISTORY_VALUE_MAX)))}${escapeHtml(unit)}`);
  return `<p>Last values:<br>\n${lines.join('<br>\n')}</p>`;
}

/** A rendered body with the value history after it, when both fit the body's maximum (else the body alone). */
export function withValueHistory(body: string, points: readonly HistoryPoint[], units = ''): string {
  const history = valueHistoryHtml(points, units);
  if (history === '') return body;
  const joined = `${body}\n${history}`;
  return joined.length <= BODY_MAX ? joined : body;
}
