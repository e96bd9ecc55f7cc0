import type { Alert, Severity } from '../core/alert.js';
import { classify, type Classification } from '../core/classify.js';
import { decide, type Decision, type Incident, type Policy } from '../core/decide.js';
import { fingerprint, type FingerprintField } from '../core/fingerprint.js';
import type { Rules } from '../core/rules.js';
import type { Clock } from '../adapters/clock.js';
import type { PendingDelivery, SqliteStore } from '../adapters/store/sqlite-store.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

/** What the processor needs from the (reloadable) configuration. */
export interface ProcessingSettings {
  readonly rules: Rules;
  readonly policy: Policy;
  readonly fingerprintFields: readonly FingerprintField[];
  /** Follow-ups and solutions wait this long so a storm can merge into them. */
  readonly coalesceWindowMs: number;
}

export interface Explained {
  readonly classification: Classification;
  readonly fingerprint: string;
  readonly decision: Decision;
}

/** Classify, fingerprint and decide one alert against an incident. Pure apart from the inputs. */
export function explain(settings: ProcessingSettings, alert: Alert, incidentOf: (fp: string) => Incident | undefined, now: number): Explained {
  const classification = classify(settings.rules, alert);
  const fp = fingerprint(alert, classification.category, settings.fingerprintFields);
  const decision = decide({
    alert,
    classification,
    fingerprint: fp,
    incident: incidentOf(fp),
    now,
    policy: settings.policy,
    rules: settings.rules,
    reclassify: (severity: Severity) => classify(settings.rules, { ...alert, kind: 'update', severity }),
  });
  return { classification, fingerprint: fp, decision };
}

/** Deliveries decided per event-loop turn: large enough to amortise the commit under a backlog (about 50 ms of work), small enough to keep GLPI dispatch on this thread responsive. */
const BATCH = 512;
/**
 * New deliveries wait this long to be decided together: one state commit per
 * batch instead of one per alert or two under a storm (CPU and disk writes
 * that would compete with the intake), at no cost a user can see next to
 * GLPI's own latency and the hold-down and coalescing windows.
 */
const GATHER_MS = 20;
/** Incidents whose committed state is kept in memory (most recently used). */
const INCIDENTS_CACHED = 20_000;

/**
 * Durable inbox → decisions → action queue. Each batch of deliveries is
 * decided and its jobs queued in one transaction, in delivery order.
 */
export class Processor {
  #scheduled = false;
  /** Deliveries up to this id are on disk and may be decided on. */
  #through = 0;
  #lastError: string | undefined;
  /**
   * Committed incident states, by fingerprint (undefined: none yet). Only this
   * processor writes incidents, so they stay true; ticket ids, which the
   * dispatcher records, are looked up until known. Saves a read and a JSON
   * parse per alert under a storm.
   */
  readonly #committed = new Map<string, Incident | undefined>();

  constructor(
    private readonly store: SqliteStore,
    private settings: () => ProcessingSettings,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    private readonly onQueued: () => void,
  ) {}

  /**
   * Deliveries up to this id may be decided on: the intake has them on disk.
   * (Deciding on a delivery a power cut could still take away would leave
   * the decided position past it, and its id to the next alert.)
   */
  admit(throughId: number): void {
    this.#through = Math.max(this.#through, throughId);
  }

