import cron, { type ScheduledTask } from 'node-cron';
import { SEVERITIES, type Alert, type Severity } from '../core/alert.js';
import { problemDeliveryKey } from '../core/fingerprint.js';
import { boundAlert, truncate } from '../core/limits.js';
import { polledProblemAlert, recoveryOf, vanished, type PolledProblem } from '../core/reconcile.js';
import type { AlertIntake, BaselineMode, CursorState, EventRow, PollerStore, PollMemory, ProblemRow, ZabbixReader } from '../core/ports.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

export interface PollScope {
  readonly hostGroups: readonly string[];
  readonly minSeverity: Severity;
  /** First sweep of this scope: record the problems already open as a baseline (skip, default) or ticket them (import). */
  readonly baseline?: BaselineMode;
}

export interface SweepResult {
  readonly problems: number;
  readonly newProblems: number;
  readonly recoveries: number;
  /** Problems recorded as the baseline by this sweep (the first of its scope). */
  readonly baselined: number;
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
      if (result.newProblems > 0 || result.recoveries > 0) this.logger.info(result, 'poll found alerts the webhook did not deliver');
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
      const alert = polledProblemAlert(polled);
      if (alert) alerts.push(alert);
      else if (!this.#skipped.has(p.eventid)) {
        this.#skipped.add(p.eventid);
        this.logger.warn({ event_id: p.eventid, trigger_id: p.objectid }, 'polled problem skipped: its trigger or host is not visible to the API user (or was deleted)');
      }
    }
    const current = new Set(problems.map((p) => p.eventid));
    const openEvents = this.store.openIncidentEvents();
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
    const bounded = this.#withinLimits(alerts);
    const accepted = await Promise.all(bounded.map((a) => this.intake.accept(a)));
    const result = { problems: problems.length, newProblems: 0, recoveries: 0, baselined, unknown: unknownNow };
    accepted.forEach((r, i) => {
      if (r.duplicate) return;
      const a = bounded[i] as Alert;
      if (a.kind === 'problem') result.newProblems++;
      else result.recoveries++;
      this.metrics.polledAlerts.inc({ kind: a.kind });
      this.logger.info({ event_id: a.eventId, kind: a.kind }, 'alert caught up by the poller');
    });
    return result;
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
