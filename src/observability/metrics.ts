import { getHeapStatistics } from 'node:v8';
import type { QueueStats } from '../core/ports.js';
import { droppedStdoutLines } from './logger.js';
import { isMainThread } from 'node:worker_threads';
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type MetricObjectWithValues, type MetricValue } from 'prom-client';

export type MetricsSnapshot = MetricObjectWithValues<MetricValue<string>>[];

/**
 * Every metric the bridge exposes, declared once with its help text. Each
 * thread has its own set; `processMetrics` (CPU, memory, event loop) belongs
 * to the main thread only.
 */
/** The queue gauges from the store's counts (the processing side sets them; the main thread when that side does not answer). */
export function setQueueGauges(metrics: Metrics, s: QueueStats, now: number): void {
  metrics.queueDepth.set({ state: 'pending' }, s.pending);
  metrics.queueDepth.set({ state: 'running' }, s.running);
  metrics.queueDepth.set({ state: 'dead' }, s.dead);
  metrics.inboxDepth.set(s.unprocessed);
  metrics.oldestPendingAge.set(s.oldestPendingAt !== undefined ? (now - s.oldestPendingAt) / 1000 : 0);
}

export function createMetrics(opts: { processMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'zgb_process_' });
  const m = {
    registry,
    alertsReceived: new Counter({
      name: 'zgb_alerts_received_total',
      help: 'Alerts received, by source (webhook, poller), kind (problem, update, recovery; note: a change the poller saw on an open problem) and outcome (accepted, duplicate, rejected).',
      labelNames: ['source', 'kind', 'outcome'] as const,
      registers: [registry],
    }),
    webhookRejected: new Counter({
      name: 'zgb_webhook_rejected_total',
      help: 'Requests refused by the HTTP listener (webhook and admin endpoints, timeouts, malformed HTTP) and connections closed at accept over webhook.max_connections, by error code.',
      labelNames: ['code'] as const,
      registers: [registry],
    }),
    decisions: new Counter({
      name: 'zgb_decisions_total',
      help: 'Decisions taken on alerts, by action (open, follow_up, update_severity, reopen, solve, suppress, ignore).',
      labelNames: ['action'] as const,
      registers: [registry],
    }),
    holdDownSuppressed: new Counter({
      name: 'zgb_hold_down_suppressed_total',
      help: 'Problems that recovered within the hold-down and never became a ticket.',
      registers: [registry],
    }),
    parkedDeliveries: new Counter({
      name: 'zgb_deliveries_parked_total',
      help: 'Alerts whose decision failed (an internal error): parked, listed by `queue`, not skipped silently.',
      registers: [registry],
    }),
    incidentsPruned: new Counter({
      name: 'zgb_incidents_pruned_total',
      help: 'Ended incidents forgotten after the reopen window (the state file does not grow with history).',
      registers: [registry],
    }),
    tickets: new Counter({
      name: 'zgb_tickets_total',
      help: 'Ticket operations done, by operation (opened, adopted, followed_up, updated, solved, closed, reopened, found_closed: the ticket was closed in GLPI, written_back to Zabbix).',
      labelNames: ['operation'] as const,
      registers: [registry],
    }),
    glpiRequests: new Counter({
      name: 'zgb_glpi_requests_total',
      help: 'HTTP requests sent to GLPI, by operation and status (HTTP code, or network error name).',
      labelNames: ['operation', 'status'] as const,
      registers: [registry],
    }),
    glpiLatency: new Histogram({
      name: 'zgb_glpi_request_duration_seconds',
      help: 'GLPI request latency by operation.',
      labelNames: ['operation'] as const,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    glpiSessions: new Counter({
      name: 'zgb_glpi_sessions_total',
      help: 'GLPI sessions opened, by reason (start, expired).',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    glpiCircuit: new Gauge({
      name: 'zgb_glpi_circuit_state',
      help: 'GLPI circuit breaker: 0 closed (GLPI answers), 1 half-open (one probe in flight), 2 open (GLPI down: jobs wait for the next probe).',
      registers: [registry],
    }),
    jobRetries: new Counter({
      name: 'zgb_job_retries_total',
      help: 'Queued GLPI jobs rescheduled after a retryable failure, by job type.',
      labelNames: ['type'] as const,
      registers: [registry],
    }),
    glpiLookups: new Counter({
      name: 'zgb_glpi_lookups_total',
      help: 'Names the rules give (ITILCategory, Entity, Group, RequestType, User) and hosts\' assets (asset) looked up in GLPI for a ticket, by itemtype and result (found, cached, stale: GLPI unreachable, the last resolution used; unknown, ambiguous, unsupported: the ticket went without it).',
      labelNames: ['itemtype', 'result'] as const,
      registers: [registry],
    }),
    assets: new Counter({
      name: 'zgb_glpi_assets_total',
      help: 'Tickets created and how their host\'s asset was found: map (assets.map), name, ip, none (no asset matched: the ticket went without), ambiguous, unsupported, error (GLPI refused the lookup).',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    problems: new Counter({
      name: 'zgb_glpi_problems_total',
      help: 'GLPI Problems (issue 14) by operation — created, linked (a ticket linked to a problem), ticket_linked (a symptom\'s ticket linked to its cause\'s), ticket_unlinked (a symptom ranked as cause again), unsupported (the GLPI API in use has no problem routes: skipped) — and trigger: recurrence (problems.after_cycles), together (problems.together), symptom.',
      labelNames: ['operation', 'trigger'] as const,
      registers: [registry],
    }),
    glpiReadBack: new Counter({
      name: 'zgb_glpi_read_back_total',
      help: 'Tickets a technician solved or closed in GLPI while their Zabbix problem was open (zabbix.write_back.glpi_status): a message queued for the Zabbix event, by status (solved, closed; followup: a technician\'s public follow-up mirrored, zabbix.write_back.mirror_followups) and close (yes: zabbix.write_back.close_problem).',
      labelNames: ['status', 'close'] as const,
      registers: [registry],
    }),
    decisionsYielded: new Counter({
      name: 'zgb_decisions_yielded_seconds_total',
      help: 'Seconds new decisions waited because Zabbix was queueing on the intake (a storm at the machine\'s limit: webhooks are answered first, one batch is still decided every second, GLPI jobs run one at a time meanwhile, and both catch up after the storm).',
      registers: [registry],
    }),
    glpiRowsRefused: new Counter({
      name: 'zgb_glpi_rows_refused_total',
      help: 'Rows of a GLPI answer left out because a field was missing or not what GLPI documents (each answer\'s refused rows are logged in one warning with their ticket ids), by operation (searchModifiedTickets: the GLPI read-back) and field.',
      labelNames: ['operation', 'field'] as const,
      registers: [registry],
    }),
    solutionRefused: new Counter({
      name: 'zgb_glpi_solution_refused_total',
      help: 'Solutions GLPI refused for a workflow reason (refused: the solution itself; status_unchanged: stored but the ticket did not become solved), by the recovery_fallback step that ended the job (status, followup, none).',
      labelNames: ['reason', 'fallback'] as const,
      registers: [registry],
    }),
    deadLetters: new Counter({
      name: 'zgb_dead_letters_total',
      help: 'Jobs moved to the dead-letter list after a permanent error, by job type.',
      labelNames: ['type'] as const,
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'zgb_queue_depth',
      help: 'Jobs in the queue, by state (pending, running, dead).',
      labelNames: ['state'] as const,
      registers: [registry],
    }),
    inboxDepth: new Gauge({
      name: 'zgb_inbox_depth',
      help: 'Alerts committed but not decided on yet.',
      registers: [registry],
    }),
    oldestPendingAge: new Gauge({
      name: 'zgb_queue_oldest_pending_age_seconds',
      help: 'Age of the oldest job not yet done (0 when the queue is empty).',
      registers: [registry],
    }),
    polls: new Counter({
      name: 'zgb_zabbix_polls_total',
      help: 'Zabbix API polling sweeps, by result (success, failure).',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    polledAlerts: new Counter({
      name: 'zgb_zabbix_polled_alerts_total',
      help: 'Alerts the poller found that the webhook had not delivered, by kind (problem, recovery).',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    unknownEvents: new Counter({
      name: 'zgb_zabbix_unknown_events_total',
      help: 'Open events of the bridge that Zabbix no longer lists as problems and event.get does not return (host not visible to the API user, event housekept): left open, counted once per event.',
      registers: [registry],
    }),
    pollNotes: new Counter({
      name: 'zgb_zabbix_poll_notes_total',
      help: 'Changes the poller found on open problems and handed on for their tickets, by reason (maintenance, maintenance_end, disabled); each change once.',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    valueHistory: new Counter({
      name: 'zgb_zabbix_value_history_total',
      help: 'Item value history fetched for new tickets (zabbix.value_history), by result (added, empty, failed: the ticket went without it).',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    configReloads: new Counter({
      name: 'zgb_config_reloads_total',
      help: 'Configuration reloads, by result (success, failure).',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
  };
  // Each thread is a V8 isolate with its own heap; the process's resident memory (zgb_process_resident_memory_bytes)
  // holds both. Registered by the main thread's set and by a processing thread's own (not by an in-process one).
  if (opts.processMetrics !== false || !isMainThread) {
    const thread = isMainThread ? 'main' : 'processing';
    new Gauge({
      name: 'zgb_thread_heap_bytes',
      help: 'V8 heap of each thread (main: HTTP intake and poller; processing: decisions and GLPI), by state: used (live objects and garbage not yet collected) and total (reserved from the system).',
      labelNames: ['thread', 'state'] as const,
      registers: [registry],
      collect() {
        const h = getHeapStatistics();
        this.set({ thread, state: 'used' }, h.used_heap_size);
        this.set({ thread, state: 'total' }, h.total_heap_size);
      },
    });
    new Counter({
      name: 'zgb_log_lines_dropped_total',
      help: "Log lines a thread dropped because standard output's reader (journald) fell too far behind or was gone; each drop is announced by a LOG_LINES_DROPPED line once it catches up. Decisions are in the state file regardless.",
      labelNames: ['thread'] as const,
      registers: [registry],
      collect() {
        this.reset();
        this.inc({ thread }, droppedStdoutLines());
      },
    });
  }
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * The exposition of several threads' metrics as one: counters and histograms
 * summed, gauges summed (each gauge is set by one thread only).
 */
export async function mergedExposition(main: Registry, others: readonly MetricsSnapshot[]): Promise<string> {
  // Metrics only the main thread has (process start time, version) must not be dropped by their cluster aggregator.
  const own = (await main.getMetricsAsJSON()).map((m) => (m.aggregator === 'omit' ? { ...m, aggregator: 'first' as const } : m));
  return AggregatorRegistry.aggregate([own, ...others]).metrics();
}
