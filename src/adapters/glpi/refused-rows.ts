import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';

/**
 * A row of a GLPI answer the bridge could not use. GLPI's answers are external input: a row whose field is
 * missing or not what GLPI documents is left out, never guessed at, but not without a trace (SPEC: a clear
 * error saying what was wrong and where). One bad row never fails the rows around it.
 */
export interface RefusedRow {
  /** The ticket's id, when the row's own id could be read. */
  readonly ticketId?: number;
  /** The field that was wrong (GLPI's name for it). */
  readonly field: string;
  /** What the field held (shortened for the log). */
  readonly got: unknown;
}

/** Rows listed in the warning; the count says how many more there were. */
const LOGGED_ROWS = 20;
const GOT_CHARS = 80;

function shortened(v: unknown): string {
  if (v === undefined) return 'missing';
  const text = JSON.stringify(v) ?? String(v);
  return text.length > GOT_CHARS ? `${text.slice(0, GOT_CHARS)}…` : text;
}

/**
 * One warning for an answer's refused rows (so once per read-back sweep, however many rows), each with its
 * ticket id and the field that was wrong, and each row counted in zgb_glpi_rows_refused_total by field.
 */
export function reportRefusedRows(logger: Logger, metrics: Metrics | undefined, operation: string, refused: readonly RefusedRow[], what: string): void {
  if (refused.length === 0) return;
  for (const r of refused) metrics?.glpiRowsRefused.inc({ operation, field: r.field });
  logger.warn(
    {
      code: 'GLPI_ROWS_REFUSED',
      operation,
      refused: refused.length,
      rows: refused.slice(0, LOGGED_ROWS).map((r) => ({ ticket_id: r.ticketId ?? null, field: r.field, got: shortened(r.got) })),
    },
    `GLPI answer: ${refused.length} row(s) left out because a field was missing or not understood (${what})`,
  );
}
