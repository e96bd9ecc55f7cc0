import type { Alert } from './alert.js';
import type { Classification } from './classify.js';

/** Placeholders templates may use. check-config rejects any other. */
export const TEMPLATE_VARIABLES = [
  'host', 'host_name', 'host_ip', 'trigger', 'event_name', 'event_id', 'severity', 'zabbix_severity',
  'category', 'value', 'opdata', 'item_key', 'tags', 'occurred_at', 'severity_reason', 'matched_by',
] as const;
export type TemplateVariable = (typeof TEMPLATE_VARIABLES)[number];

export const TITLE_MAX = 250;
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

/** Text for a plain-text field such as a ticket title: no control characters, no tags, one line. */
export function plain(text: string, max = VALUE_MAX): string {
  return clip(text.replace(CONTROL, '').replace(/<[^>]*>?/g, '').replace(/\s+/g, ' ').trim(), max);
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

function fill(template: string, vars: Readonly<Record<string, string>>, each: (v: string) => string): string {
  return template.replace(PLACEHOLDER, (_all, name: string) => each(clip(vars[name] ?? '', VALUE_MAX)));
}

/** The ticket title: the operator's template, plain text, capped, with the bridge's marker at the end. */
export function renderTitle(template: string, vars: Readonly<Record<string, string>>, marker: string): string {
  const title = plain(fill(template, vars, (v) => v), TITLE_MAX - marker.length - 1);
  return `${title} ${marker}`;
}

/** An HTML body from a text template: values escaped, line breaks kept, capped. */
export function renderBody(template: string, vars: Readonly<Record<string, string>>): string {
  const filled = fill(escapeHtml(template), vars, escapeHtml);
  return clip(filled.split('\n').join('<br>\n'), BODY_MAX);
}

/** A free-text message (follow-up, solution) as safe HTML. */
export function htmlText(lines: readonly string[]): string {
  return clip(lines.map((l) => escapeHtml(clip(l, VALUE_MAX))).join('<br>\n'), BODY_MAX);
}
