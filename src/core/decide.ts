import { severityRank, type Alert, type Severity } from './alert.js';
import type { Classification } from './classify.js';
import { ticketMarker } from './fingerprint.js';
import { renderBody, renderTitle, variablesOf } from './render.js';
import type { Rules } from './rules.js';

/** What the bridge knows about one incident (one fingerprint, one ticket cycle). */
export interface Incident {
  readonly fingerprint: string;
  /** Ticket cycle number for this fingerprint; part of the ticket marker. */
  readonly seq: number;
  /** open: a ticket exists or is queued; solved: the bridge solved it; suppressed: recovered within hold-down, never ticketed. */
  readonly status: 'open' | 'solved' | 'suppressed';
  readonly ticketId?: number;
  readonly marker: string;
  readonly category: string;
  readonly severity: Severity;
  readonly urgency: number;
  readonly impact: number;
  /** Problem events of this cycle still open in Zabbix. */
  readonly openEvents: readonly string[];
  /** Every problem event of this cycle. */
  readonly events: readonly string[];
  readonly occurrences: number;
  readonly openedAt: number;
  /** The create is held back until then (hold-down). */
  readonly holdUntil?: number;
  readonly solvedAt?: number;
}

export interface TicketDraft {
  readonly name: string;
  readonly content: string;
  readonly marker: string;
  readonly urgency: number;
  readonly impact: number;
  readonly type: number;
  readonly itilcategories_id: number;
  readonly entities_id: number;
  readonly requesttypes_id: number;
  readonly groups_id_assign: number;
}

export type RecoveryMode = 'solve' | 'close' | 'followup';

/** GLPI work derived from an alert; run later, in order per fingerprint, by the dispatcher. */
export type JobSpec =
  | { readonly type: 'create_ticket'; readonly ticket: TicketDraft; readonly delayMs: number; readonly eventId?: string }
  | { readonly type: 'followup'; readonly lines: readonly string[]; readonly isPrivate: boolean }
  | { readonly type: 'update_ticket'; readonly urgency: number; readonly impact: number; readonly lines: readonly string[]; readonly isPrivate: boolean }
  | { readonly type: 'solve'; readonly mode: RecoveryMode; readonly lines: readonly string[] }
  | { readonly type: 'reopen'; readonly lines: readonly string[] }
  /** Write the ticket link back to the Zabbix event (queued by the dispatcher after a create). */
  | { readonly type: 'zabbix_ack'; readonly eventIds: readonly string[]; readonly message: string; readonly acknowledge: boolean };

export type JobType = JobSpec['type'];

export type ActionName = 'open' | 'follow_up' | 'update_severity' | 'reopen' | 'solve' | 'suppress' | 'ignore';

export interface Decision {
  readonly action: ActionName;
  readonly reason: string;
  /** The incident after this alert; undefined when it does not change. */
  readonly incident?: Incident;
  readonly jobs: readonly JobSpec[];
  /** Cancel the incident's held-back create (hold-down hit). */
  readonly cancelCreate?: boolean;
}

export interface Policy {
  readonly holdDownMs: number;
  readonly reopenWindowMs: number;
  readonly recovery: RecoveryMode;
  readonly followupPrivate: boolean;
  /** Messages starting with this are the bridge's own write-back to Zabbix. */
  readonly writeBackPrefix: string;
}

export interface DecideInput {
  readonly alert: Alert;
  readonly classification: Classification;
  readonly fingerprint: string;
  readonly incident: Incident | undefined;
  readonly now: number;
  readonly policy: Policy;
  readonly rules: Rules;
  /** Classifies the same alert at another severity (for severity changes). */
  readonly reclassify: (severity: Severity) => Classification;
}

/** Event ids remembered per incident: enough to recognise redeliveries and late updates, bounded under storms. */
export const EVENTS_KEPT = 200;

function remember(events: readonly string[], eventId: string): string[] {
  const next = [...events, eventId];
  return next.length > EVENTS_KEPT ? next.slice(next.length - EVENTS_KEPT) : next;
}

