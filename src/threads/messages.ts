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
}

export type { ProcessingStatus };

/** Main thread → processing thread. */
export type ToProcessing =
  | { readonly t: 'wake'; readonly durableThrough: number }
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
