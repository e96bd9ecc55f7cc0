import { coalesce, laneOf } from '../core/coalesce.js';
import type { JobSpec } from '../core/decide.js';
import type { ActionQueue, IncidentRef } from '../core/ports.js';

/**
 * Storm control: a job joins the last job of its lane when that one has not
 * been tried yet and belongs to the same ticket cycle (follow-ups merge into
 * one, a solution replaces a pending follow-up: core/coalesce.ts decides);
 * otherwise it is queued behind it. Returns the id of the job that carries it.
 * Call it inside the caller's state transaction.
 */
export function queueJob(
  queue: Pick<ActionQueue, 'lastQueued' | 'enqueue' | 'replaceJobSpec'>,
  incident: IncidentRef,
  cycle: number,
  spec: JobSpec,
  runAt: number,
  now: number,
  deliveryId?: number,
): number {
  const last = queue.lastQueued(incident, laneOf(spec));
  if (last && last.status === 'pending' && last.attempts === 0 && last.cycle === cycle) {
    const c = coalesce(last.spec, spec);
    if (c.kind === 'merge' || c.kind === 'replace') {
      queue.replaceJobSpec(last.id, c.spec, now);
      return last.id;
    }
  }
  return queue.enqueue(incident, cycle, spec, runAt, now, deliveryId);
}
