import { severityLabel, severityRank, type Alert, type Severity } from './alert.js';
import type { Classification } from './classify.js';
import { ticketMarker } from './fingerprint.js';
import type { Digests } from './ports.js';
import { formatDuration, formatTime, htmlText, renderBody, renderTitle, variablesOf, type RenderContext } from './render.js';
import { draftFields, type ActorRole, type DraftNames, type ProblemRule, type Rules, type SymptomMode, type TogetherRule } from './rules.js';

/** What the bridge knows about one incident (one fingerprint, one ticket cycle). */
export interface Incident {
  readonly fingerprint: string;
  /** Ticket cycle number for this fingerprint. */
  readonly cycle: number;
  /** open: a ticket exists or is queued; solved: the cycle ended (the bridge solved the ticket, or recovery: followup and nothing is open); suppressed: recovered within hold-down, never ticketed. */
  readonly status: 'open' | 'solved' | 'suppressed';
  readonly ticketId?: number;
  readonly marker: string;
  readonly category: string;
  readonly severity: Severity;
  readonly urgency: number;
  readonly impact: number;
  /** Problem events of this cycle still open in Zabbix (which ones: the store's event index). */
  readonly openCount: number;
  /** Problems this cycle (its ticket) has had, reopenings included. */
  readonly occurrences: number;
  /** When the bridge received the cycle's first problem (ms). */
  readonly openedAt: number;
  /**
   * When the cycle's first problem started in Zabbix (ms; its {EVENT.DATE}
   * {EVENT.TIME}), for the duration the recovery reports. Absent in incidents
   * stored before it was recorded, and when Zabbix gave no time: the
   * duration is then counted from openedAt.
   */
  readonly startedAt?: number;
  /** The create is held back until then (hold-down). */
  readonly holdUntil?: number;
  readonly solvedAt?: number;
  /** The fingerprint fields the incident was opened with (correlation.fingerprint may change on reload). */
  readonly fields?: readonly string[];
  /**
   * Poller notes put on this cycle's ticket (`<event id>:<note key>`: a maintenance entered, a trigger
   * disabled…), so the same change is never announced twice, whatever the inbox still remembers. Absent in
   * incidents stored before notes existed (an optional field of the incident's JSON: no migration).
   */
  readonly announced?: readonly string[];
  /**
   * The ticket cycles this fingerprint opened within its category's problem window (`problems.within`),
   * oldest first, with when each was received (ms): the recurrence count behind a GLPI Problem (issue 14
   * item 1). Kept only when the category has a `problems` rule; an optional field of the incident's JSON.
   */
  readonly recent?: readonly { readonly cycle: number; readonly at: number }[];
  /**
   * Only in a problem group's record (see groupRecord): the ticket cycles of the group's incidents that opened
   * within `problems.together.within`, oldest first.
   */
  readonly members?: readonly GroupMember[];
  /**
   * The cause whose ticket this cycle's ticket was linked to (symptoms: link), so that the link can be removed
   * when Zabbix ranks the event as a cause again. An optional field of the incident's JSON: no migration.
   */
  readonly linkedTo?: CauseRef;
}

/** A symptom's cause: its incident (fingerprint and ticket cycle) and event. */
export interface CauseRef {
  readonly fingerprint: string;
  readonly cycle: number;
  readonly eventId: string;
}

/** An incident's ticket cycle counted in a problem group (`problems.together`), with when it opened (ms). */
export interface GroupMember {
  readonly fingerprint: string;
  readonly cycle: number;
  readonly at: number;
}

/** What the bridge knows about one Zabbix problem event: the incident cycle it belongs to, and whether it is still open. */
export interface EventInfo {
  readonly fingerprint: string;
  readonly cycle: number;
  readonly open: boolean;
}

/** A change to the event index that comes with a decision. */
export interface EventChange {
  readonly eventId: string;
  readonly cycle: number;
  readonly open: boolean;
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
  /** Items the rules named instead of numbering: resolved against GLPI before the create (services/glpi-names.ts). */
  readonly names?: DraftNames;
  /** Ticket actors by id, per role (the rules' `users`; names are in `names.users`). */
  readonly users?: Readonly<Partial<Record<ActorRole, readonly number[]>>>;
  /** The Zabbix host, to find its asset in GLPI before the create (issue 14 item 2). */
  readonly host?: { readonly name: string; readonly visibleName?: string; readonly ip?: string };
  /** The GLPI asset linked to the ticket on create (set at dispatch, from `host`). */
  readonly asset?: { readonly itemtype: string; readonly id: number };
  /** The Zabbix item, for its last values in the body (zabbix.value_history: fetched at dispatch, services/value-history.ts). */
  readonly item?: { readonly id: string };
}

export type RecoveryMode = 'solve' | 'close' | 'followup';

