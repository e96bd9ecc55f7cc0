import cron, { type ScheduledTask } from 'node-cron';
import { SEVERITIES, type Alert, type AlertNote, type Severity } from '../core/alert.js';
import { deliveryKey, problemDeliveryKey } from '../core/fingerprint.js';
import { boundAlert, truncate } from '../core/limits.js';
import { polledProblemAlert, rankedAsCauseOf, recoveryOf, vanished, type PolledProblem } from '../core/reconcile.js';
import { formatTime } from '../core/render.js';
import type { AlertIntake, BaselineMode, CursorState, Digests, EventRow, MaintenanceRow, PollerStore, PollMemory, ProblemRow, ProblemState, TriggerState, ZabbixReader } from '../core/ports.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

export interface PollScope {
  readonly hostGroups: readonly string[];
  readonly minSeverity: Severity;
  /** First sweep of this scope: record the problems already open as a baseline (skip, default) or ticket them (import). */
  readonly baseline?: BaselineMode;
  /** A host of an open problem entered a maintenance: a follow-up (note, default) or the ticket solved with that reason (solve). */
  readonly onMaintenance?: 'note' | 'solve';
  /** An open problem's trigger, host or item was disabled: a follow-up (note, default) or the ticket solved (solve). */
  readonly onDisabled?: 'note' | 'solve';
}

/** Longest note text put on a ticket (names come from Zabbix; the rest is ours). */
const NOTE_TEXT_MAX = 2000;

/** A note the poller found, before its delivery is looked up. */
interface FoundNote {
  readonly eventId: string;
  readonly note: AlertNote;
}

/** A host's maintenance as seen on one open problem. */
interface InMaintenance {
  readonly maintenanceid: string;
  /** Start of the host's maintenance (epoch s, "0" when only the problem's suppression says so). */
  readonly from: string;
  /** suppress_until of the problem's suppression (epoch s; "0" or absent: not given). */
  readonly until?: string;
  /** "0" with data collection, "1" without (the host's maintenance_type). */
  readonly type?: string;
}

export interface SweepResult {
  readonly problems: number;
  readonly newProblems: number;
  readonly recoveries: number;
  /** Problems recorded as the baseline by this sweep (the first of its scope). */
  readonly baselined: number;
  /** Notes (maintenance, disabled) this sweep handed to the intake for the first time. */
  readonly notes: number;
  /** Open events of the bridge that event.get did not return: left open. */
  readonly unknown: number;
}

/** Only an event returned with a recovery event id is resolved. */
function resolved(e: EventRow | undefined): e is EventRow & { r_eventid: string } {
  return e?.r_eventid !== undefined && e.r_eventid !== '' && e.r_eventid !== '0';
}

/**
 * Reconciliation with the Zabbix API on a node-cron schedule: problems the
 * webhook never delivered become problem alerts, open incidents whose problem
 * is gone and that event.get reports resolved become recoveries. An open
 * event event.get does not return is unknown, never a recovery. Everything
 * goes through the same intake, so a problem seen by both counts once.
 *
 * The first sweep of a scope (first start, or host groups / minimum severity
 * changed) records the problems already open that the bridge does not know
 * of as a baseline: they never become tickets (`zabbix.poll.baseline: skip`),
 * so starting the bridge does not ticket the whole Zabbix.
 */
