import type { Alert, Severity } from '../core/alert.js';
import { classify, type Classification } from '../core/classify.js';
import { decide, decideTicketClosed, type DecideInput, type Decision, type EventInfo, type Incident, type Policy } from '../core/decide.js';
import { fingerprint, problemDeliveryKey, recoveryDeliveryKey, type FingerprintField } from '../core/fingerprint.js';
import type { Rules } from '../core/rules.js';
import { assessAlert, decisionBasis, type DecisionState, type Explained, type ProcessingSettings } from '../core/assess.js';
import type { Clock, DecisionRecord, DecisionStore, PendingDelivery } from '../core/ports.js';
import { queueJob } from './storm-control.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

/** Deliveries decided per event-loop turn: large enough to amortise the commit under a backlog (about 50 ms of work), small enough to keep GLPI dispatch on this thread responsive. */
const BATCH = 512;
/**
 * New deliveries wait this long to be decided together: one state commit per
 * batch instead of one per alert or a few (CPU and disk writes that would
 * compete with the intake), at no cost a user can see next to GLPI's own
 * latency and the hold-down and coalescing windows. Issue 16: in a 167/s storm
 * a batch costs about as much again as the alerts in it (the state commit and
 * its fsync, the inbox read, the dispatcher's look at the queue). 100 ms instead
 * of 20 (batches of about 17 alerts instead of 3) took the processing thread
 * from 0.45-0.57 CPU-seconds per 1,000 alerts (seven 30 s storms) to 0.36-0.43
 * (five, alternated), a tenth of the daemon's CPU; the p99 of the 202 at
 * 1,000/s did not move (six alternated rounds each).
 */
const GATHER_MS = 100;
/**
 * Intake first (issue 16): while Zabbix is queueing on the intake (a storm at the machine's limit), new
 * decisions wait and look again after YIELD_MS: deciding, its state writes and its garbage collection
 * competed with the intake for the two cores and the disk (the intake took 6,300-6,800 alerts/s with
 * decisions running against 9,300-10,900 with them held, alternated in one run). Decisions are not starved:
 * one batch at least every MAX_YIELD_MS, and none held once the intake has been saturated for MAX_HOLD_MS in
 * a row (from then on both share the machine until Zabbix stops queueing); after the storm they catch up at
 * full speed. GLPI jobs already queued run meanwhile.
 *
 * The bound is time, not a count of undecided deliveries: a count is reached in 4 s on one machine and in 14 s
 * on another (it was 100,000, and on a machine taking 25,000 alerts/s it ended the hold 6 s into a 10 s burst,
 * after which the intake took 60 % of the bare ceiling instead of 70 %). A hold of 30 s adds about the work of
 * 30 s of trickle to the catch-up: tickets come seconds later, Zabbix is answered as fast as the disk allows.
 */
