import type { JobSpec, JobType } from '../../core/decide.js';
import type { Job, JobStatus } from '../../core/ports.js';

/**
 * A jobs row as both SQL stores read it, its payload decoded: JSON text in SQLite (`string`), jsonb in
 * PostgreSQL (`JobSpec`).
 */
export interface JobRow<Payload extends string | JobSpec> {
  readonly id: number;
  readonly fp_key: string;
  readonly lane: string;
  /** From the incident row (NULL once the incident is forgotten). */
  readonly fingerprint: string | null;
  readonly seq: number;
  readonly type: string;
  readonly payload: Payload;
  readonly status: string;
  readonly attempts: number;
  readonly next_attempt_at: number;
  readonly last_error: string | null;
  readonly delivery_id: number | null;
  readonly created_at: number;
}

/** The lane a job runs in: one per incident and kind (core/coalesce.ts), jobs in it one at a time, in order. */
export function laneName(r: { readonly fp_key: string; readonly lane: string }): string {
  return `${r.lane}:${r.fp_key}`;
}

export function toJob(r: JobRow<string | JobSpec>): Job {
  return {
    id: r.id,
    fingerprint: r.fingerprint ?? `(forgotten incident ${r.fp_key})`,
    key: r.fp_key,
    lane: laneName(r),
    cycle: r.seq,
    type: r.type as JobType,
    spec: typeof r.payload === 'string' ? (JSON.parse(r.payload) as JobSpec) : r.payload,
    status: r.status as JobStatus,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    ...(r.last_error !== null ? { lastError: r.last_error } : {}),
    ...(r.delivery_id !== null ? { deliveryId: r.delivery_id } : {}),
    createdAt: r.created_at,
  };
}
