// Per-minute history for the status page's chart: alerts received, tickets opened and GLPI requests, read
// from the counters the daemon already exports (both threads' metrics, as /metrics shows them) once a
// minute and kept in memory on the main thread. A restart starts an empty chart (the counters start at 0
// again); nothing of it is written to disk.

/** Three hours of minutes. */
export const HISTORY_MINUTES = 180;

export interface CounterTotals {
  /** zgb_alerts_received_total, outcome accepted (webhook and poller; duplicates and rejections not counted). */
  readonly alerts: number;
  /** zgb_tickets_total, operation opened. */
  readonly tickets: number;
  /** zgb_glpi_requests_total, every operation and status. */
  readonly glpiRequests: number;
}

export interface MinuteRates {
  /** Start of each minute (ms since the epoch), oldest first; the last one is the minute in progress. */
  readonly minutes: readonly number[];
  readonly alerts: readonly number[];
  readonly tickets: readonly number[];
  readonly glpiRequests: readonly number[];
}

const SAMPLE = /^(zgb_alerts_received_total|zgb_tickets_total|zgb_glpi_requests_total)(\{[^}]*\})?\s+(\S+)/;

/** The three totals from a Prometheus text exposition (unknown lines ignored). */
export function countersFromExposition(text: string): CounterTotals {
  let alerts = 0;
  let tickets = 0;
  let glpiRequests = 0;
  for (const line of text.split('\n')) {
    const m = SAMPLE.exec(line);
    if (!m) continue;
    const value = Number(m[3]);
    if (!Number.isFinite(value)) continue;
    const labels = m[2] ?? '';
    if (m[1] === 'zgb_alerts_received_total' && labels.includes('outcome="accepted"')) alerts += value;
    else if (m[1] === 'zgb_tickets_total' && labels.includes('operation="opened"')) tickets += value;
    else if (m[1] === 'zgb_glpi_requests_total') glpiRequests += value;
  }
  return { alerts, tickets, glpiRequests };
}

const ZERO: CounterTotals = { alerts: 0, tickets: 0, glpiRequests: 0 };

/**
 * A ring of per-minute increases. `sample(now, totals)` is called about once a minute (and by each page
 * view, for the minute in progress); a minute with no sample (the event loop was stuck) counts 0 and its
 * increase goes to the next minute sampled.
 */
export class RateHistory {
  readonly #minutes: number;
  /** Totals at the start of the minute in progress. */
  #base: CounterTotals | undefined;
  #current: { minute: number; totals: CounterTotals } | undefined;
  /** Closed minutes: start and increase, oldest first. */
  readonly #closed: { minute: number; d: CounterTotals }[] = [];
  #alertsSeen = 0;
  #lastAlertAt: number | undefined;

  constructor(minutes = HISTORY_MINUTES) {
    this.#minutes = minutes;
  }

  sample(now: number, totals: CounterTotals): void {
    if (totals.alerts > this.#alertsSeen) this.#lastAlertAt = now;
    this.#alertsSeen = totals.alerts;
    const minute = Math.floor(now / 60_000) * 60_000;
    if (this.#current === undefined || this.#base === undefined) {
      // The first sample: the counters started with the daemon, so what they hold happened since (this minute or so).
      this.#base = ZERO;
      this.#current = { minute, totals };
      return;
    }
    if (minute > this.#current.minute) {
      this.#closed.push({ minute: this.#current.minute, d: diff(this.#current.totals, this.#base) });
      this.#base = this.#current.totals;
      while (this.#closed.length > this.#minutes - 1) this.#closed.shift();
    }
    // Counters only grow; a smaller total would be a reset (not expected in one process): start again from it.
    if (totals.alerts < this.#base.alerts || totals.tickets < this.#base.tickets || totals.glpiRequests < this.#base.glpiRequests) this.#base = ZERO;
    this.#current = { minute: Math.max(minute, this.#current.minute), totals };
  }

  /** When a sample first saw an alert accepted since the one before (undefined: none since the daemon started). */
  get lastAlertAt(): number | undefined {
    return this.#lastAlertAt;
  }

  /** Every minute of the window, oldest first, with 0 for minutes without samples. */
  rates(now: number): MinuteRates {
    const last = Math.floor(now / 60_000) * 60_000;
    const first = last - (this.#minutes - 1) * 60_000;
    const by = new Map<number, CounterTotals>(this.#closed.map((c) => [c.minute, c.d]));
    if (this.#current && this.#base) by.set(this.#current.minute, diff(this.#current.totals, this.#base));
    const out = { minutes: [] as number[], alerts: [] as number[], tickets: [] as number[], glpiRequests: [] as number[] };
    for (let m = first; m <= last; m += 60_000) {
      const d = by.get(m) ?? ZERO;
      out.minutes.push(m);
      out.alerts.push(d.alerts);
      out.tickets.push(d.tickets);
      out.glpiRequests.push(d.glpiRequests);
    }
    return out;
  }
}

function diff(a: CounterTotals, b: CounterTotals): CounterTotals {
  return { alerts: Math.max(0, a.alerts - b.alerts), tickets: Math.max(0, a.tickets - b.tickets), glpiRequests: Math.max(0, a.glpiRequests - b.glpiRequests) };
}
