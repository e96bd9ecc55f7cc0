import type { DecisionRecord, OpenIncidentView } from '../../core/ports.js';

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

/** What an incident's stored state says of itself, as every store keeps it (JSON text, jsonb, or in memory). */
export type IncidentFacts = Omit<OpenIncidentView, 'ticketId'> & { readonly ticketId?: number };

/** An open incident as the status page lists it: its ticket is the state's own, else the one its ticket row holds. */
export function openIncidentView(s: IncidentFacts, ticketRow: number | null | undefined): OpenIncidentView {
  const ticketId = s.ticketId ?? ticketRow ?? undefined;
  return {
    fingerprint: s.fingerprint,
    cycle: s.cycle,
    category: s.category,
    severity: s.severity,
    occurrences: s.occurrences,
    openedAt: s.openedAt,
    ...(ticketId !== undefined ? { ticketId } : {}),
  };
}
