import type { JobSpec } from './decide.js';

/** Follow-up lines kept in one merged follow-up; the rest are counted. */
export const MAX_MERGED_LINES = 40;

export type Coalesced =
  /** Replace the queued job's payload with this one; nothing new is queued. */
  | { readonly kind: 'merge'; readonly spec: JobSpec }
  /** Drop the queued job and queue this one instead. */
  | { readonly kind: 'replace'; readonly spec: JobSpec }
  /** Queue as a new job. */
  | { readonly kind: 'append' };

const OMITTED = /^… (\d+) more line\(s\) omitted …$/;

/** Keep the first lines and the last one; count what is left out (across merges). */
function capLines(lines: readonly string[]): string[] {
  if (lines.length <= MAX_MERGED_LINES) return [...lines];
  let omitted = 0;
  const kept = lines.filter((l) => {
    const m = OMITTED.exec(l);
    if (m) omitted += Number(m[1]);
    return !m;
  });
  const head = kept.slice(0, MAX_MERGED_LINES - 2);
  omitted += kept.length - head.length - 1;
  return [...head, `… ${omitted} more line(s) omitted …`, kept[kept.length - 1] ?? ''];
}

/**
 * Storm control: a new job for an incident whose last queued job has not
 * started yet is merged into it where GLPI would see the same result, so a
 * storm costs a bounded number of calls. Pure.
 */
export function coalesce(queued: JobSpec, next: JobSpec): Coalesced {
  if (queued.type === 'followup' && next.type === 'followup' && queued.isPrivate === next.isPrivate) {
    return { kind: 'merge', spec: { ...queued, lines: capLines([...queued.lines, ...next.lines]) } };
  }
  if (queued.type === 'update_ticket' && (next.type === 'followup' || next.type === 'update_ticket')) {
    const fields = next.type === 'update_ticket' ? { urgency: next.urgency, impact: next.impact } : {};
    return { kind: 'merge', spec: { ...queued, ...fields, lines: capLines([...queued.lines, ...next.lines]) } };
  }
  if (queued.type === 'followup' && next.type === 'update_ticket' && queued.isPrivate === next.isPrivate) {
    return { kind: 'replace', spec: { ...next, lines: capLines([...queued.lines, ...next.lines]) } };
  }
  if (queued.type === 'problem_group' && next.type === 'problem_group' && queued.marker === next.marker && next.delayMs === 0) {
    // A burst of the group's members: the newer job names every member (a superset), the lines say each firing.
    // Not under a hold-down: the queued job is due when the earlier member's ends, before the newer one's ticket exists.
    return { kind: 'merge', spec: { ...next, lines: capLines([...queued.lines, ...next.lines]) } };
  }
  if (queued.type === 'solve' && next.type === 'reopen') {
    // The solution was never sent: the ticket simply stays open.
    return { kind: 'replace', spec: { type: 'followup', lines: capLines([...queued.lines, ...next.lines]), isPrivate: false } };
  }
  return { kind: 'append' };
}

/**
 * Jobs of one lane run one at a time, in order: one lane per incident for
 * GLPI, and one per incident for the write-backs to Zabbix (zabbix_ack), so
 * that a Zabbix outage never holds GLPI work back.
 */
export type LaneKind = 'glpi' | 'zabbix';

export function laneOf(spec: JobSpec): LaneKind {
  return spec.type === 'zabbix_ack' ? 'zabbix' : 'glpi';
}
