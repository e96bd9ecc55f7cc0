import type { DecisionRecord } from '../../core/ports.js';

/** A decision_log row as both SQL stores read it (jobs already decoded: JSON text in SQLite, jsonb in PostgreSQL). */
export interface DecisionRow {
  readonly at: number;
  readonly delivery_id: number | null;
  readonly event_id: string;
  readonly kind: string;
  readonly host: string;
  readonly fingerprint: string;
  readonly category: string;
  readonly severity: string;
  readonly action: string;
  readonly reason: string;
  readonly jobs: string[];
}

export function decisionRecord(r: DecisionRow): DecisionRecord {
  return {
    at: r.at,
    ...(r.delivery_id !== null ? { deliveryId: r.delivery_id } : {}),
    eventId: r.event_id,
    kind: r.kind,
    host: r.host,
    fingerprint: r.fingerprint,
    category: r.category,
    severity: r.severity,
    action: r.action,
    reason: r.reason,
    jobs: r.jobs,
  };
}
