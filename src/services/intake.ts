import type { Alert } from '../core/alert.js';
import { BridgeError, StoreBusy } from '../core/errors.js';
import { deliveryKey } from '../core/fingerprint.js';
import type { Accepted, AlertIntake, Clock, Digests, InboxWriter, NewDelivery } from '../core/ports.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

/**
 * A request waiting for its commit. It keeps of its alert only what zgb_alerts_received_total counts: the alert
 * itself (with its delivery, in #deliveries) is let go once inserted, so the garbage collector's scavenges during
 * the fsync do not copy it over and over (issue 16: the main thread's GC share at saturation).
 */
interface Waiting {
  readonly source: Alert['source'];
  readonly kind: Alert['kind'];
  readonly resolve: (a: Accepted) => void;
  readonly reject: (e: unknown) => void;
}

/** How long the intake waits for a checkpoint holding the inbox before answering 503. */
const BUSY_GIVE_UP_MS = 5_000;

/**
 * Validated alert → committed delivery → delivery id. Requests arriving in
 * the same event-loop turn are committed in one transaction, and commits
 * share fsyncs (group commit): nobody gets an answer before their alert is
 * on disk, and the event loop never waits for the disk.
 */
export class Intake implements AlertIntake {
  #waiting: Waiting[] = [];
  /** The waiting requests' deliveries, in the same order as #waiting. */
  #deliveries: NewDelivery[] = [];
  #scheduled = false;
  /** A committed batch waits for its fsync: the next batch gathers meanwhile and is committed once it is done. */
  #syncing = false;
  #storeError: string | undefined;
  /** When the waiting alerts first found the inbox held by a checkpoint (0: they did not). */
  #busySince = 0;

  constructor(
    private readonly store: InboxWriter,
    private readonly clock: Clock,
    private readonly digests: Digests,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    /** Deliveries up to this id are on disk: they may be decided on; `webhooks`: how many this group commit answered. */
    private readonly onCommitted: (durableThroughId: number, webhooks: number) => void,
  ) {}

  /** Why the store last refused a commit, until the next successful one. */
  get storeError(): string | undefined {
    return this.#storeError;
  }

  accept(alert: Alert): Promise<Accepted> {
    return new Promise((resolve, reject) => {
      this.#deliveries.push({ key: deliveryKey(alert, this.digests), receivedAt: this.clock.now(), alert });
      this.#waiting.push({ source: alert.source, kind: alert.kind, resolve, reject });
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
    // One commit per fsync, as the bare ceiling does (issue 16): committing every event-loop turn while an fsync
    // ran wrote the same inbox pages into the WAL once per turn, and the next fsync had all of them to flush.
    // A request arriving now waits for this fsync either way; it is committed with the others when it ends.
    if (this.#syncing) return;
    const batch = this.#waiting;
    const deliveries = this.#deliveries;
    this.#waiting = [];
    this.#deliveries = [];
    if (batch.length === 0) return;
    let results: Accepted[] = [];
    /** A store that commits without blocking (PostgreSQL): its answers once durable, instead of syncInbox(). */
    let durable: Promise<Accepted[]> | undefined;
    try {
      if (this.store.nearlyFull(this.clock.now())) throw new Error('the state file is over 90 % of store.max_size; the rest is kept for alerts already accepted');
      if (this.store.acceptDeliveriesAsync) durable = this.store.acceptDeliveriesAsync(deliveries);
      else results = this.store.acceptDeliveries(deliveries);
      this.#busySince = 0;
    } catch (e) {
      const now = this.clock.now();
      if (e instanceof StoreBusy && (this.#busySince === 0 || now - this.#busySince < BUSY_GIVE_UP_MS)) {
        // A checkpoint restarts the inbox's log (a few milliseconds): keep taking requests, commit them together after.
        if (this.#busySince === 0) this.#busySince = now;
        this.#waiting = batch.concat(this.#waiting);
        this.#deliveries = deliveries.concat(this.#deliveries);
        this.#schedule(1);
        return;
      }
      this.#busySince = 0;
      return this.#refuse(batch, e as Error);
    }
    // Answer once the commit is on disk; requests keep arriving (and form the next batch) meanwhile (with
    // acceptDeliveriesAsync, while the commit itself is in flight too).
    this.#syncing = true;
    const synced = () => {
      this.#syncing = false;
      if (this.#waiting.length > 0) this.#schedule();
    };
    (durable ?? this.store.syncInbox()).then(
      (committed) => {
        if (committed) results = committed;
        synced();
        this.#storeError = undefined;
        // Counted once per label set and batch: prom-client hashes the labels at every inc().
        const counts = new Map<string, { source: string; kind: string; outcome: string; n: number }>();
        let through = 0;
        batch.forEach((w, i) => {
          const r = results[i] as Accepted;
          const outcome = r.duplicate ? 'duplicate' : 'accepted';
          const key = `${w.source}|${w.kind}|${outcome}`;
          const c = counts.get(key);
          if (c) c.n++;
          else counts.set(key, { source: w.source, kind: w.kind, outcome, n: 1 });
          if (r.deliveryId > through) through = r.deliveryId;
          w.resolve(r);
        });
        for (const { n, ...labels } of counts.values()) this.metrics.alertsReceived.inc(labels, n);
        this.onCommitted(through, batch.length);
      },
      (e: unknown) => {
        synced();
        this.#refuse(batch, e as Error);
      },
    );
  }

  #refuse(batch: readonly Waiting[], e: Error): void {
    const reason = e.message;
    if (this.#storeError !== reason) this.logger.error({ err: reason, code: 'BRIDGE_STORE_UNAVAILABLE' }, 'store cannot commit deliveries; answering 503 so Zabbix retries');
    this.#storeError = reason;
    const err = new BridgeError('BRIDGE_STORE_UNAVAILABLE', `the bridge cannot store the alert right now: ${reason}`);
    for (const w of batch) w.reject(err);
  }
}
