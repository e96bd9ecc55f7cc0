import type { Clock } from '../clock.js';
import type { Logger } from '../../observability/logger.js';

/** One refused request (or connection), as logged. */
export interface Rejection {
  readonly code: string;
  readonly message: string;
  readonly ip: string | undefined;
  readonly method?: string;
  /** The request's path without its query string (see pathOf). */
  readonly path?: string;
  readonly field?: string;
}

/** Arms a one-shot timer; returns its cancel. */
export type Schedule = (fn: () => void, ms: number) => () => void;

export interface RejectionLogOptions {
  /** Length of a summary window (default one minute). */
  readonly windowMs?: number;
  /** Source addresses counted one by one in a summary; the rest are counted together (default 20). */
  readonly maxSources?: number;
  readonly clock?: Clock;
  readonly schedule?: Schedule;
}

/** Longest path written to the log; an attacker's URL can be as long as the header limit. */
const MAX_PATH = 200;

/** The request's path: never its query string (a token sent as `?token=` would be logged in clear), at most 200 characters. */
export function pathOf(url: string | undefined): string {
  const path = (url ?? '').split('?', 1)[0] ?? '';
  return path.length > MAX_PATH ? `${path.slice(0, MAX_PATH)}…` : path;
}

const timer: Schedule = (fn, ms) => {
  const t = setTimeout(fn, ms);
  t.unref();
  return () => clearTimeout(t);
};

/**
 * Rejection logs an attacker cannot use to fill the disk: a code's first
 * rejection after a quiet window is logged in full; the next ones are only
 * counted, and one summary line per window gives the counts by code and by
 * source address (at most `maxSources` addresses named). Counting in the
 * metric is the caller's: every rejection, logged or not.
 */
export class RejectionLog {
  readonly #logger: Logger;
  readonly #windowMs: number;
  readonly #maxSources: number;
  readonly #clock: Clock;
  readonly #schedule: Schedule;
  /** When each code was last seen (a code is logged in full when it was quiet for a window). */
  readonly #lastSeen = new Map<string, number>();
  /** Rejections of this window not logged one by one. */
  #counts = new Map<string, number>();
  #sources = new Map<string, number>();
  #otherSources = 0;
  #cancel: (() => void) | undefined;
  #windowStart = 0;

  constructor(logger: Logger, opts: RejectionLogOptions = {}) {
    this.#logger = logger;
    this.#windowMs = opts.windowMs ?? 60_000;
    this.#maxSources = opts.maxSources ?? 20;
    this.#clock = opts.clock ?? { now: () => Date.now() };
    this.#schedule = opts.schedule ?? timer;
  }

  record(r: Rejection): void {
    const now = this.#clock.now();
    const last = this.#lastSeen.get(r.code);
    this.#lastSeen.set(r.code, now);
    if (last === undefined || now - last >= this.#windowMs) {
      const { message, ...fields } = r;
      this.#logger.warn(fields, message);
      return;
    }
    if (this.#cancel === undefined) {
      this.#windowStart = now;
      this.#cancel = this.#schedule(() => this.flush(), this.#windowMs);
    }
    this.#counts.set(r.code, (this.#counts.get(r.code) ?? 0) + 1);
    const ip = r.ip ?? 'unknown';
    const n = this.#sources.get(ip);
    if (n !== undefined) this.#sources.set(ip, n + 1);
    else if (this.#sources.size < this.#maxSources) this.#sources.set(ip, 1);
    else this.#otherSources++;
  }

  /** Write the summary of the rejections not logged one by one (at a window's end, and at stop). */
  flush(): void {
    this.#cancel?.();
    this.#cancel = undefined;
    if (this.#counts.size === 0) return;
    const counts = Object.fromEntries(this.#counts);
    const total = [...this.#counts.values()].reduce((a, b) => a + b, 0);
    const sources = Object.fromEntries(this.#sources);
    this.#logger.warn(
      { rejected: counts, total, sources, ...(this.#otherSources > 0 ? { other_sources: this.#otherSources } : {}), window_s: Math.round((this.#clock.now() - this.#windowStart) / 1000) },
      `${total} more requests rejected (counted, not logged one by one)`,
    );
    this.#counts = new Map();
    this.#sources = new Map();
    this.#otherSources = 0;
  }
}