export class Poller {
  #task: ScheduledTask | undefined;
  #running: Promise<SweepResult | undefined> | undefined;
  #lastError: string | undefined;
  #groupIds: string[] | undefined;
  readonly #skipped = new Set<string>();
  /** Open events already reported as unknown (logged and counted once each). */
  readonly #unknown = new Set<string>();
  /** Open events that arrived as causes: nothing to compare with problem.get's cause_eventid (their delivery is read once). */
  readonly #ranked = new Set<string>();
  /**
   * Open events whose host this process saw in a maintenance (the entry note's key), for the note when it ends.
   * What an earlier run saw is read from the incidents (the entry notes they announced: announcedMaintenance).
   * null: this process saw the maintenance end (the incident may not say so yet, its end note still undecided).
   */
  readonly #inMaintenance = new Map<string, { readonly key: string; readonly maintenanceid: string } | null>();
  /** Maintenance names, once asked (maintenance.get may be refused to a non-admin API user: then asked no more). */
  readonly #maintenanceNames = new Map<string, MaintenanceRow>();
  #maintenanceGetRefused = false;
  /** auditlog.get refused or failing (a non-Super-admin API user): disabled notes go without who. */
  #auditRefused = false;
  #notesError: string | undefined;
  readonly #cursor: PollMemory;
  #state: CursorState | undefined;
  #baseline: Set<string> | undefined;
  lastSuccessAt: number | undefined;

  constructor(
    private readonly api: ZabbixReader,
    private readonly store: PollerStore,
    cursor: PollMemory,
    private readonly intake: AlertIntake,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    private readonly scope: PollScope = { hostGroups: [], minSeverity: 'not_classified' },
    /** For the notes' delivery keys (looked up before accepting, so a note seen every sweep costs no inbox write). */
    private readonly digests?: Digests,
  ) {
    this.#cursor = cursor;
  }

  start(schedule: string): void {
    this.#task = cron.schedule(schedule, () => this.sweep(), { noOverlap: true, name: 'zabbix-poll' });
    void this.sweep();
  }