/** GLPI work derived from an alert; run later, in order per fingerprint, by the dispatcher. */
export type JobSpec =
  | { readonly type: 'create_ticket'; readonly ticket: TicketDraft; readonly delayMs: number; readonly eventId?: string }
  | { readonly type: 'followup'; readonly lines: readonly string[]; readonly isPrivate: boolean }
  | { readonly type: 'update_ticket'; readonly urgency: number; readonly impact: number; readonly lines: readonly string[]; readonly isPrivate: boolean }
  | { readonly type: 'solve'; readonly mode: RecoveryMode; readonly lines: readonly string[] }
  | { readonly type: 'reopen'; readonly lines: readonly string[] }
  /**
   * The incident recurs (problems.after_cycles ticket cycles within problems.within): the fingerprint's open
   * GLPI Problem — found by its marker, created when none is open — gets these cycles' tickets linked, and a
   * follow-up naming the newest one. Runs in the incident's GLPI lane after the cycle's create, so the ticket exists.
   */
  | { readonly type: 'problem'; readonly marker: string; readonly problem: ProblemSpec; readonly cycles: readonly number[]; readonly lines: readonly string[] }
  /**
   * A symptom's ticket linked to its cause's ("linked to", Ticket_Ticket), after the symptom's create in its
   * lane; the cause's ticket is the one of `cause` (an incident by fingerprint, and its cycle).
   */
  | { readonly type: 'link_ticket'; readonly cause: CauseRef }
  /**
   * Zabbix ranked a symptom as a cause again ("ranked as cause"): the link its ticket got to its former cause's
   * ticket is removed (Ticket_Ticket), or, where the API cannot remove it, a follow-up says it no longer holds.
   */
  | { readonly type: 'unlink_ticket'; readonly cause: CauseRef }
  /**
   * `problems.together`: `fingerprints` incidents of one group opened their tickets within its window. The
   * group's open GLPI Problem — found by its marker, created when none is open — gets every member's ticket
   * linked and a follow-up naming the newest. Queued in the group's own GLPI lane (under the group's record,
   * see groupRecord), so that two members firing at once can never both create a Problem; it runs after the
   * members' hold-down (`delayMs`, counted from the alert's receipt), when their creates have run; it creates
   * no Problem while fewer than `required` incidents of the members have a ticket (a flap, a dead create).
   */
  | { readonly type: 'problem_group'; readonly marker: string; readonly problem: ProblemSpec; readonly members: readonly { readonly fingerprint: string; readonly cycle: number }[]; readonly required: number; readonly lines: readonly string[]; readonly delayMs: number }
  /** Write the ticket link back to the Zabbix event (queued by the dispatcher after a create). */
  | { readonly type: 'zabbix_ack'; readonly eventIds: readonly string[]; readonly message: string; readonly acknowledge: boolean; readonly close?: boolean };

export type JobType = JobSpec['type'];

/** What a GLPI Problem is created with (the fields it takes from the ticket that made it recur). */
export interface ProblemSpec {
  readonly name: string;
  readonly content: string;
  readonly urgency: number;
  readonly impact: number;
  readonly entities_id: number;
  readonly itilcategories_id: number;
  /** The ticket's entity and ITIL category when the rules named them: resolved before the create, as a ticket's (services/glpi-names.ts). */
  readonly names?: Pick<DraftNames, 'entities_id' | 'itilcategories_id'>;
}

/** Cycles an incident remembers for recurrence (far above any sensible after_cycles). */
export const RECENT_KEEP = 50;

/**
 * The marker of a fingerprint's GLPI Problems: an HMAC of the fingerprint alone, so every recurrence finds the
 * one still open (a problem a human solved or closed no longer collects: the next recurrence opens another with
 * the same marker, and the search keeps the open one). `[zbx:` so Zabbix text carrying a look-alike is stripped
 * (fingerprint.ts stripMarkers) and can never make the bridge adopt or name another incident's problem.
 */
export function problemMarker(digests: Digests, key: string, fp: string): string {
  return `[zbx:p${digests.hmacSha256Hex(key, `problem\n${fp}`).slice(0, 20)}]`;
}

/**
 * The marker of a problem group's GLPI Problems (`problems.together`): an HMAC of the group's key, like a
 * fingerprint's problem marker (`g` instead of `p`, so a group and a fingerprint never share one).
 */
export function groupProblemMarker(digests: Digests, key: string, group: string): string {
  return `[zbx:g${digests.hmacSha256Hex(key, `group\n${group}`).slice(0, 20)}]`;
}

/**
 * The group an alert's incident counts in for `problems.together` (undefined: its category has no such rule):
 * one host's incidents of the category (by: host), or the category's across hosts (by: category). The key
 * starts with `group:`, which no fingerprint does (fingerprint.ts: `field=value|…`), so the group's record
 * never meets an incident's.
 */
export function problemGroup(rules: Rules, alert: Alert, category: string): string | undefined {
  const rule = problemRule(rules, category)?.together;
  if (!rule) return undefined;
  return rule.by === 'host' ? `group:by=host|host=${alert.host}|category=${category}` : `group:by=category|category=${category}`;
}

