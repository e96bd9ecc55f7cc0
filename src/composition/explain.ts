import { readMarkerKey } from '../adapters/marker-key.js';
import type { Config } from '../config/schema.js';
import type { Alert } from '../core/alert.js';
import { assessAlert, NO_STATE } from '../core/assess.js';
import { formatWindow, problemGroup, problemRule, symptomMode, type TicketDraft } from '../core/decide.js';
import { processingSettings } from './from-config.js';

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
 * What the rules in force make of one alert, as if no incident were open for its fingerprint: the object
 * `zabbix-glpi-bridge explain` prints and the status page's "try a rule" shows (one builder, so they cannot
 * differ). `draft` is the ticket draft itself, for `explain --online` to resolve its names; it is not printed.
 */
export function explainAlert(config: Config, alert: Alert, now: number): { readonly out: Record<string, unknown>; readonly draft?: TicketDraft } {
  const { classification: c, fingerprint, decision } = assessAlert(processingSettings(config, readMarkerKey(config.data_dir) ?? 'no-marker-key-yet-0123456789abcdef'), alert, NO_STATE, now);
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
    ...(draft ? { ticket: { title: draft.name, body: draft.content, marker: draft.marker, ...(draft.names ? { names: draft.names } : {}) } } : {}),
    note: 'evaluated as if no incident were open for this fingerprint',
  };
  return draft ? { out, draft } : { out };
}