function ignore(reason: string): Decision {
  return { action: 'ignore', reason, jobs: [] };
}

function valueLine(alert: Alert): string[] {
  return alert.itemValue !== undefined ? [`Value: ${alert.itemValue}`] : [];
}

function openNew(input: DecideInput, why: string): Decision {
  const { alert, classification: c, fingerprint: fp, incident, now, policy, rules } = input;
  const seq = (incident?.seq ?? 0) + 1;
  const marker = ticketMarker(fp, seq);
  const vars = variablesOf(alert, c);
  const ticket: TicketDraft = {
    name: renderTitle(rules.templates.title, vars, marker),
    content: renderBody(rules.templates.body, vars),
    marker,
    urgency: c.glpi.urgency,
    impact: c.glpi.impact,
    type: c.glpi.type,
    itilcategories_id: c.glpi.itilcategories_id,
    entities_id: c.glpi.entities_id,
    requesttypes_id: c.glpi.requesttypes_id,
    groups_id_assign: c.glpi.groups_id_assign,
  };
  const held = policy.holdDownMs > 0;
  return {
    action: 'open',
    reason: held ? `${why}; ticket held back ${policy.holdDownMs} ms (hold-down)` : why,
    incident: {
      fingerprint: fp,
      seq,
      status: 'open',
      marker,
      category: c.category,
      severity: c.severity,
      urgency: c.glpi.urgency,
      impact: c.glpi.impact,
      openEvents: [alert.eventId],
      events: [alert.eventId],
      occurrences: 1,
      openedAt: now,
      ...(held ? { holdUntil: now + policy.holdDownMs } : {}),
    },
    jobs: [{ type: 'create_ticket', ticket, delayMs: policy.holdDownMs, eventId: alert.eventId }],
  };
}

function onProblem(input: DecideInput): Decision {
  const { alert, classification: c, incident, now, policy } = input;
  if (incident?.status === 'open') {
    if (incident.events.includes(alert.eventId)) return ignore(`event ${alert.eventId} already part of this incident`);
    const occurrences = incident.occurrences + 1;
    const escalate = severityRank(c.severity) > severityRank(incident.severity);
    const lines = [
      `Problem occurred again: ${alert.eventName} (event ${alert.eventId}, occurrence ${occurrences}).`,
      ...valueLine(alert),
    ];
    const next: Incident = {
      ...incident,
      openEvents: [...incident.openEvents, alert.eventId],
      events: remember(incident.events, alert.eventId),
      occurrences,
      ...(escalate ? { severity: c.severity, urgency: c.glpi.urgency, impact: c.glpi.impact } : {}),
    };
    if (escalate) {
      lines.push(`Severity raised from ${incident.severity} to ${c.severity}.`);
      return {
        action: 'update_severity',
        reason: `fingerprint has an open ticket; severity raised ${incident.severity} → ${c.severity}`,
        incident: next,
        jobs: [{ type: 'update_ticket', urgency: c.glpi.urgency, impact: c.glpi.impact, lines, isPrivate: policy.followupPrivate }],
      };
    }
    return {
      action: 'follow_up',
      reason: `fingerprint has an open ticket (occurrence ${occurrences})`,
      incident: next,
      jobs: [{ type: 'followup', lines, isPrivate: policy.followupPrivate }],
    };
  }
  if (!c.glpi.ticket) return ignore(`no ticket for severity ${c.severity} in category ${c.category} (rules)`);
  if (incident?.status === 'solved' && incident.solvedAt !== undefined && now - incident.solvedAt <= policy.reopenWindowMs) {
    const lines = [
      `Problem occurred again after being solved: ${alert.eventName} (event ${alert.eventId}).`,
      ...valueLine(alert),
    ];
    const { solvedAt: _solved, ...rest } = incident;
    return {
      action: 'reopen',
      reason: `ticket solved ${Math.round((now - incident.solvedAt) / 1000)} s ago, within the reopen window`,
      incident: {
        ...rest,
        status: 'open',
        openEvents: [alert.eventId],
        events: remember(incident.events, alert.eventId),
        occurrences: incident.occurrences + 1,
      },
      jobs: [{ type: 'reopen', lines }],
    };
  }
  const why = incident === undefined ? 'new fingerprint' : incident.status === 'suppressed' ? 'new problem after a suppressed flap' : 'previous ticket solved outside the reopen window';
  return openNew(input, why);
}