  /**
   * Decide on new deliveries soon: after GATHER_MS, or at the next turn when
   * a backlog is being worked through (one batch per event-loop turn, so GLPI
   * answers are handled in between).
   */
  schedule(backlog = false): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    const run = () => {
      this.#scheduled = false;
      this.drain(true);
    };
    if (backlog) setImmediate(run);
    else setTimeout(run, GATHER_MS);
  }

  /**
   * Process deliveries not processed yet: one batch per call when `turn` is
   * set (the rest is scheduled for the next turn), everything otherwise
   * (start, stop). Returns how many were processed.
   */
  drain(turn = false): number {
    let total = 0;
    for (;;) {
      let n = 0;
      try {
        n = this.#batch();
      } catch (e) {
        const message = (e as Error).message;
        if (message !== this.#lastError) this.logger.error({ err: message }, 'processing deliveries failed; retrying every second');
        this.#lastError = message;
        setTimeout(() => this.schedule(), 1000).unref();
        break;
      }
      if (this.#lastError !== undefined) {
        this.logger.info({ after: this.#lastError }, 'processing deliveries works again');
        this.#lastError = undefined;
      }
      total += n;
      if (n < BATCH) break;
      if (turn) {
        this.schedule(true);
        break;
      }
    }
    if (total > 0) this.onQueued();
    return total;
  }

  #incident(fp: string): Incident | undefined {
    const incident = this.#committed.has(fp) ? this.#committed.get(fp) : this.store.getIncident(fp);
    if (!incident || incident.ticketId !== undefined) return incident;
    const ticketId = this.store.ticketId(fp, incident.seq);
    return ticketId !== undefined ? { ...incident, ticketId } : incident;
  }

  #remember(incidents: ReadonlyMap<string, Incident | undefined>): void {
    for (const [fp, incident] of incidents) {
      this.#committed.delete(fp); // most recently used last
      this.#committed.set(fp, incident);
    }
    for (const fp of this.#committed.keys()) {
      if (this.#committed.size <= INCIDENTS_CACHED) break;
      this.#committed.delete(fp);
    }
  }

  /**
   * Decide on one batch. Decisions are taken outside the write transaction
   * (only this processor writes incidents and the decided position, and
   * nothing else runs on this thread in between), so the write lock of the
   * state file is held just for the statements.
   */
  #batch(): number {
    const deliveries = this.store.unprocessedDeliveries(BATCH, this.#through);
    if (deliveries.length === 0) return 0;
    const s = this.settings();
    // Incidents read and changed in this batch: a storm on one fingerprint reads and writes its row once per batch.
    const incidents = new Map<string, Incident | undefined>();
    const changed = new Set<string>();
    const incidentOf = (fp: string): Incident | undefined => {
      if (!incidents.has(fp)) incidents.set(fp, this.#incident(fp));
      return incidents.get(fp);
    };
    const writes: (() => void)[] = [];
    /** Metrics and log lines, once the batch is committed. */
    const logs: (() => void)[] = [];
    for (const d of deliveries) {
      const now = this.clock.now();
      let result: Explained;
      try {
        result = explain(s, d.alert, incidentOf, now);
      } catch (e) {
        const message = (e as Error).message;
        logs.push(() => this.logger.error({ delivery_id: d.id, event_id: d.alert.eventId, err: message }, 'cannot decide on alert'));
        continue;
      }
      const { decision, fingerprint: fp, classification: c } = result;
      if (decision.incident) {
        incidents.set(fp, decision.incident);
        changed.add(fp);
      }
      if (decision.cancelCreate) {
        const seq = decision.incident?.seq ?? 0;
        writes.push(() => this.store.cancelPendingCreate(fp, seq, now));
        logs.push(() => this.metrics.holdDownSuppressed.inc());
      }
      const seq = incidentOf(fp)?.seq ?? 0;
      for (const job of decision.jobs) {
        const runAt = job.type === 'create_ticket' ? now + job.delayMs : now + s.coalesceWindowMs;
        writes.push(() => this.store.enqueue(fp, seq, job, runAt, now, d.id));
      }
      // Updates and recoveries belong to an incident: report its severity, not a fresh guess from this event.
      const severity = d.alert.kind === 'problem' ? c.severity : (incidentOf(fp)?.severity ?? c.severity);
      logs.push(() => {
        this.metrics.decisions.inc({ action: decision.action });
        this.logger.info(
          {
            delivery_id: d.id,
            event_id: d.alert.eventId,
            kind: d.alert.kind,
            source: d.alert.source,
            fingerprint: fp,
            category: c.category,
            severity,
            action: decision.action,
            reason: decision.reason,
            jobs: decision.jobs.map((j) => j.type),
          },
          'decision',
        );
      });
    }
    const now = this.clock.now();
    // Decisions can be taken again from the inbox: no fsync needed here.
    const last = deliveries[deliveries.length - 1] as PendingDelivery;
    this.store.transaction(() => {
      for (const w of writes) w();
      this.store.markProcessed(last.id);
      for (const fp of changed) {
        const incident = incidents.get(fp);
        if (incident) this.store.putIncident(incident, now);
      }
    }, 'crash');
    this.#remember(incidents);
    for (const l of logs) l();
    return deliveries.length;
  }
}