  async stop(): Promise<void> {
    await this.#task?.destroy();
    this.#task = undefined;
    await this.#running;
  }

  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** One reconciliation pass; concurrent calls share the pass in progress. */
  sweep(): Promise<SweepResult | undefined> {
    this.#running ??= this.#sweep().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #sweep(): Promise<SweepResult | undefined> {
    try {
      const result = await this.#reconcile();
      this.metrics.polls.inc({ result: 'success' });
      this.lastSuccessAt = Date.now();
      if (this.#lastError) this.logger.info('Zabbix API answering again');
      this.#lastError = undefined;
      if (result.newProblems > 0 || result.recoveries > 0 || result.notes > 0) this.logger.info(result, 'poll found alerts the webhook did not deliver');
      return result;
    } catch (e) {
      this.metrics.polls.inc({ result: 'failure' });
      const message = (e as Error).message;
      if (this.#lastError !== message) this.logger.warn({ err: message }, 'Zabbix poll failed; next sweep on schedule');
      this.#lastError = message;
      return undefined;
    }
  }

  /** What the cursor remembers of the scope: host group names (sorted) and minimum severity. */
  #scopeKey(): string {
    return JSON.stringify({ host_groups: [...this.scope.hostGroups].sort(), min_severity: this.scope.minSeverity });
  }

  /** First sweep of this scope: record it, and (skip) the open problems the bridge does not know of as the baseline. */
  async #recordBaseline(problems: readonly ProblemRow[], baseline: Set<string>): Promise<number> {
    const mode = this.scope.baseline ?? 'skip';
    const ids = mode === 'skip' ? problems.filter((p) => !baseline.has(p.eventid) && !this.store.hasDelivery(problemDeliveryKey(p.source, p.eventid))).map((p) => p.eventid) : [];
    const now = Date.now();
    const state: CursorState = { scope: this.#scopeKey(), baselineAt: now, baselineMode: mode, baselineCount: ids.length };
    await this.#cursor.record(state, ids, now);
    this.#state = state;
    for (const id of ids) baseline.add(id);
    this.logger.info(
      { baseline: mode, open_problems: problems.length, baselined: ids.length, host_groups: this.scope.hostGroups, min_severity: this.scope.minSeverity },
      mode === 'skip'
        ? 'first sweep of this poll scope: problems already open in Zabbix recorded as the baseline, never ticketed (zabbix.poll.baseline: skip)'
        : 'first sweep of this poll scope: problems already open in Zabbix are imported as alerts (zabbix.poll.baseline: import)',
    );
    return ids.length;
  }

  async #reconcile(): Promise<SweepResult> {
    if (this.scope.hostGroups.length > 0) this.#groupIds ??= await this.api.groupIds(this.scope.hostGroups);
    const min = SEVERITIES.indexOf(this.scope.minSeverity);
    const problems = await this.api.problems({
      ...(this.#groupIds ? { groupIds: this.#groupIds } : {}),
      ...(min > 0 ? { severities: SEVERITIES.map((_s, i) => i).filter((i) => i >= min) } : {}),
    });
    const baseline = (this.#baseline ??= this.#cursor.baseline());
    this.#state ??= this.#cursor.state();
    const baselined = this.#state?.scope === this.#scopeKey() ? 0 : await this.#recordBaseline(problems, baseline);
    const undelivered = problems.filter((p) => !baseline.has(p.eventid) && !this.store.hasDelivery(problemDeliveryKey(p.source, p.eventid)));
    const triggers = new Map((await this.api.triggers([...new Set(undelivered.map((p) => p.objectid))])).map((t) => [t.triggerid, t]));
    const alerts: Alert[] = [];
    for (const p of undelivered) {
      const t = triggers.get(p.objectid);
      const host = t?.hosts[0];
      const item = t?.items[0];
      const polled: PolledProblem = {
        eventId: p.eventid,
        triggerId: p.objectid,
        name: p.name,
        severity: p.severity,
        clock: p.clock,
        tags: p.tags,
        ...(p.opdata ? { opdata: p.opdata } : {}),
        ...(t
          ? {
              trigger: {
                description: t.description,
                ...(host ? { host: { host: host.host, ...(host.name ? { name: host.name } : {}) } } : {}),
                ...(item ? { item: { itemid: item.itemid, key: item.key_, ...(item.lastvalue !== undefined ? { lastvalue: item.lastvalue } : {}), ...(item.units ? { units: item.units } : {}) } } : {}),
              },
            }
          : {}),
      };
      const made = polledProblemAlert(polled);
      // Zabbix 6.4+ gives a symptom's cause (problem.get cause_eventid): linked like the webhook's {EVENT.CAUSE.ID} (issue 14 item 1).
      const alert = made && p.cause_eventid !== undefined && p.cause_eventid !== '0' && p.cause_eventid !== '' ? { ...made, causeEventId: p.cause_eventid } : made;
      if (alert) alerts.push(alert);
      else if (!this.#skipped.has(p.eventid)) {
        this.#skipped.add(p.eventid);
        this.logger.warn({ event_id: p.eventid, trigger_id: p.objectid }, 'polled problem skipped: its trigger or host is not visible to the API user (or was deleted)');
      }
    }
    const current = new Set(problems.map((p) => p.eventid));
    const openEvents = this.store.openIncidentEvents();
    // Zabbix 6.4+ "Rank as cause": a symptom with a ticket that problem.get now lists as a cause (issue 14 item 1).
    const ticketed = new Set(openEvents);
    for (const p of problems) {
      if (p.cause_eventid !== '0' || !ticketed.has(p.eventid) || this.#ranked.has(p.eventid)) continue;
      const problem = this.store.deliveryAlert(problemDeliveryKey(p.source, p.eventid));
      // One that arrived as a cause is read once; a re-ranked one is handed on at each sweep (the inbox keeps it once).
      if (problem?.causeEventId !== undefined) alerts.push(rankedAsCauseOf(problem));
      else this.#ranked.add(p.eventid);
    }
    const gone = vanished(openEvents, current);
    // Baseline events out of the list may be resolved (forget them) or only hidden (maintenance, permissions): ask.
    const goneBaseline = [...baseline].filter((id) => !current.has(id));
    let unknownNow = 0;
    if (gone.length > 0 || goneBaseline.length > 0) {
      const events = new Map((await this.api.eventStates([...new Set([...gone, ...goneBaseline])])).map((e) => [e.eventid, e]));
      const over = goneBaseline.filter((id) => resolved(events.get(id)));
      this.#cursor.forget(over);
      for (const id of over) baseline.delete(id);
      for (const id of gone) {
        const e = events.get(id);
        if (!e) {
          unknownNow++;
          this.#reportUnknown(id);
          continue;
        }
        // Returned with r_eventid 0: still a problem (out of scope now, in maintenance, or raced with the snapshot).
        if (!resolved(e)) continue;
        const problem = this.store.deliveryAlert(problemDeliveryKey('0', id));
        if (!problem) continue;
        alerts.push(recoveryOf(problem, e.r_eventid, undefined));
      }
    }
    // Remember unknown events only while their incident is open.
    const stillOpen = new Set(openEvents);
    for (const id of this.#unknown) if (!stillOpen.has(id)) this.#unknown.delete(id);
    for (const id of this.#ranked) if (!stillOpen.has(id)) this.#ranked.delete(id);
    for (const id of this.#inMaintenance.keys()) if (!stillOpen.has(id)) this.#inMaintenance.delete(id);
    // Recoveries go first: a problem that recovered needs no note.
    const recovered = new Set(alerts.filter((a) => a.kind === 'recovery').map((a) => a.eventId));
    alerts.push(...(await this.#notesOrNone(openEvents.filter((id) => !recovered.has(id)))));
    const bounded = this.#withinLimits(alerts);
    const accepted = await Promise.all(bounded.map((a) => this.intake.accept(a)));
    const result = { problems: problems.length, newProblems: 0, recoveries: 0, baselined, unknown: unknownNow, notes: 0 };
    accepted.forEach((r, i) => {
      if (r.duplicate) return;
      const a = bounded[i] as Alert;
      if (a.kind === 'problem') result.newProblems++;
      else if (a.kind === 'note') {
        result.notes++;
        this.metrics.pollNotes.inc({ reason: a.note?.reason ?? 'unknown' });
        this.logger.info({ event_id: a.eventId, reason: a.note?.reason, note: a.note?.key, solve: a.note?.solve }, 'open problem changed in Zabbix: noted for its ticket');
        return;
      } else if (a.kind === 'recovery') result.recoveries++;
      this.metrics.polledAlerts.inc({ kind: a.kind });
      this.logger.info({ event_id: a.eventId, kind: a.kind }, 'alert caught up by the poller');
    });
    return result;
  }

  /**
   * What changed in Zabbix for the bridge's open problems that Zabbix itself
   * sends nothing about: the host entered (or left) a maintenance, the
   * trigger, host or item was disabled. Zabbix keeps such a problem open
   * (a disabled trigger's or host's problem is not resolved, only hidden in
   * the frontend: ZBX-19143, ZBXNEXT-5186, and seen on the real 6.0.14 and
   * 7.0.22, test/fixtures/zabbix/api; a maintenance suppresses it, until the
   * end of the running period, and the sweep's problem list leaves
   * suppressed problems out), so without a note the ticket says nothing
   * until the problem recovers, if ever.
   *
   * Each change is one alert of kind note, built on the problem's own
   * delivery, keyed by the change (`zbx:0:<event>:note:<change>`): the
   * intake counts it once, the decision core turns it into one follow-up (or
   * a solve, per zabbix.poll.on_maintenance / on_disabled) and remembers it
   * on the incident, so neither the next sweep nor a restart repeats it; and
   * a maintenance that ends while the bridge is stopped still gets its end
   * note, the entry being read back from the incident (announcedMaintenance).
   */
  async #notesOrNone(openEvents: readonly string[]): Promise<Alert[]> {
    // Notes are extra: their failing (a refused request, an answer of another shape) must not hold back the
    // problems and recoveries found by this sweep. Logged once per distinct failure; tried again next sweep.
    try {
      const notes = await this.#notes(openEvents);
      this.#notesError = undefined;
      return notes;
    } catch (e) {
      const message = (e as Error).message;
      if (this.#notesError !== message) this.logger.warn({ err: message }, 'Zabbix poll: checking open problems for maintenance and disabled triggers failed; next sweep on schedule');
      this.#notesError = message;
      return [];
    }
  }

  async #notes(openEvents: readonly string[]): Promise<Alert[]> {
    if (openEvents.length === 0) return [];
    const states = await this.api.problemStates(openEvents);
    if (states.length === 0) return [];
    const triggers = new Map((await this.api.triggerStates([...new Set(states.map((p) => p.objectid))])).map((t) => [t.triggerid, t]));
    // The maintenances announced on the tickets and not ended there: an earlier run's memory (a restart, a kill -9).
    const announced = this.store.announcedOnOpenEvents('maintenance');
    const found: {
      readonly problem: Alert;
      readonly note: Omit<AlertNote, 'text'>;
      readonly text: (names: ReadonlyMap<string, MaintenanceRow>, who: string) => string;
      /** Who did it may be in the audit log. */
      readonly audit?: { readonly resource: 'trigger' | 'host'; readonly id: string };
    }[] = [];
    for (const p of states) {
      const problem = this.store.deliveryAlert(problemDeliveryKey('0', p.eventid));
      if (!problem) continue;
      const t = triggers.get(p.objectid);
      const host = t?.hosts.find((h) => h.host === problem.host) ?? t?.hosts[0];
      const hostName = host?.name ?? problem.hostName;
      const m = maintenanceOf(p, host);
      const seen = this.#inMaintenance.get(p.eventid);
      const before = seen === null ? undefined : (seen ?? announcedMaintenance(announced.get(p.eventid)));
      if (m) {
        // The host's maintenance status and the problem's suppression are written apart (the timer): while this
        // process sees the same maintenance, it is the same entry whatever half of it a sweep caught.
        const key = before?.maintenanceid === m.maintenanceid ? before.key : `maintenance:${m.maintenanceid}:${m.from}`;
        this.#inMaintenance.set(p.eventid, { key, maintenanceid: m.maintenanceid });
        found.push({
          problem,
          note: { reason: 'maintenance', key, solve: this.scope.onMaintenance === 'solve' },
          text: (names) => maintenanceText(hostName, m, names.get(m.maintenanceid)),
        });
      } else if (before) {
        this.#inMaintenance.set(p.eventid, null);
        found.push({
          problem,
          note: { reason: 'maintenance_end', key: before.key.replace(/^maintenance:/, 'maintenance_end:'), after: before.key, solve: false },
          text: (names) => `Host ${hostName} left maintenance ${maintenanceName(before.maintenanceid, names.get(before.maintenanceid))}; the problem is still open in Zabbix.`,
        });
      }
      if (!t) continue;
      const solve = this.scope.onDisabled === 'solve';
      if (t.status === '1') {
        found.push({
          problem,
          note: { reason: 'disabled', key: 'disabled:trigger', solve },
          audit: { resource: 'trigger', id: t.triggerid },
          text: (_n, who) => `Trigger "${t.description}" was disabled in Zabbix${who}: it is no longer evaluated, so Zabbix sends no recovery for this problem while it is disabled (it keeps the problem open, hidden from its frontend).`,
        });
      }
      if (host?.status === '1') {
        found.push({
          problem,
          note: { reason: 'disabled', key: `disabled:host:${host.hostid}`, solve },
          audit: { resource: 'host', id: host.hostid },
          text: (_n, who) => `Host ${hostName} was disabled in Zabbix${who} (not monitored): its triggers are no longer evaluated, so Zabbix sends no recovery for this problem while it is disabled.`,
        });
      }
      for (const item of t.items) {
        if (item.status !== '1') continue;
        found.push({
          problem,
          note: { reason: 'disabled', key: `disabled:item:${item.itemid}`, solve },
          text: () => `Item ${item.name ? `"${item.name}" ` : ''}(${item.key_}) on ${hostName} was disabled in Zabbix: the trigger gets no new values, so Zabbix will send no recovery for this problem while it stays disabled.`,
        });
      }
    }
    // Only what was not delivered yet (a change stays visible every sweep); the intake would count it a duplicate anyway.
    const fresh = found.filter((f) => !this.#noteDelivered(f.problem, f.note));
    if (fresh.length === 0) return [];
    const names = await this.#names([...new Set(fresh.flatMap((f) => (f.note.reason === 'disabled' ? [] : [f.note.key.split(':')[1] ?? ''])).filter((id) => id !== '' && id !== '0'))]);
    const out: Alert[] = [];
    for (const f of fresh) out.push(noteAlert(f.problem, { ...f.note, text: truncate(f.text(names, f.audit ? await this.#who(f.audit.resource, f.audit.id) : ''), NOTE_TEXT_MAX) }));
    return out;
  }

  #noteDelivered(problem: Alert, note: Omit<AlertNote, 'text'>): boolean {
    if (!this.digests) return false;
    return this.store.hasDelivery(deliveryKey(noteAlert(problem, { ...note, text: '' }), this.digests));
  }

  /** " by Admin at 2026-12-01 23:51:02 UTC" when the audit log says who disabled it; '' when it cannot be known. */
  async #who(resource: 'trigger' | 'host', id: string): Promise<string> {
    if (this.#auditRefused) return '';
    try {
      const by = await this.api.disabledBy(resource, id);
      const at = Number(by?.clock);
      return by ? ` by ${by.username}${Number.isFinite(at) && at > 0 ? ` at ${formatTime(at * 1000)}` : ''}` : '';
    } catch (e) {
      // auditlog.get is for Super admins (CAuditLog): a lesser API user's notes go without who.
      this.#auditRefused = true;
      this.logger.warn({ err: (e as Error).message }, 'Zabbix auditlog.get failed: notes of disabled triggers and hosts do not say who disabled them (the API user needs the Super admin role for that)');
      return '';
    }
  }

  /** Maintenance names for the notes; without them (maintenance.get refused or failing) the notes name the maintenance by id. */
  async #names(ids: readonly string[]): Promise<ReadonlyMap<string, MaintenanceRow>> {
    const missing = ids.filter((id) => !this.#maintenanceNames.has(id));
    if (missing.length > 0 && !this.#maintenanceGetRefused) {
      try {
        for (const m of await this.api.maintenances(missing)) this.#maintenanceNames.set(m.maintenanceid, m);
      } catch (e) {
        // A plain Zabbix user may not call maintenance.get (CMaintenance: admin and super admin): notes go without the name.
        this.#maintenanceGetRefused = true;
        this.logger.warn({ err: (e as Error).message }, 'Zabbix maintenance.get failed: maintenance notes name the maintenance by its id (give the API user the Admin role to see names)');
      }
    }
    return this.#maintenanceNames;
  }

  /**
   * The same limits as the webhook's (core/limits.ts): long text truncated;
   * a field longer than Zabbix itself allows (not something a Zabbix API
   * returns) skips the alert, logged once per event with the field's name.
   */
  #withinLimits(alerts: readonly Alert[]): Alert[] {
    const out: Alert[] = [];
    for (const a of alerts) {
      const b = boundAlert(a);
      if (b.ok) out.push(b.alert);
      else {
        // The event id may be the field too long: logged and remembered bounded.
        const eventId = truncate(a.eventId, 64);
        if (this.#skipped.has(eventId)) continue;
        this.#skipped.add(eventId);
        this.logger.warn({ event_id: eventId, kind: a.kind, field: b.field, err: `${b.field} ${b.message}` }, 'polled alert skipped: a field is longer than Zabbix allows');
      }
    }
    return out;
  }

  /** An open event Zabbix does not return: its state is unknown, so its incident stays open. Logged and counted once. */
  #reportUnknown(id: string): void {
    if (this.#unknown.has(id)) return;
    this.#unknown.add(id);
    this.metrics.unknownEvents.inc();
    this.logger.warn(
      { event_id: id, code: 'ZABBIX_EVENT_UNKNOWN' },
      'open event not returned by the Zabbix API (host not visible to the API user, or event housekept): its ticket stays open until Zabbix reports a recovery',
    );
  }
}

/**
 * The maintenance an open problem is in: the problem's suppression by a
 * maintenance (suppression_data with a maintenanceid; "0" there is a user's
 * manual suppression, 7.0+, not a maintenance), else its host's
 * maintenance_status (a maintenance whose tags do not match the problem
 * leaves it unsuppressed, but the host is in maintenance all the same).
 */
export function maintenanceOf(p: ProblemState, host: TriggerState['hosts'][number] | undefined): InMaintenance | undefined {
  const hostIn = host?.maintenance_status === '1' && host.maintenanceid !== undefined && host.maintenanceid !== '0';
  const s = p.suppression_data.find((d) => d.maintenanceid !== '0');
  if (s) {
    const same = hostIn && host?.maintenanceid === s.maintenanceid;
    return {
      maintenanceid: s.maintenanceid,
      from: same ? (host?.maintenance_from ?? '0') : '0',
      until: s.suppress_until,
      ...(same && host?.maintenance_type !== undefined ? { type: host.maintenance_type } : {}),
    };
  }
  if (!hostIn || !host?.maintenanceid) return undefined;
  return { maintenanceid: host.maintenanceid, from: host.maintenance_from ?? '0', ...(host.maintenance_type !== undefined ? { type: host.maintenance_type } : {}) };
}

/**
 * The maintenance an event's ticket was last told it entered and not told it left, from the note keys its
 * incident announced (`maintenance:<id>:<from>`, `maintenance_end:<id>:<from>`, oldest first): what the poller
 * saw before a restart. The decision core announces an end only after its entry (core/decide.ts onNote), so
 * this is exactly the entry an end note may follow.
 */
export function announcedMaintenance(keys: readonly string[] | undefined): { readonly key: string; readonly maintenanceid: string } | undefined {
  if (!keys) return undefined;
  for (let i = keys.length - 1; i >= 0; i--) {
    const key = keys[i] ?? '';
    const m = /^maintenance:([^:]+):/.exec(key);
    if (!m?.[1]) continue;
    if (keys.includes(key.replace(/^maintenance:/, 'maintenance_end:'))) return undefined;
    return { key, maintenanceid: m[1] };
  }
  return undefined;
}

function maintenanceName(id: string, m: MaintenanceRow | undefined): string {
  return m ? `"${m.name}"` : `#${id}`;
}

function maintenanceText(hostName: string, m: InMaintenance, row: MaintenanceRow | undefined): string {
  const type = m.type ?? row?.maintenance_type;
  const kind = type === '1' ? 'without data collection' : type === '0' ? 'with data collection' : undefined;
  const until = Number(m.until);
  const details = [kind, Number.isFinite(until) && until > 0 ? `until ${formatTime(until * 1000)}` : undefined].filter((x) => x !== undefined);
  const what = type === '1' ? 'Zabbix collects no data from it meanwhile, so the problem cannot recover until the maintenance ends' : 'Zabbix suppresses its problems meanwhile (no notifications)';
  return `Host ${hostName} entered maintenance ${maintenanceName(m.maintenanceid, row)}${details.length > 0 ? ` (${details.join(', ')})` : ''}: ${what}.`;
}

/** A note about an open problem, on the problem's own alert as first delivered. */
export function noteAlert(problem: Alert, note: AlertNote): Alert {
  const { update: _u, recoveryEventId: _r, recoveredAt: _at, ...rest } = problem;
  return { ...rest, source: 'poller', kind: 'note', note };
}