function onRecovery(input: DecideInput): Decision {
  const { alert, incident, now, policy } = input;
  if (incident?.status !== 'open') return ignore('recovery without an open incident');
  if (!incident.openEvents.includes(alert.eventId)) return ignore(`event ${alert.eventId} is not open in this incident`);
  const openEvents = incident.openEvents.filter((e) => e !== alert.eventId);
  if (openEvents.length > 0) {
    return {
      action: 'follow_up',
      reason: `event recovered, ${openEvents.length} other problem(s) of this incident still open`,
      incident: { ...incident, openEvents },
      jobs: [{ type: 'followup', lines: [`Event ${alert.eventId} recovered; ${openEvents.length} problem(s) still open.`], isPrivate: policy.followupPrivate }],
    };
  }
  if (incident.ticketId === undefined && incident.holdUntil !== undefined && now < incident.holdUntil) {
    return {
      action: 'suppress',
      reason: `recovered within the hold-down (${Math.round((now - incident.openedAt) / 1000)} s after the problem); no ticket`,
      incident: { ...incident, status: 'suppressed', openEvents: [] },
      jobs: [],
      cancelCreate: true,
    };
  }
  const lines = [`Problem resolved in Zabbix: ${alert.eventName} (event ${alert.eventId}${alert.recoveryEventId ? `, recovery event ${alert.recoveryEventId}` : ''}).`, ...valueLine(alert)];
  const next: Incident =
    policy.recovery === 'followup' ? { ...incident, openEvents } : { ...incident, openEvents, status: 'solved', solvedAt: now };
  return { action: 'solve', reason: `last open problem recovered (recovery: ${policy.recovery})`, incident: next, jobs: [{ type: 'solve', mode: policy.recovery, lines }] };
}

function onUpdate(input: DecideInput): Decision {
  const { alert, incident, policy } = input;
  const u = alert.update;
  if (!u) return ignore('update without update details');
  if (u.message !== undefined && u.message.startsWith(policy.writeBackPrefix)) return ignore('our own write-back message');
  if (incident === undefined || incident.status === 'suppressed') return ignore('update for an event without a ticket');
  if (!incident.events.includes(alert.eventId)) return ignore(`event ${alert.eventId} is not part of the current incident`);
  const who = u.user ?? 'someone';
  const lines = [`Zabbix: ${u.action || 'updated'} by ${who}.`];
  if (u.message !== undefined) lines.push(`Message: ${u.message}`);
  if (u.severityChanged && alert.severity !== incident.severity) {
    const c = input.reclassify(alert.severity);
    lines.push(`Severity changed from ${incident.severity} to ${alert.severity}.`);
    return {
      action: 'update_severity',
      reason: `severity changed in Zabbix ${incident.severity} → ${alert.severity}`,
      incident: { ...incident, severity: alert.severity, urgency: c.glpi.urgency, impact: c.glpi.impact },
      jobs: [{ type: 'update_ticket', urgency: c.glpi.urgency, impact: c.glpi.impact, lines, isPrivate: policy.followupPrivate }],
    };
  }
  return {
    action: 'follow_up',
    reason: `update in Zabbix (${u.action || 'message'})`,
    jobs: [{ type: 'followup', lines, isPrivate: policy.followupPrivate }],
  };
}

/** Alert + incident state + now + policy → the action to take, with its reason. Pure. */
export function decide(input: DecideInput): Decision {
  switch (input.alert.kind) {
    case 'problem':
      return onProblem(input);
    case 'recovery':
      return onRecovery(input);
    case 'update':
      return onUpdate(input);
  }
}
