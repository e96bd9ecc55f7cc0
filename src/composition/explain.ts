import { readMarkerKey } from '../adapters/marker-key.js';
import type { Config } from '../config/schema.js';
import type { Alert } from '../core/alert.js';
import { assessAlert, NO_STATE } from '../core/assess.js';
import { formatWindow, problemGroup, problemRule, rankedAsCause, symptomMode, type TicketDraft } from '../core/decide.js';
import { processingSettings } from './from-config.js';
import { pgConnection, postgres } from './store.js';

/** What recurrence of this alert, or its group firing together, would link, in words (the category's `problems` rule). */
function problemLine(config: Config, category: string, alert: Alert): string {
  const rule = problemRule(config.rules, category);
  if (!rule) return `none: category ${category} has no problems rule`;
  const lines: string[] = [];
  if (rule.afterCycles !== undefined && rule.withinMs !== undefined) lines.push(`after ${rule.afterCycles} ticket cycles of this fingerprint within ${formatWindow(rule.withinMs)}, its tickets are linked to one GLPI problem (Problem_Ticket)`);
  const t = rule.together;
  if (t) lines.push(`when ${t.fingerprints} incidents of ${t.by === 'host' ? `host ${alert.host}` : 'any host'} in category ${category} open tickets within ${formatWindow(t.withinMs)} of each other (group ${problemGroup(config.rules, alert, category) ?? ''}), all their tickets are linked to one GLPI problem of the group (Problem_Ticket)`);
  return `${lines.join('; and ')}; created by the bridge and never closed by it; one a human solved or closed collects no more, and the next recurrence opens another`;
}

/** What a symptom's ticket would be linked to (Zabbix 6.4+ {EVENT.CAUSE.ID}; the category's `symptoms`). */
function symptomLine(config: Config, category: string, cause: string): string {
  const mode = symptomMode(config.rules, category);
  const when = `symptom of event ${cause} (symptoms: ${mode})`;
  if (mode === 'skip') return `${when}: no ticket, when the bridge holds its cause`;
  if (mode === 'ticket') return `${when}: a ticket of its own, not linked`;
  return `${when}: its ticket would be linked to the cause's ticket (Ticket_Ticket, linked to), when the bridge holds one`;
}

/**
 * What the poller adds to this alert's ticket while it is open when Zabbix changes something it sends no
 * webhook for (zabbix.poll.on_maintenance / on_disabled; services/poller.ts), and whether the ticket is solved.
 */
function pollerNotesLine(config: Config, alert: Alert, ticket: boolean): Record<string, string> | string {
  const zb = config.zabbix;
  if (!ticket) return 'none: this alert opens no ticket';
  if (zb.url === '' || !zb.poll.enabled) return `none: the poller is off (${zb.url === '' ? 'no zabbix.url' : 'zabbix.poll.enabled: false'}), and Zabbix sends no webhook when a host enters a maintenance or a trigger is disabled`;
  const host = alert.hostName || alert.host;
  const hold = config.correlation.hold_down > 0 ? '; a ticket still held back by correlation.hold_down is never created' : '';
  const maintenance =
    zb.poll.on_maintenance === 'solve'
      ? `host ${host} enters a maintenance while the ticket is open: the ticket is solved with a solution saying so ("Host ${host} entered maintenance <name> (…)", "Ticket solved by the bridge: zabbix.poll.on_maintenance is solve.", and how long the incident lasted)${hold} (zabbix.poll.on_maintenance: solve)`
      : `host ${host} enters a maintenance while the ticket is open: one follow-up ("Host ${host} entered maintenance <name> (with or without data collection, until …)"), the ticket stays open; when the maintenance ends and the problem is still open, one more ("Host ${host} left maintenance <name>; the problem is still open in Zabbix.") (zabbix.poll.on_maintenance: note)`;
  const what = `its trigger, host ${host}${alert.itemKey ? ` or item ${alert.itemKey}` : ' or item'} disabled in Zabbix while the ticket is open (Zabbix then never recovers the problem)`;
  const disabled =
    zb.poll.on_disabled === 'solve'
      ? `${what}: the ticket is solved with a solution saying what was disabled, by whom when the audit log says so, and "Ticket solved by the bridge: zabbix.poll.on_disabled is solve."${hold} (zabbix.poll.on_disabled: solve)`
      : `${what}: one follow-up per thing disabled saying so (and by whom, when the audit log says), the ticket stays open (zabbix.poll.on_disabled: note)`;
  return { maintenance, disabled, schedule: `checked on zabbix.poll.schedule (${zb.poll.schedule}); each change said once per event, also across restarts` };
}

