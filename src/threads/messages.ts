import type { TransferableConfig } from '../config/thread-transfer.js';
import type { ProcessingStatus } from '../composition/processing.js';
import type { MetricsSnapshot } from '../observability/metrics.js';

/** What the processing thread is started with. */
export interface ProcessingInit {
  readonly config: TransferableConfig;
  /** Deliveries up to this id are on disk (all of them at start); later ones are announced by 'wake'. */
  readonly durableThrough: number;
  /** Write log lines to file descriptor 1 directly (the daemon), or send them to the main thread's logger stream (demo, tests). */
  readonly logToStdout: boolean;
  /** How far the inbox is on disk, shared with the main thread (see WakeSignal). */
  readonly wake: SharedArrayBuffer;
}

/**
 * How the main thread tells the processing thread that deliveries are on disk without a message per commit
 * (issue 16: a message per group commit was a wake-up of the thread per alert at storm rates). The main thread
 * stores the durable position after each commit and posts a 'wake' message only when the processing thread
 * said it sleeps; while deliveries keep coming the processing thread reads the position itself every
 * WAKE_POLL_MS, and says it sleeps once a read found nothing new.
 */
export class WakeSignal {
  /** [0]: deliveries up to this id are on disk. */
  readonly #through: BigInt64Array;
  /** [0]: 1 while the processing thread waits for a 'wake' message. */
  readonly #asleep: Int32Array;
  /** [0]: the most webhooks one group commit answered since the processing thread last looked (see intakeBusy). */
  readonly #biggestCommit: Int32Array;
  /** Processing thread: the position intakeBusy() saw last, when, and what it said (see intakeBusy). */
  #busySeen = 0;
  #busyAt = Number.NEGATIVE_INFINITY;
  #busy = false;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(16)) {
    this.#through = new BigInt64Array(buffer, 0, 1);
    this.#asleep = new Int32Array(buffer, 8, 1);
    this.#biggestCommit = new Int32Array(buffer, 12, 1);
  }

  /**
   * Main thread: deliveries up to `through` are on disk, `webhooks` of them answered by this group commit;
   * true when the processing thread must be sent a 'wake'.
   */
  advance(through: number, webhooks = 0): boolean {
    if (BigInt(through) > Atomics.load(this.#through, 0)) Atomics.store(this.#through, 0, BigInt(through));
    // The largest since the last look: under a saturating storm commits alternate big and small (a closed loop's
    // batches), and the last one alone said "not busy" every few looks, each time letting a batch of decisions run.
    for (let seen = Atomics.load(this.#biggestCommit, 0); webhooks > seen; ) {
      const was = Atomics.compareExchange(this.#biggestCommit, 0, seen, webhooks);
      if (was === seen) break;
      seen = was;
    }
    return Atomics.exchange(this.#asleep, 0, 0) === 1;
  }

  /**
   * Processing thread: whether Zabbix is queueing on the intake right now: a group commit since the last look
   * answered at least INTAKE_BUSY_COMMIT webhooks (they arrive faster than an fsync takes) and the inbox moved
   * (a big commit long ago says nothing). Looked at once per BUSY_LOOK_MS (performance.now()),
   * whoever asks (the processor and the dispatcher).
   */
  intakeBusy(now = performance.now()): boolean {
    if (now - this.#busyAt < BUSY_LOOK_MS) return this.#busy;
    const through = this.through();
    const moved = through !== this.#busySeen;
    this.#busySeen = through;
    this.#busyAt = now;
    const biggest = Atomics.exchange(this.#biggestCommit, 0, 0);
    this.#busy = moved && biggest >= INTAKE_BUSY_COMMIT;
    return this.#busy;
  }

  /** Processing thread: how far the inbox is on disk. */
  through(): number {
    return Number(Atomics.load(this.#through, 0));
  }

  /**
   * Processing thread: nothing new since `seen`; sleep until a 'wake' message. Returns false when a delivery
   * came meanwhile and no message will (the caller reads on), true when it may sleep.
   */
  sleep(seen: number): boolean {
    Atomics.store(this.#asleep, 0, 1);
    if (this.through() <= seen) return true;
    // The main thread stored a newer position: if it has not taken the flag yet, take it back and read on;
    // if it has, its message is on the way.
    return Atomics.exchange(this.#asleep, 0, 0) === 0;
  }
}

/**
 * Webhooks answered by one group commit from which the intake counts as saturated: at this machine's 1-3 ms
 * per fdatasync, 8 webhooks a commit are several thousand alerts a second (at 1,000/s a commit answers 1-3;
 * in a 167/s storm, 1).
 */
export const INTAKE_BUSY_COMMIT = 8;
/** How often intakeBusy() looks again; under a saturating storm the inbox moves every few milliseconds. */
const BUSY_LOOK_MS = 20;

/** While deliveries keep coming, the processing thread reads how far the inbox is on disk this often. */
export const WAKE_POLL_MS = 20;

export type { ProcessingStatus };

/** Main thread → processing thread. */
export type ToProcessing =
  | { readonly t: 'wake' }
  | { readonly t: 'reload'; readonly config: TransferableConfig }
  | { readonly t: 'metrics'; readonly id: number }
  | { readonly t: 'status'; readonly id: number }
  | { readonly t: 'stop'; readonly timeoutMs: number };

/** Processing thread → main thread. */
export type FromProcessing =
  | { readonly t: 'ready' }
  | { readonly t: 'log'; readonly text: string }
  | { readonly t: 'status'; readonly id: number; readonly status: ProcessingStatus }
  | { readonly t: 'metrics'; readonly id: number; readonly snapshot: MetricsSnapshot }
  | { readonly t: 'stopped'; readonly code: number; readonly jobsLeft: number };
