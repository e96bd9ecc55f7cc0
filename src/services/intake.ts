import type { Alert } from '../core/alert.js';
import { BridgeError } from '../core/errors.js';
import { deliveryKey } from '../core/fingerprint.js';
import type { Clock } from '../adapters/clock.js';
import { StoreBusy, type Accepted, type NewDelivery, type SqliteStore } from '../adapters/store/sqlite-store.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

interface Waiting {
  readonly delivery: NewDelivery;
  readonly resolve: (a: Accepted) => void;
  readonly reject: (e: unknown) => void;
}

/** How long the intake keeps trying a write lock held by the processing thread before answering 503. */
const BUSY_GIVE_UP_MS = 5_000;

/**
 * Validated alert → committed delivery → delivery id. Requests arriving in
 * the same event-loop turn are committed in one transaction (group commit):
 * nobody gets an answer before their alert is on disk.
 */
export class Intake {
  #waiting: Waiting[] = [];
  #scheduled = false;
  #storeError: string | undefined;
  /** When the current batch first found the store locked (0: it did not). */
  #busySince = 0;
  #busyTries = 0;

  constructor(
    private readonly store: SqliteStore,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    private readonly onCommitted: () => void,
  ) {}

  /** Why the store last refused a commit, until the next successful one. */
  get storeError(): string | undefined {
    return this.#storeError;
  }

  accept(alert: Alert): Promise<Accepted> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ delivery: { key: deliveryKey(alert), receivedAt: this.clock.now(), alert }, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(delayMs = 0): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    if (delayMs > 0) setTimeout(() => this.#flush(), delayMs);
    else setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#scheduled = false;
    const batch = this.#waiting;
    this.#waiting = [];
    if (batch.length === 0) return;
    let results: Accepted[];
    try {
      if (this.store.nearlyFull()) throw new Error('the state file is over 90 % of store.max_size; the rest is kept for alerts already accepted');
      results = this.store.acceptDeliveries(
        batch.map((w) => w.delivery),
        { wait: false },
      );
      this.#storeError = undefined;
      this.#busySince = 0;
      this.#busyTries = 0;
    } catch (e) {
      const now = Date.now();
      if (e instanceof StoreBusy && (this.#busySince === 0 || now - this.#busySince < BUSY_GIVE_UP_MS)) {
        // The processing thread is between two statements of a short transaction: keep serving
        // requests and try again (the batch grows meanwhile), without blocking the event loop.
        if (this.#busySince === 0) this.#busySince = now;
        this.#waiting = batch.concat(this.#waiting);
        this.#schedule(++this.#busyTries > 8 ? 1 : 0);
        return;
      }
      this.store.releaseGate();
      this.#busySince = 0;
      this.#busyTries = 0;
      const reason = (e as Error).message;
      if (this.#storeError !== reason) this.logger.error({ err: reason, code: 'BRIDGE_STORE_UNAVAILABLE' }, 'store cannot commit deliveries; answering 503 so Zabbix retries');
      this.#storeError = reason;
      const err = new BridgeError('BRIDGE_STORE_UNAVAILABLE', `the bridge cannot store the alert right now: ${reason}`);
      for (const w of batch) w.reject(err);
      return;
    }
    batch.forEach((w, i) => {
      const r = results[i] as Accepted;
      const a = w.delivery.alert;
      this.metrics.alertsReceived.inc({ source: a.source, kind: a.kind, outcome: r.duplicate ? 'duplicate' : 'accepted' });
      w.resolve(r);
    });
    this.onCommitted();
  }
}