/** The item's last values in the ticket body (zabbix.value_history; services/value-history.ts). */
function valueHistoryLine(config: Config, alert: Alert, ticket: boolean): string {
  const vh = config.zabbix.value_history;
  if (!ticket) return 'none: this alert opens no ticket';
  if (!vh.enabled) return 'off (zabbix.value_history.enabled: false): no value history in the ticket body';
  if (!alert.itemId) return 'none: the alert names no item (item_id), so the ticket body carries no value history';
  return `the last ${vh.count} values of item ${alert.itemId}${alert.itemKey ? ` (${alert.itemKey})` : ''}, newest first, read from the Zabbix API when the create runs and added to the ticket body; waited for at most ${formatWindow(vh.timeout)}, then the ticket is created without them`;
}

/**
 * The key ticket markers are rendered with, as the daemon renders them: on PostgreSQL the one the bridges on
 * the database share (meta marker_key; a node's own data_dir/marker-key may differ and is then not used:
 * MARKER_KEY_FROM_DATABASE), else data_dir/marker-key. `note` says when the database's could not be used.
 */
export function explainMarkerKey(config: Config): { readonly key?: string; readonly note?: string } {
  if (config.store.backend !== 'postgres') return {};
  try {
    const key = postgres().readStoredMarkerKey(pgConnection(config));
    return key !== undefined ? { key } : { note: 'no marker key stored in the database yet (no bridge has started on it): the marker is rendered with data_dir/marker-key, which the first bridge to start offers' };
  } catch (e) {
    return { note: `the database's marker key could not be read (${(e as Error).message}): the marker is rendered with data_dir/marker-key, which may differ from the one the bridges use` };
  }
}

/**
 * What the rules in force make of one alert, as if no incident were open for its fingerprint: the object
 * `zabbix-glpi-bridge explain` prints and the status page's "try a rule" shows (one builder, so they cannot
 * differ). `draft` is the ticket draft itself, for `explain --online` to resolve its names; it is not printed.
 */
export function explainAlert(config: Config, alert: Alert, now: number, markerKey?: string): { readonly out: Record<string, unknown>; readonly draft?: TicketDraft } {
  const key = markerKey ?? readMarkerKey(config.data_dir) ?? 'no-marker-key-yet-0123456789abcdef';
  const { classification: c, fingerprint, decision } = assessAlert(processingSettings(config, key), alert, NO_STATE, now);
  const create = decision.jobs.find((j) => j.type === 'create_ticket');
  const draft = create?.type === 'create_ticket' ? create.ticket : undefined;
  const out = {
    alert,
    category: c.category,
    matched_by: c.matchedBy,
    severity: c.severity,
    severity_reason: c.severityReason,
    fingerprint,
    action: decision.action,
    reason: decision.reason,
    glpi: c.glpi,
    jobs: decision.jobs.map((j) => j.type),
    problem: problemLine(config, c.category, alert),
    ...(alert.causeEventId !== undefined ? { symptom: symptomLine(config, c.category, alert.causeEventId) } : {}),
    ...(rankedAsCause(alert) ? { symptom: `ranked as cause (symptoms: ${symptomMode(config.rules, c.category)}): a ticket the bridge linked to its former cause's would be unlinked (Ticket_Ticket removed; where the API cannot, a follow-up says so); a symptom skipped earlier would get its ticket now` } : {}),
    poller_notes: pollerNotesLine(config, alert, draft !== undefined),
    value_history: valueHistoryLine(config, alert, draft !== undefined),
    ...(draft ? { ticket: { title: draft.name, body: draft.content, marker: draft.marker, ...(draft.names ? { names: draft.names } : {}) } } : {}),
    note: 'evaluated as if no incident were open for this fingerprint',
  };
  return draft ? { out, draft } : { out };
}