/** A window as the rules write it: "7d", "36h", "90m", "45s". */
export function formatWindow(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

/**
 * Whether a Zabbix update ranks its event as a cause (event.acknowledge action 0x80, ZBX_PROBLEM_UPDATE_RANK_TO_CAUSE;
 * 0x100 ranks it as a symptom). Every acknowledge operation gets a server-side acknowledge task "regardless of its
 * action", so a rank change runs the action's update operations: the webhook arrives with {EVENT.UPDATE.ACTION}
 * "ranked as cause" (the server's problem-update action text) and {EVENT.CAUSE.ID} empty
 * (zabbix/zabbix ui/include/classes/api/services/CEvent.php acknowledge() @ 5417729eabc3f1d141fe3a79e9140f30caa7189a).
 */
export function rankedAsCause(alert: Alert): boolean {
  return alert.kind === 'update' && alert.update !== undefined && /\branked as cause\b/i.test(alert.update.action);
}

/** What the category does with a symptom's ticket (rules.ts `symptoms`; default link). */
export function symptomMode(rules: Rules, category: string): SymptomMode {
  return (rules.categories.find((r) => r.name === category) ?? rules.fallback).symptoms ?? 'link';
}

/** The job linking this alert's ticket to its cause's, when it is a symptom of another incident's event the bridge took in and the rules link symptoms. */
function causeLink(input: DecideInput): { job: JobSpec; why: string } | undefined {
  const { alert, cause, fingerprint, rules, classification } = input;
  if (alert.causeEventId === undefined || cause === undefined || cause.fingerprint === fingerprint) return undefined;
  if (symptomMode(rules, classification.category) !== 'link') return undefined;
  return {
    job: { type: 'link_ticket', cause: { fingerprint: cause.fingerprint, cycle: cause.cycle, eventId: alert.causeEventId } },
    why: `; symptom of event ${alert.causeEventId}: ticket linked to its cause's (ticket cycle ${cause.cycle} of ${cause.fingerprint})`,
  };
}

/** The category's recurrence rule (rules.ts `problems`), if any. */
export function problemRule(rules: Rules, category: string): ProblemRule | undefined {
  return (rules.categories.find((r) => r.name === category) ?? rules.fallback).problems;
}

/** Cycles still within the window at `now`, this one added. */
function recentCycles(incident: Incident | undefined, withinMs: number, cycle: number, now: number): { cycle: number; at: number }[] {
  return [...(incident?.recent ?? []), { cycle, at: now }].filter((c) => now - c.at <= withinMs).slice(-RECENT_KEEP);
}

/**
 * A problem group's memory, kept as a record of its own in the incidents' table (no schema change): filed
 * under the group's key (problemGroup), status `solved` and no events, so nothing that lists or checks open
 * incidents (the status page, the poller, `/metrics`) ever sees it, and it is forgotten like an ended incident
 * once quiet (Processor.prune: not while a job of its lane is left). It is read and written by the decisions
 * themselves, in the processor's commit: the cross-fingerprint view a group needs comes from the same state, in
 * the same order, as every decision — a decision taken again after a crash finds the record as committed.
 */
function groupRecord(group: string, previous: Incident | undefined, members: readonly GroupMember[], marker: string, c: Classification, now: number): Incident {
  return {
    fingerprint: group,
    cycle: 0,
    status: 'solved',
    marker,
    category: c.category,
    severity: c.severity,
    urgency: c.glpi.urgency,
    impact: c.glpi.impact,
    openCount: 0,
    occurrences: (previous?.occurrences ?? 0) + 1,
    openedAt: previous?.openedAt ?? now,
    solvedAt: now,
    members,
  };
}

/**
 * `problems.together` (issue 14 item 1): this new ticket cycle joins its group's members within the window; when
 * they span `fingerprints` different incidents, the group's Problem job is queued (in the group's lane) naming
 * every member to link — again for each later member while the burst lasts (the runner adds only the missing
 * links). Returns the group's new record, and the job when the group is large enough. Pure.
 */
function groupProblem(input: DecideInput, rule: TogetherRule, cycle: number, ticket: TicketDraft): { group: NonNullable<Decision['group']>; why: string } | undefined {
  const { alert, classification: c, fingerprint: fp, now, policy, rules } = input;
  const key = problemGroup(rules, alert, c.category);
  if (key === undefined) return undefined;
  const previous = input.group;
  const members = [...(previous?.members ?? []).filter((m) => now - m.at <= rule.withinMs && !(m.fingerprint === fp && m.cycle === cycle)), { fingerprint: fp, cycle, at: now }].slice(-RECENT_KEEP);
  const distinct = new Set(members.map((m) => m.fingerprint)).size;
  const marker = groupProblemMarker(policy.digests, policy.markerKey, key);
  const record = groupRecord(key, previous, members, marker, c, now);
  if (distinct < rule.fingerprints) return { group: { fingerprint: key, incident: record, jobs: [] }, why: '' };
  const within = formatWindow(rule.withinMs);
  const where = rule.by === 'host' ? `on ${alert.host}` : `across hosts`;
  const title = `${distinct} ${c.category} incidents together ${where}`;
  const ruleText = `rule: problems.together { fingerprints: ${rule.fingerprints}, within: ${within}, by: ${rule.by} }`;
  const job: JobSpec = {
    type: 'problem_group',
    marker,
    problem: {
      name: `${marker} ${title}`,
      content: htmlText([
        `${distinct} incidents of category ${c.category} ${rule.by === 'host' ? `on host ${alert.host}` : 'across hosts'} opened their tickets within ${within} of each other (${ruleText}); their tickets are linked to this problem.`,
        `Latest: ${alert.eventName} (host ${alert.host}, event ${alert.eventId}).`,
        'Opened by the Zabbix bridge, which never solves or closes it: the root cause is for people to find. Once it is solved or closed, the next time the group fires together opens a new problem.',
      ]),
      urgency: c.glpi.urgency,
      impact: c.glpi.impact,
      entities_id: ticket.entities_id,
      itilcategories_id: ticket.itilcategories_id,
      ...problemNames(ticket),
    },
    members: members.map((m) => ({ fingerprint: m.fingerprint, cycle: m.cycle })),
    required: rule.fingerprints,
    lines: [`Fired together: ${alert.eventName} (host ${alert.host}, event ${alert.eventId}); ${distinct} incidents of the group within ${within}.`],
    delayMs: policy.holdDownMs,
  };
  return {
    group: { fingerprint: key, incident: record, jobs: [job] },
    why: `; fired together (${distinct} incidents of ${key.slice('group:'.length)} within ${within}): GLPI problem, ${members.length} ticket(s) linked`,
  };
}

/** A flap suppressed within the hold-down is no member of its problem group either (as it is no recurrence). */
function withoutGroupMember(input: DecideInput, incident: Incident): Pick<Decision, 'group'> {
  const g = input.group;
  if (!g?.members?.some((m) => m.fingerprint === incident.fingerprint && m.cycle === incident.cycle)) return {};
  const members = g.members.filter((m) => !(m.fingerprint === incident.fingerprint && m.cycle === incident.cycle));
  return { group: { fingerprint: g.fingerprint, incident: { ...g, members }, jobs: [] } };
}

/** The names a Problem takes from its ticket's draft (entity and ITIL category), to resolve before its create. */
function problemNames(ticket: TicketDraft): { names?: NonNullable<ProblemSpec['names']> } {
  const n = ticket.names;
  if (!n) return {};
  const names = { ...(n.entities_id !== undefined ? { entities_id: n.entities_id } : {}), ...(n.itilcategories_id !== undefined ? { itilcategories_id: n.itilcategories_id } : {}) };
  return Object.keys(names).length > 0 ? { names } : {};
}

export type ActionName = 'open' | 'follow_up' | 'update_severity' | 'reopen' | 'solve' | 'suppress' | 'ignore';

export interface Decision {
  readonly action: ActionName;
  readonly reason: string;
  /** The incident after this alert; undefined when it does not change. */
  readonly incident?: Incident;
  readonly jobs: readonly JobSpec[];
  /** Events whose membership or state changes. */
  readonly events?: readonly EventChange[];
  /** Cancel every pending job of the incident's cycle (hold-down hit: the create and what was queued behind it). */
  readonly cancelCycle?: boolean;
  /** A new cycle took over the open events of this one (the old ticket was closed in GLPI). */
  readonly moveOpenEventsFrom?: number;
  /** The jobs act on the ticket of this (earlier) cycle, not the incident's current one. */
  readonly jobCycle?: number;
  /**
   * `problems.together`: the problem group's record after this decision (written with it), and the jobs queued in
   * the group's own lane (under `fingerprint`, the group's key).
   */
  readonly group?: { readonly fingerprint: string; readonly incident: Incident; readonly jobs: readonly JobSpec[] };
}

export interface Policy {
  readonly holdDownMs: number;
  readonly reopenWindowMs: number;
  readonly recovery: RecoveryMode;
  readonly followupPrivate: boolean;
  /** Messages starting with this are the bridge's own write-back to Zabbix. */
  readonly writeBackPrefix: string;
  /** The install's secret for ticket markers (data_dir/marker-key). */
  readonly markerKey: string;
  /** The hashes markers are made of (adapters/digests.ts). */
  readonly digests: Digests;
  /** The fingerprint fields in force, recorded on new incidents. */
  readonly fingerprintFields?: readonly string[];
  /** Zabbix's frontend base URL, for the links in ticket bodies (none without it). */
  readonly zabbixFrontendUrl?: string | undefined;
}

export interface DecideInput {
  readonly alert: Alert;
  readonly classification: Classification;
  readonly fingerprint: string;
  readonly incident: Incident | undefined;
  /** The event index's entry for the alert's event (undefined: the bridge never took this problem in). */
  readonly event?: EventInfo | undefined;
  /** A symptom's cause event as the event index knows it (undefined: not a symptom, or a cause the bridge never took in). */
  readonly cause?: EventInfo | undefined;
  /** A recovery of this event was received before this delivery (its problem arrives late). */
  readonly recoveredEarlier?: boolean;
  /**
   * An update ranking as cause an event the bridge holds no ticket for: the event's problem as delivered (a
   * symptom skipped by `symptoms: skip` then gets its ticket). Undefined otherwise.
   */
  readonly skippedSymptom?: Alert | undefined;
  /** The record of the alert's problem group (problemGroup; `problems.together`), undefined when none yet. */
  readonly group?: Incident | undefined;
  /** When the alert was received: windows (hold-down, reopen) are judged on it, not on when it is decided. */
  readonly now: number;
  readonly policy: Policy;
  readonly rules: Rules;
  /** Classifies the same alert at another severity (for severity changes). */
  readonly reclassify: (severity: Severity) => Classification;
}

function ignore(reason: string): Decision {
  return { action: 'ignore', reason, jobs: [] };
}

function valueLine(alert: Alert): string[] {
  return alert.itemValue !== undefined ? [`Value: ${alert.itemValue}`] : [];
}

/** An ISO time from the alert as ms, or undefined. */
function msOf(iso: string | undefined): number | undefined {
  if (iso === undefined) return undefined;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? undefined : ms;
}

function occurrencesText(n: number): string {
  return n === 1 ? 'once' : `${n} times`;
}

/**
 * How long the incident lasted and how often it occurred, for the recovery's
 * follow-up or solution. Both ends on Zabbix's clock when Zabbix gave both
 * (the first problem's start, this recovery's time); otherwise both on the
 * bridge's (the first problem received, this recovery received), never one of each.
 */
function durationLine(incident: Incident, alert: Alert, now: number): string {
  const recovered = msOf(alert.recoveredAt);
  const [from, to] = incident.startedAt !== undefined && recovered !== undefined ? [incident.startedAt, recovered] : [incident.openedAt, now];
  return `Incident lasted ${formatDuration(to - from)} (${formatTime(from)} to ${formatTime(to)}) and occurred ${occurrencesText(incident.occurrences)}.`;
}

/** "after 5m 3s" for one event, when Zabbix gave its start and its recovery. */
function eventDuration(alert: Alert): string {
  const from = msOf(alert.occurredAt);
  const to = msOf(alert.recoveredAt);
  return from !== undefined && to !== undefined ? ` after ${formatDuration(to - from)}` : '';
}

function severityLine(from: Severity, to: Severity): string {
  return `Severity: ${severityLabel(from)} → ${severityLabel(to)}.`;
}

/** The ticket a problem opens, rendered from the rules; the marker identifies its cycle. `ctx` gives the links into Zabbix. */
export function ticketDraft(alert: Alert, c: Classification, rules: Rules, marker: string, ctx: RenderContext = {}): TicketDraft {
  const vars = variablesOf(alert, c, ctx);
  return {
    name: renderTitle(rules.templates.title, vars, marker),
    content: renderBody(rules.templates.body, vars),
    marker,
    urgency: c.glpi.urgency,
    impact: c.glpi.impact,
    type: c.glpi.type,
    ...draftFields(c.glpi),
    host: { name: alert.host, ...(alert.hostName !== alert.host ? { visibleName: alert.hostName } : {}), ...(alert.hostIp ? { ip: alert.hostIp } : {}) },
    ...(alert.itemId ? { item: { id: alert.itemId } } : {}),
  };
}

/** A new ticket cycle for this fingerprint; `carried` keeps the open events of a cycle whose ticket was closed in GLPI. */
function openNew(input: DecideInput, why: string, carried?: Incident): Decision {
  const { alert, classification: c, fingerprint: fp, incident, now, policy, rules } = input;
  const cycle = (incident?.cycle ?? 0) + 1;
  const marker = ticketMarker(policy.digests, policy.markerKey, fp, cycle, alert.eventId);
  const ticket = ticketDraft(alert, c, rules, marker, { zabbixFrontendUrl: policy.zabbixFrontendUrl });
  // The problem started when its first event did: a cycle carried over keeps its start.
  const startedAt = carried ? carried.startedAt : msOf(alert.occurredAt);
  // A cycle carried over from a closed ticket is not held back: the problem is long confirmed.
  const held = policy.holdDownMs > 0 && carried === undefined;
  const fields = carried?.fields ?? incident?.fields ?? policy.fingerprintFields;
  // A cycle carried over from a closed ticket is the same outbreak, not a recurrence.
  const rule = carried === undefined ? problemRule(rules, c.category) : undefined;
  const recurrence = rule?.afterCycles !== undefined && rule.withinMs !== undefined ? { afterCycles: rule.afterCycles, withinMs: rule.withinMs } : undefined;
  const recent = recurrence ? recentCycles(incident, recurrence.withinMs, cycle, now) : carried?.recent;
  const jobs: JobSpec[] = [{ type: 'create_ticket', ticket, delayMs: held ? policy.holdDownMs : 0, eventId: alert.eventId }];
  let recurs = '';
  if (recurrence && recent && recent.length >= recurrence.afterCycles) {
    const rule = recurrence;
    const within = formatWindow(rule.withinMs);
    const title = ticket.name.startsWith(marker) ? ticket.name.slice(marker.length + 1) : ticket.name;
    const pm = problemMarker(policy.digests, policy.markerKey, fp);
    jobs.push({
      type: 'problem',
      marker: pm,
      problem: {
        name: `${pm} Recurring: ${title}`,
        content: htmlText([
          `Recurring incident: ${title} (host ${alert.host}, category ${c.category}).`,
          `${recent.length} ticket cycles within ${within} (rule: problems.after_cycles ${rule.afterCycles}, within ${within}); their tickets are linked to this problem.`,
          'Opened by the Zabbix bridge, which never solves or closes it: the root cause is for people to find. Once it is solved or closed, the next recurrence opens a new problem.',
        ]),
        urgency: c.glpi.urgency,
        impact: c.glpi.impact,
        entities_id: ticket.entities_id,
        itilcategories_id: ticket.itilcategories_id,
        ...problemNames(ticket),
      },
      cycles: recent.map((r) => r.cycle),
      lines: [`Occurred again: ${alert.eventName} (event ${alert.eventId}, ticket cycle ${cycle}; ${recent.length} cycles within ${within}).`],
    });
    recurs = `; recurring (${recent.length} ticket cycles within ${within}): GLPI problem, cycles ${recent.map((r) => r.cycle).join(', ')} linked`;
  }
  // A new ticket cycle (not one carried over from a closed ticket: the same outbreak) counts in its problem group.
  const together = carried === undefined && rule?.together ? groupProblem(input, rule.together, cycle, ticket) : undefined;
  if (together) recurs += together.why;
  const link = carried === undefined ? causeLink(input) : undefined;
  if (link) {
    jobs.push(link.job);
    recurs += link.why;
  }
  return {
    action: 'open',
    reason: (held ? `${why}; ticket held back ${policy.holdDownMs} ms (hold-down)` : why) + recurs,
    incident: {
      fingerprint: fp,
      cycle,
      status: 'open',
      marker,
      category: c.category,
      severity: c.severity,
      urgency: c.glpi.urgency,
      impact: c.glpi.impact,
      openCount: carried?.openCount ?? 1,
      occurrences: (carried?.occurrences ?? 0) + 1,
      openedAt: now,
      ...(startedAt !== undefined ? { startedAt } : {}),
      ...(held ? { holdUntil: now + policy.holdDownMs } : {}),
      ...(fields ? { fields } : {}),
      ...(recent ? { recent } : {}),
      ...(link?.job.type === 'link_ticket' ? { linkedTo: link.job.cause } : {}),
    },
    jobs,
    ...(carried ? { moveOpenEventsFrom: carried.cycle } : { events: [{ eventId: alert.eventId, cycle, open: true }] }),
    ...(together ? { group: together.group } : {}),
  };
}

function onProblem(input: DecideInput): Decision {
  const { alert, classification: c, incident, event, now, policy } = input;
  if (event) return ignore(`event ${alert.eventId} already taken in (ticket cycle ${event.cycle}, ${event.open ? 'open' : 'recovered'})`);
  if (input.recoveredEarlier) return ignore(`the recovery of event ${alert.eventId} was received before its problem (Zabbix retried the problem late); nothing to open`);
  if (incident?.status === 'open') {
    const occurrences = incident.occurrences + 1;
    const escalate = severityRank(c.severity) > severityRank(incident.severity);
    const lines = [
      `Problem occurred again: ${alert.eventName} (event ${alert.eventId}, occurrence ${occurrences}).`,
      ...valueLine(alert),
    ];
    // Deliveries can come out of order: the incident started with its earliest problem (both on Zabbix's clock only).
    const started = msOf(alert.occurredAt);
    const next: Incident = {
      ...incident,
      openCount: incident.openCount + 1,
      occurrences,
      ...(incident.startedAt !== undefined && started !== undefined && started < incident.startedAt ? { startedAt: started } : {}),
      ...(escalate ? { severity: c.severity, urgency: c.glpi.urgency, impact: c.glpi.impact } : {}),
    };
    const events = [{ eventId: alert.eventId, cycle: incident.cycle, open: true }];
    if (escalate) {
      lines.push(severityLine(incident.severity, c.severity));
      return {
        action: 'update_severity',
        reason: `fingerprint has an open ticket; severity raised ${incident.severity} → ${c.severity}`,
        incident: next,
        events,
        jobs: [{ type: 'update_ticket', urgency: c.glpi.urgency, impact: c.glpi.impact, lines, isPrivate: policy.followupPrivate }],
      };
    }
    return {
      action: 'follow_up',
      reason: `fingerprint has an open ticket (occurrence ${occurrences})`,
      incident: next,
      events,
      jobs: [{ type: 'followup', lines, isPrivate: policy.followupPrivate }],
    };
  }
  if (!c.glpi.ticket) return ignore(`no ticket for severity ${c.severity} in category ${c.category} (rules)`);
  if (alert.causeEventId !== undefined && input.cause !== undefined && input.cause.fingerprint !== input.fingerprint && symptomMode(input.rules, c.category) === 'skip') {
    return ignore(`symptom of event ${alert.causeEventId} (ticket cycle ${input.cause.cycle} of ${input.cause.fingerprint}); no ticket (category ${c.category}: symptoms: skip)`);
  }
  if (incident?.status === 'solved' && incident.solvedAt !== undefined && now - incident.solvedAt <= policy.reopenWindowMs) {
    const lines = [
      `Problem occurred again after being solved: ${alert.eventName} (event ${alert.eventId}).`,
      ...valueLine(alert),
    ];
    const { solvedAt: _solved, ...rest } = incident;
    return {
      action: 'reopen',
      reason: `ticket cycle ended ${Math.round((now - incident.solvedAt) / 1000)} s ago, within the reopen window`,
      incident: { ...rest, status: 'open', openCount: 1, occurrences: incident.occurrences + 1 },
      events: [{ eventId: alert.eventId, cycle: incident.cycle, open: true }],
      jobs: [{ type: 'reopen', lines }],
    };
  }
  const why = incident === undefined ? 'new fingerprint' : incident.status === 'suppressed' ? 'new problem after a suppressed flap' : 'previous ticket cycle ended outside the reopen window';
  return openNew(input, why);
}

/** A cycle suppressed within the hold-down never had a ticket: it does not count as a recurrence. */
function withoutCycle(incident: Incident): Incident {
  if (incident.recent === undefined) return incident;
  return { ...incident, recent: incident.recent.filter((r) => r.cycle !== incident.cycle) };
}

function onRecovery(input: DecideInput): Decision {
  const { alert, incident, event, now, policy } = input;
  if (!event) return ignore('recovery of a problem the bridge never took in (remembered: a late problem will open nothing)');
  if (!event.open) return ignore(`event ${alert.eventId} already recovered`);
  const closed = [{ eventId: alert.eventId, cycle: event.cycle, open: false }];
  if (incident === undefined || incident.cycle !== event.cycle || incident.status !== 'open') {
    return { action: 'ignore', reason: `event ${alert.eventId} of an ended ticket cycle recovered`, events: closed, jobs: [] };
  }
  const openCount = Math.max(0, incident.openCount - 1);
  if (openCount > 0) {
    return {
      action: 'follow_up',
      reason: `event recovered, ${openCount} other problem(s) of this incident still open`,
      incident: { ...incident, openCount },
      events: closed,
      jobs: [{ type: 'followup', lines: [`Event ${alert.eventId} recovered${eventDuration(alert)}; ${openCount} problem(s) still open.`], isPrivate: policy.followupPrivate }],
    };
  }
  if (incident.ticketId === undefined && incident.holdUntil !== undefined && now < incident.holdUntil) {
    return {
      action: 'suppress',
      reason: `recovered within the hold-down (${Math.round((now - incident.openedAt) / 1000)} s after the problem was received); no ticket`,
      incident: { ...withoutCycle(incident), status: 'suppressed', openCount: 0 },
      events: closed,
      jobs: [],
      cancelCycle: true,
      ...withoutGroupMember(input, incident),
    };
  }
  const lines = [
    `Problem resolved in Zabbix: ${alert.eventName} (event ${alert.eventId}${alert.recoveryEventId ? `, recovery event ${alert.recoveryEventId}` : ''}).`,
    durationLine(incident, alert, now),
    ...valueLine(alert),
  ];
  // With recovery: followup the ticket stays as it is in GLPI, but the cycle ends all the same: the next problem reopens (within the window) or opens anew.
  const next: Incident = { ...incident, openCount: 0, status: 'solved', solvedAt: now };
  return { action: 'solve', reason: `last open problem recovered (recovery: ${policy.recovery})`, incident: next, events: closed, jobs: [{ type: 'solve', mode: policy.recovery, lines }] };
}

function onUpdate(input: DecideInput): Decision {
  const { alert, incident, event, policy } = input;
  const u = alert.update;
  if (!u) return ignore('update without update details');
  if (u.message !== undefined && u.message.startsWith(policy.writeBackPrefix)) return ignore('our own write-back message');
  if (!event || incident === undefined) return ignore('update for an event without a ticket');
  const who = u.user ?? 'someone';
  const lines = [`Zabbix: ${u.action || 'updated'} by ${who}.`];
  if (u.message !== undefined) lines.push(`Message: ${u.message}`);
  if (incident.cycle !== event.cycle) {
    // An event of an earlier cycle (a new problem since opened a new ticket): the word goes to that cycle's ticket.
    // The earlier severity of that cycle's event is not known here (the incident is the later cycle's).
    if (u.severityChanged) lines.push(`Severity changed to ${severityLabel(alert.severity)}.`);
    return {
      action: 'follow_up',
      reason: `update in Zabbix (${u.action || 'message'}) for event ${alert.eventId} of the earlier ticket cycle ${event.cycle}`,
      jobs: [{ type: 'followup', lines, isPrivate: policy.followupPrivate }],
      jobCycle: event.cycle,
    };
  }
  if (incident.status === 'suppressed') return ignore('update for an event without a ticket (recovered within the hold-down)');
  if (u.severityChanged && alert.severity !== incident.severity) {
    const c = input.reclassify(alert.severity);
    lines.push(severityLine(incident.severity, alert.severity));
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

/** How many announced notes an incident remembers (the oldest are forgotten first; a cycle rarely has more than a few). */
export const ANNOUNCED_KEEP = 64;

/**
 * A note from the poller (a maintenance entered or left, a trigger, host or
 * item disabled) on an open problem: one follow-up on the ticket of the
 * event's cycle, or (note.solve, from zabbix.poll.on_maintenance /
 * on_disabled) the ticket solved with that reason, which ends the cycle as a
 * recovery does. Announced once per event and change: the incident remembers it.
 */
function onNote(input: DecideInput): Decision {
  const { alert, incident, event, now, policy } = input;
  const n = alert.note;
  if (!n) return ignore('note without its details');
  if (!event || incident === undefined) return ignore(`note (${n.reason}) for an event without a ticket`);
  if (!event.open) return ignore(`note (${n.reason}) for event ${alert.eventId}, already recovered`);
  if (incident.cycle !== event.cycle || incident.status !== 'open') return ignore(`note (${n.reason}) for event ${alert.eventId} of an ended ticket cycle`);
  const id = `${alert.eventId}:${n.key}`;
  const announced = incident.announced ?? [];
  if (announced.includes(id)) return ignore(`already announced on the ticket (${n.key})`);
  if (n.after !== undefined && !announced.includes(`${alert.eventId}:${n.after}`)) return ignore(`note (${n.reason}) after ${n.after}, which was never announced`);
  const remembered = [...announced, id].slice(-ANNOUNCED_KEEP);
  const setting = n.reason === 'disabled' ? 'on_disabled' : 'on_maintenance';
  if (!n.solve || n.reason === 'maintenance_end') {
    return {
      action: 'follow_up',
      reason: `poller: ${n.reason.replace('_', ' ')} (${n.key}) noted on the ticket`,
      incident: { ...incident, announced: remembered },
      jobs: [{ type: 'followup', lines: [n.text], isPrivate: policy.followupPrivate }],
    };
  }
  // A ticket held back (hold-down) and not created yet: nothing to solve, and nothing worth a ticket while it is in maintenance or disabled.
  if (incident.ticketId === undefined && incident.holdUntil !== undefined && now < incident.holdUntil) {
    return {
      action: 'suppress',
      reason: `${n.reason} (${n.key}) within the hold-down; no ticket (zabbix.poll.${setting}: solve)`,
      incident: { ...withoutCycle(incident), status: 'suppressed', openCount: 0, announced: remembered },
      events: [{ eventId: alert.eventId, cycle: event.cycle, open: false }],
      jobs: [],
      cancelCycle: true,
      ...withoutGroupMember(input, incident),
    };
  }
  const lines = [n.text, `Ticket solved by the bridge: zabbix.poll.${setting} is solve.`, durationLine(incident, { ...alert, recoveredAt: undefined }, now)];
  return {
    action: 'solve',
    reason: `poller: ${n.reason} (${n.key}); ticket solved (zabbix.poll.${setting}: solve)`,
    incident: { ...incident, openCount: 0, status: 'solved', solvedAt: now, announced: remembered },
    events: [{ eventId: alert.eventId, cycle: event.cycle, open: false }],
    jobs: [{ type: 'solve', mode: policy.recovery === 'close' ? 'close' : 'solve', lines }],
  };
}

/** Alert + incident state + now + policy → the action to take, with its reason. Pure. */
export function decide(input: DecideInput): Decision {
  switch (input.alert.kind) {
    case 'problem':
      return onProblem(input);
    case 'recovery':
      return onRecovery(input);
    case 'update': {
      const skipped = input.skippedSymptom;
      if (!input.event && skipped?.causeEventId !== undefined && rankedAsCause(input.alert) && symptomMode(input.rules, input.classification.category) === 'skip') {
        // A symptom skipped (symptoms: skip) that Zabbix now ranks as a cause: it gets its ticket now, from its problem as delivered.
        const { causeEventId: _former, ...problem } = skipped;
        const d = onProblem({ ...input, alert: problem, cause: undefined });
        return { ...d, reason: `ranked as cause in Zabbix (was a symptom of event ${_former}, skipped): ${d.reason}` };
      }
      // Zabbix 6.4+ ranks events by hand (event.acknowledge action 256, "ranked as symptom" in {EVENT.UPDATE.ACTION}):
      // the update carries the new cause; the ticket of the event's current cycle is linked to the cause's.
      // Action 128, "ranked as cause": {EVENT.CAUSE.ID} is then empty, and the link the ticket got is removed.
      const d = onUpdate(input);
      const current = d.action !== 'ignore' && d.jobCycle === undefined && input.incident?.status === 'open' && input.event?.cycle === input.incident.cycle ? input.incident : undefined;
      if (!current) return d;
      const link = causeLink(input);
      const former = current.linkedTo;
      const base = d.incident ?? current;
      if (link?.job.type === 'link_ticket') {
        const unlink: JobSpec[] = former && former.eventId !== link.job.cause.eventId ? [{ type: 'unlink_ticket', cause: former }] : [];
        return { ...d, reason: d.reason + link.why, incident: { ...base, linkedTo: link.job.cause }, jobs: [...d.jobs, ...unlink, link.job] };
      }
      // The poller sees a rank change too (problem.get): after the webhook's, or a second time, nothing is left to undo.
      if (!former && rankedAsCause(input.alert) && input.alert.source === 'poller') return ignore('ranked as cause (seen by the poller): no link of this ticket left to undo');
      if (former && rankedAsCause(input.alert)) {
        const { linkedTo: _gone, ...unlinked } = base;
        return {
          ...d,
          reason: `${d.reason}; ranked as cause: no longer a symptom of event ${former.eventId}, its ticket unlinked from that event's (ticket cycle ${former.cycle} of ${former.fingerprint})`,
          incident: unlinked,
          jobs: [...d.jobs, { type: 'unlink_ticket', cause: former }],
        };
      }
      return d;
    }
    case 'note':
      return onNote(input);
  }
}

/**
 * A technician solved (5) or closed (6) the ticket of the incident's open cycle in GLPI while its problems are
 * still open in Zabbix (issue 14 item 5): one message on those events (and, with zabbix.write_back.close_problem,
 * their close, where the trigger allows it), said once per ticket and status (the incident remembers it). The
 * message starts with the write-back prefix, so the update webhook it causes is ignored (onUpdate): no loop.
 * Undefined when there is nothing to say. Pure.
 */
export function decideTicketResolvedInGlpi(
  incident: Incident | undefined,
  cycle: number,
  ticketId: number,
  status: number,
  openEvents: readonly string[],
  policy: Pick<Policy, 'writeBackPrefix'>,
  close: boolean,
): { incident: Incident; job: JobSpec } | undefined {
  if (status !== 5 && status !== 6) return undefined;
  if (incident?.status !== 'open' || incident.cycle !== cycle || openEvents.length === 0) return undefined;
  const word = status === 5 ? 'solved' : 'closed';
  const key = `glpi:${word}:${ticketId}`;
  const announced = incident.announced ?? [];
  if (announced.includes(key)) return undefined;
  return {
    incident: { ...incident, announced: [...announced, key].slice(-ANNOUNCED_KEEP) },
    job: {
      type: 'zabbix_ack',
      eventIds: [...openEvents],
      message: `${policy.writeBackPrefix} GLPI ticket #${ticketId} was ${word} in GLPI while the problem is still open in Zabbix.${close ? ' Closing the problem.' : ''}`,
      acknowledge: false,
      ...(close ? { close: true } : {}),
    },
  };
}

/** Longest follow-up text mirrored to Zabbix (Zabbix 6.0 keeps 2,048 characters of a message; the prefix and ticket number come first). */
export const MIRRORED_TEXT_MAX = 1500;

/**
 * Technicians' public follow-ups on the ticket of the incident's open cycle (issue 14 item 5,
 * zabbix.write_back.mirror_followups): each new one becomes a message on the open Zabbix events. The incident
 * remembers the highest follow-up id mirrored (one `glpi:fup:<ticket>:<id>` entry, replaced), so each is said
 * once. The bridge's own follow-ups never come here (the adapter leaves out its user's), and any text carrying
 * a job tag or the write-back prefix is skipped: no loop. `texts` are plain text. Pure.
 */
export function decideFollowupsMirrored(
  incident: Incident | undefined,
  cycle: number,
  ticketId: number,
  followups: readonly { readonly id: number; readonly text: string }[],
  openEvents: readonly string[],
  policy: Pick<Policy, 'writeBackPrefix'>,
): { incident: Incident; jobs: JobSpec[] } | undefined {
  if (incident?.status !== 'open' || incident.cycle !== cycle || openEvents.length === 0) return undefined;
  const prefix = `glpi:fup:${ticketId}:`;
  const announced = incident.announced ?? [];
  const seen = announced.filter((a) => a.startsWith(prefix)).map((a) => Number(a.slice(prefix.length))).reduce((m, n) => Math.max(m, n), 0);
  const fresh = followups.filter((f) => f.id > seen);
  if (fresh.length === 0) return undefined;
  const jobs: JobSpec[] = fresh
    .filter((f) => f.text.trim() !== '' && !f.text.includes('[zbx-job:') && !f.text.includes(policy.writeBackPrefix))
    .map((f) => {
      const text = f.text.trim().replace(/\s+/g, ' ');
      const clipped = text.length > MIRRORED_TEXT_MAX ? `${text.slice(0, MIRRORED_TEXT_MAX)}…` : text;
      return { type: 'zabbix_ack', eventIds: [...openEvents], message: `${policy.writeBackPrefix} GLPI ticket #${ticketId}, follow-up: ${clipped}`, acknowledge: false };
    });
  const max = Math.max(seen, ...fresh.map((f) => f.id));
  return { incident: { ...incident, announced: [...announced.filter((a) => !a.startsWith(prefix)), `${prefix}${max}`].slice(-ANNOUNCED_KEEP) }, jobs };
}

/**
 * The ticket of cycle `closedCycle` was closed in GLPI (by a human) while
 * problems of it are still open in Zabbix: GLPI refuses follow-ups on it, so
 * the open problems get a new ticket (a new cycle), rendered from the latest
 * open problem (`input.alert`). Pure.
 */
export function decideTicketClosed(input: DecideInput, closedCycle: number, ticketId: number): Decision {
  const { incident } = input;
  if (incident?.status !== 'open' || incident.cycle !== closedCycle) return ignore(`ticket #${ticketId} of an ended cycle was closed in GLPI`);
  return openNew(input, `ticket #${ticketId} was closed in GLPI while ${incident.openCount} problem(s) are still open in Zabbix; new ticket`, incident);
}
