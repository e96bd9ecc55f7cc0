import cron, { type ScheduledTask } from 'node-cron';
import { SEVERITIES, type Alert, type Severity } from '../core/alert.js';
import { deliveryKey, problemDeliveryKey } from '../core/fingerprint.js';
import { polledProblemAlert, recoveryOf, vanished, type PolledProblem } from '../core/reconcile.js';
import type { ZabbixApi } from '../adapters/zabbix/api-client.js';
import type { SqliteStore } from '../adapters/store/sqlite-store.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Intake } from './intake.js';

export interface PollScope {
  readonly hostGroups: readonly string[];
  readonly minSeverity: Severity;
}

export interface SweepResult {
  readonly problems: number;
  readonly newProblems: number;
  readonly recoveries: number;
}

/**
 * Reconciliation with the Zabbix API on a node-cron schedule: problems the
 * webhook never delivered become problem alerts, open incidents whose problem
 * is gone (confirmed with event.get) become recoveries. Everything goes
 * through the same intake, so a problem seen by both counts once.
 */
export class Poller {
  #task: ScheduledTask | undefined;
  #running: Promise<SweepResult | undefined> | undefined;
  #lastError: string | undefined;
  #groupIds: string[] | undefined;
  readonly #skipped = new Set<string>();
  lastSuccessAt: number | undefined;

  constructor(
    private readonly api: ZabbixApi,
    private readonly store: SqliteStore,
    private readonly intake: Intake,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    private readonly scope: PollScope = { hostGroups: [], minSeverity: 'not_classified' },
  ) {}

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

  async #reconcile(): Promise<SweepResult> {
    if (this.scope.hostGroups.length > 0) this.#groupIds ??= await this.api.groupIds(this.scope.hostGroups);
    const min = SEVERITIES.indexOf(this.scope.minSeverity);
    const problems = await this.api.problems({
      ...(this.#groupIds ? { groupIds: this.#groupIds } : {}),
      ...(min > 0 ? { severities: SEVERITIES.map((_s, i) => i).filter((i) => i >= min) } : {}),
    });
    const unknown = problems.filter((p) => !this.store.hasDelivery(problemDeliveryKey(p.source, p.eventid)));
    const triggers = new Map((await this.api.triggers([...new Set(unknown.map((p) => p.objectid))])).map((t) => [t.triggerid, t]));
    const alerts: Alert[] = [];
    for (const p of unknown) {
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
    const gone = vanished(this.store.openIncidentEvents(), current);
    if (gone.length > 0) {
      const events = new Map((await this.api.events(gone)).map((e) => [e.eventid, e]));
      for (const id of gone) {
        const e = events.get(id);
        if (e && (e.r_eventid === undefined || e.r_eventid === '0')) continue; // still a problem (raced with the snapshot)
        const problem = this.store.deliveryAlert(problemDeliveryKey('0', id));
        if (!problem) continue;
        alerts.push(recoveryOf(problem, e?.r_eventid, undefined));
      }
    }
    const accepted = await Promise.all(alerts.map((a) => this.intake.accept(a)));
    const result = { problems: problems.length, newProblems: 0, recoveries: 0 };
    accepted.forEach((r, i) => {
      if (r.duplicate) return;
      const a = alerts[i] as Alert;
      if (a.kind === 'problem') result.newProblems++;
      else result.recoveries++;
      this.metrics.polledAlerts.inc({ kind: a.kind });
      this.logger.info({ event_id: a.eventId, kind: a.kind, key: deliveryKey(a) }, 'alert caught up by the poller');
    });
    return result;
  }
}