const YIELD_MS = 25;
const MAX_YIELD_MS = 1_000;
export const MAX_HOLD_MS = 30_000;
/** A saturation not looked at for this long has ended: the next one starts a new hold. */
const HOLD_GAP_MS = 1_000;
/** Incidents whose committed state is kept in memory (most recently used). */
const INCIDENTS_CACHED = 20_000;
/** Decisions the decision log keeps (the status page's "last decisions"); older ones are in the log lines. */
export const DECISION_LOG_KEEP = 500;

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
  #definitions: readonly (readonly FingerprintField[])[] = [];
  #definitionsFor: ProcessingSettings | undefined;
  #decidedThrough = 0;
  #decidedReceivedAt = 0;
  /** When decisions started yielding to the intake (performance.now(); 0: they are not). */
  #yieldingSince = 0;
  /** When this stretch of a saturated intake was first seen (performance.now(); 0: none), and last looked at. */
  #holdingSince = 0;
  #holdLookedAt = 0;

  constructor(
    private readonly store: DecisionStore,
    private settings: () => ProcessingSettings,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    private readonly onQueued: () => void,
    /** Whether Zabbix is queueing on the intake right now: new decisions yield to it (YIELD_MS). */
    private readonly intakeBusy?: () => boolean,
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
   * Forget the incidents remembered from earlier batches: another bridge sharing the database may have
   * decided since (composition/cluster.ts calls it when this node becomes the decider again).
   */
  forget(): void {
    this.#committed.clear();
    this.#definitionsFor = undefined;
  }

  /**
   * Decide on new deliveries soon: after GATHER_MS, or at the next turn when
   * a backlog is being worked through (one batch per event-loop turn, so GLPI
   * answers are handled in between).
   */
  schedule(when: 'after-gathering' | 'next-turn' = 'after-gathering'): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    const run = () => {
      this.#scheduled = false;
      if (this.#yieldToIntake()) return;
      this.drain('one-batch');
    };
    if (when === 'next-turn') setImmediate(run);
    else setTimeout(run, GATHER_MS);
  }

  /**
   * Whether work waits for the intake now: Zabbix is queueing on it, and has been for less than MAX_HOLD_MS
   * in a row. New decisions yield on this answer, and the dispatcher narrows GLPI to one job on the same one.
   */
  holdsBack(now = performance.now()): boolean {
    if (this.intakeBusy === undefined) return false;
    const busy = this.intakeBusy();
    const looked = this.#holdLookedAt;
    this.#holdLookedAt = now;
    if (!busy) {
      this.#holdingSince = 0;
      return false;
    }
    if (this.#holdingSince === 0 || now - looked > HOLD_GAP_MS) this.#holdingSince = now;
    return now - this.#holdingSince < MAX_HOLD_MS;
  }

  /** True (and a look again scheduled) when this batch waits for the intake (YIELD_MS). */
  #yieldToIntake(): boolean {
    if (!this.intakeBusy) return false;
    const now = performance.now();
    const busy = this.holdsBack(now);
    if (busy && this.#yieldingSince === 0) this.#yieldingSince = now;
    if (busy && now - this.#yieldingSince < MAX_YIELD_MS) {
      this.#scheduled = true;
      setTimeout(() => {
        this.#scheduled = false;
        this.schedule('next-turn');
      }, YIELD_MS);
      return true;
    }
    if (this.#yieldingSince !== 0) {
      this.metrics.decisionsYielded.inc((now - this.#yieldingSince) / 1000);
      // Still busy: the next batch waits again, MAX_YIELD_MS from now.
      this.#yieldingSince = busy ? now : 0;
    }
    return false;
  }

  /**
   * Process deliveries not processed yet: `one-batch` per call (the rest is
   * scheduled for the next turn), or `all` of them (start, stop). Returns how
   * many were processed.
   */
  drain(scope: 'one-batch' | 'all' = 'all'): number {
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
      if (scope === 'one-batch') {
        this.schedule('next-turn');
        break;
      }
    }
    if (total > 0) this.onQueued();
    return total;
  }

  #incident(fp: string): Incident | undefined {
    const incident = this.#committed.has(fp) ? this.#committed.get(fp) : this.store.getIncident(fp);
    if (!incident || incident.ticketId !== undefined) return incident;
    const ticketId = this.store.ticketId(fp, incident.cycle);
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

  /** Fingerprint definitions of open incidents other than the one in force; recomputed when the settings change. */
  #otherDefinitions(s: ProcessingSettings): readonly (readonly FingerprintField[])[] {
    if (this.#definitionsFor === s) return this.#definitions;
    const current = JSON.stringify(s.fingerprintFields);
    this.#definitions = this.store
      .openIncidentDefinitions()
      .filter((d) => JSON.stringify(d) !== current)
      .map((d) => d as readonly FingerprintField[]);
    this.#definitionsFor = s;
    if (this.#definitions.length > 0) this.logger.info({ definitions: this.#definitions }, 'incidents opened under an earlier correlation.fingerprint are still open: their problems keep joining them');
    return this.#definitions;
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
    // Incidents and events read and changed in this batch: a storm on one fingerprint reads and writes its row once per batch.
    const incidents = new Map<string, Incident | undefined>();
    const events = new Map<string, EventInfo | undefined>();
    const changed = new Set<string>();
    const incidentOf = (fp: string): Incident | undefined => {
      if (!incidents.has(fp)) incidents.set(fp, this.#incident(fp));
      return incidents.get(fp);
    };
    let current: PendingDelivery | undefined;
    const state: DecisionState = {
      incident: incidentOf,
      event: (id) => {
        if (!events.has(id)) events.set(id, this.store.eventInfo(id));
        return events.get(id);
      },
      recoveredEarlier: (alert) => {
        const id = this.store.deliveryId(recoveryDeliveryKey(alert.eventSource, alert.eventId));
        return id !== undefined && current !== undefined && id < current.id;
      },
      otherDefinitions: this.#otherDefinitions(s),
      // A symptom skipped (symptoms: skip) and ranked as cause later gets its ticket from its problem as delivered.
      problemAlert: (alert) => this.store.deliveryAlert(problemDeliveryKey(alert.eventSource, alert.eventId)),
    };
    const writes: (() => void)[] = [];
    /** Metrics and log lines, once the batch is committed. */
    const logs: (() => void)[] = [];
    /** Decisions by action, counted once per batch (prom-client hashes the labels at every inc()). */
    const actions = new Map<string, number>();
    /** The decision log's entries, committed with the decisions (one entry per decision, even if taken again after a crash). */
    const decided: DecisionRecord[] = [];
    for (const d of deliveries) {
      current = d;
      const now = this.clock.now();
      let result: Explained;
      try {
        // Windows (hold-down, reopen) are judged on when the alert arrived, not on when a backlog let it be decided.
        result = assessAlert(s, d.alert, state, Math.min(d.receivedAt, now));
      } catch (e) {
        const message = (e as Error).message;
        writes.push(() => this.store.parkDelivery(d.id, d.alert.eventId, d.alert.kind, message, now));
        logs.push(() => {
          this.metrics.parkedDeliveries.inc();
          this.logger.error({ code: 'BRIDGE_DELIVERY_PARKED', delivery_id: d.id, event_id: d.alert.eventId, err: message }, 'cannot decide on alert; parked (see: zabbix-glpi-bridge queue)');
        });
        continue;
      }
      const apply = (delivery: PendingDelivery, { decision, fingerprint: fp, classification: c }: Explained, replayed: boolean): void => {
        if (decision.incident) {
          incidents.set(fp, decision.incident);
          changed.add(fp);
        }
        const cycle = decision.jobCycle ?? incidentOf(fp)?.cycle ?? 0;
        if (decision.jobCycle !== undefined && !this.store.cycleHasTicket(fp, decision.jobCycle)) {
          // That cycle never got a ticket (suppressed as a flap, or its create was cancelled): nowhere to write.
          logs.push(() => this.logger.info({ delivery_id: delivery.id, event_id: delivery.alert.eventId, fingerprint: fp, cycle: decision.jobCycle, reason: decision.reason }, 'update for a ticket cycle that has no ticket; dropped'));
          return;
        }
        if (decision.group) {
          // problems.together: the group's record and its jobs, in the group's own lane (core/decide.ts groupRecord says why).
          const g = decision.group;
          incidents.set(g.fingerprint, g.incident);
          changed.add(g.fingerprint);
          for (const job of g.jobs) {
            const runAt = Math.max(now + s.coalesceWindowMs, job.type === 'problem_group' ? delivery.receivedAt + job.delayMs : 0);
            writes.push(() => queueJob(this.store, g.fingerprint, 0, job, runAt, now, delivery.id));
          }
        }
        if (decision.events && decision.events.length > 0) {
          const changes = decision.events;
          for (const e of changes) events.set(e.eventId, { fingerprint: fp, cycle: e.cycle, open: e.open });
          writes.push(() => this.store.putEvents(fp, changes));
        }
        if (decision.cancelCycle) {
          writes.push(() => this.store.cancelCycle(fp, cycle, now));
          logs.push(() => this.metrics.holdDownSuppressed.inc());
        }
        for (const job of decision.jobs) {
          // A held-back create is due when its hold-down ends, counted from when the problem arrived.
          const runAt = job.type === 'create_ticket' ? delivery.receivedAt + job.delayMs : now + s.coalesceWindowMs;
          writes.push(() => queueJob(this.store, fp, cycle, job, runAt, now, delivery.id));
        }
        // Updates and recoveries belong to an incident: report its severity, not a fresh guess from this event.
        const severity = delivery.alert.kind === 'problem' ? c.severity : (incidentOf(fp)?.severity ?? c.severity);
        decided.push({
          at: now,
          deliveryId: delivery.id,
          eventId: delivery.alert.eventId,
          kind: delivery.alert.kind,
          host: delivery.alert.host,
          fingerprint: fp,
          category: c.category,
          severity,
          action: decision.action,
          reason: decision.reason,
          jobs: [...decision.jobs, ...(decision.group?.jobs ?? [])].map((j) => j.type),
        });
        actions.set(decision.action, (actions.get(decision.action) ?? 0) + 1);
        logs.push(() => {
          this.logger.info(
            {
              delivery_id: delivery.id,
              event_id: delivery.alert.eventId,
              kind: delivery.alert.kind,
              source: delivery.alert.source,
              fingerprint: fp,
              category: c.category,
              severity,
              action: decision.action,
              reason: decision.reason,
              jobs: decision.jobs.map((j) => j.type),
              ...(replayed ? { replayed_after: d.id } : {}),
            },
            'decision',
          );
        });
      };
      apply(d, result, false);
      // Updates (acknowledgements, messages) Zabbix delivered before this problem were ignored then (no ticket
      // yet): now that the event belongs to an incident, they are decided again, in order, behind the problem.
      if (d.alert.kind === 'problem' && result.decision.events?.some((e) => e.eventId === d.alert.eventId && e.open)) {
        for (const early of this.store.earlierUpdates(d.alert.eventSource, d.alert.eventId, d.id)) {
          apply(early, assessAlert(s, early.alert, state, Math.min(d.receivedAt, now)), true);
        }
      }
    }
    const now = this.clock.now();
    // Decisions can be taken again from the inbox: no fsync needed here.
    const last = deliveries[deliveries.length - 1] as PendingDelivery;
    this.store.transaction(() => {
      for (const w of writes) w();
      this.store.markProcessed(last.id);
      this.store.recordDecisions(decided, DECISION_LOG_KEEP);
      for (const fp of changed) {
        const incident = incidents.get(fp);
        if (incident) this.store.putIncident(incident, now);
      }
    }, 'crash-safe');
    this.#remember(incidents);
    this.#decidedThrough = last.id;
    this.#decidedReceivedAt = last.receivedAt;
    for (const l of logs) l();
    for (const [action, n] of actions) this.metrics.decisions.inc({ action }, n);
    return deliveries.length;
  }

  /**
   * The processing thread's housekeeping. Finished jobs are kept an hour, or
   * `retentionMs` if shorter. An ended incident is kept while an alert still
   * to decide could reopen it (the reopen window) and while its alerts are
   * kept (`retentionMs`: an acknowledgement of one of its events still finds
   * its ticket), whichever is longer, counted from the alerts still to decide.
   */
  prune(now: number, retentionMs: number): void {
    // The intake prunes the inbox only behind decisions on disk (a power cut takes the others back to be decided
    // again): put them there now and then, as a job claim would, so that pruning follows while no job is claimed.
    this.store.syncDecided();
    this.store.pruneFinished(now - Math.min(3_600_000, retentionMs));
    this.pruneEnded(this.decidedHorizon(now) - Math.max(this.settings().policy.reopenWindowMs, retentionMs));
  }

  /**
   * Forget incidents whose cycle ended before `before` (the reopen window)
   * and that have no job left. Returns how many.
   */
  pruneEnded(before: number): number {
    let total = 0;
    for (;;) {
      const fps = this.store.pruneIncidents(before);
      for (const fp of fps) this.#committed.delete(fp);
      total += fps.length;
      if (fps.length < 5000) break;
    }
    if (total > 0) {
      this.metrics.incidentsPruned.inc(total);
      this.logger.info({ incidents: total }, 'forgot incidents ended before the reopen window');
    }
    return total;
  }

  /**
   * Every alert received before this time is decided: held-back creates run
   * only up to it (an undecided alert could be the recovery that cancels one),
   * and ended incidents are forgotten only once their reopen window has
   * passed by it (an undecided problem could still reopen one).
   */
  decidedHorizon(now: number): number {
    if (this.#decidedThrough >= this.#through || this.store.processedThrough() >= this.#through) return now;
    return this.#decidedReceivedAt;
  }

  /**
   * The dispatcher found the ticket of cycle `cycle` closed in GLPI. If that
   * cycle still has open problems, they get a new ticket (a new cycle),
   * rendered from the latest open problem; otherwise nothing changes.
   */
  ticketClosed(fp: string, cycle: number, ticketId: number): void {
    const incident = this.#incident(fp);
    const log = this.logger.child({ fingerprint: fp, ticket_id: ticketId });
    if (incident?.status !== 'open' || incident.cycle !== cycle) {
      log.info({ cycle }, 'ticket of an ended cycle is closed in GLPI; nothing to do');
      return;
    }
    const eventId = this.store.latestOpenEvent(fp, cycle);
    const alert = eventId !== undefined ? this.store.deliveryAlert(problemDeliveryKey('0', eventId)) : undefined;
    if (!alert) {
      log.warn({ cycle }, 'ticket closed in GLPI while problems are open, but their alert is no longer stored; the next problem opens a new ticket');
      return;
    }
    const s = this.settings();
    const now = this.clock.now();
    const decision = decideTicketClosed(decisionBasis(s, alert, classify(s.rules, alert), fp, incident, now), cycle, ticketId);
    const next = decision.incident;
    if (!next) return;
    this.store.transaction(() => {
      if (decision.moveOpenEventsFrom !== undefined) this.store.moveOpenEvents(fp, decision.moveOpenEventsFrom, next.cycle);
      for (const job of decision.jobs) queueJob(this.store, fp, next.cycle, job, now, now);
      this.store.putIncident(next, now);
      this.store.recordDecisions(
        [{ at: now, eventId: alert.eventId, kind: 'ticket_closed', host: alert.host, fingerprint: fp, category: next.category, severity: next.severity, action: decision.action, reason: decision.reason, jobs: decision.jobs.map((j) => j.type) }],
        DECISION_LOG_KEEP,
      );
    }, 'crash-safe');
    this.#remember(new Map([[fp, next]]));
    this.metrics.decisions.inc({ action: decision.action });
    log.info({ event_id: alert.eventId, action: decision.action, reason: decision.reason, jobs: decision.jobs.map((j) => j.type) }, 'decision');
    this.onQueued();
  }
}
