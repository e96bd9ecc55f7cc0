import type { Config } from '../config/schema.js';
import type { MetricsSnapshot } from '../observability/metrics.js';
import type { ProcessingStatus } from '../composition/processing.js';

/** Where the main thread's logger writes; the processing side's log lines go there too. */
export interface LogSink {
  write(text: string): unknown;
}

/**
 * The main thread's handle on the processing side: in its own thread
 * (ProcessingThread, the daemon) or in this one (InProcessProcessing, tests).
 */
export interface ProcessingHandle {
  /** Resolves once the side has opened the store and started; rejects if it could not. */
  ready(): Promise<void>;
  /** New deliveries are on disk, up to this id; `webhooks`: how many the group commit answered (the intake's pressure). */
  wake(durableThrough: number, webhooks?: number): void;
  reload(config: Config): void;
  /** Its GLPI session; undefined when it does not answer. */
  status(): Promise<ProcessingStatus | undefined>;
  /** Its metrics; empty when it does not answer in time. */
  metrics(): Promise<MetricsSnapshot>;
  /** Decide on what is left, let jobs in flight finish (up to timeoutMs), close its GLPI session and store connection. */
  stop(timeoutMs: number): Promise<{ code: number; jobsLeft: number }>;
  /** Why it is gone (undefined while it runs). */
  readonly exitReason: string | undefined;
}
