import { startProcessing, type ProcessingSide, type ProcessingStatus } from '../composition/processing.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { MetricsSnapshot } from '../observability/metrics.js';
import type { ProcessingHandle } from './handle.js';

/**
 * The processing side in the caller's thread: the same graph as the
 * processing thread builds (composition/processing.ts), without the thread.
 * For tests that build the whole app in one process; the daemon uses
 * ProcessingThread.
 */
export class InProcessProcessing implements ProcessingHandle {
  readonly #side: ProcessingSide;
  #exitReason: string | undefined;

  constructor(config: Config, durableThrough: number, logger: Logger) {
    this.#side = startProcessing(config, { logger, durableThrough });
  }

  ready(): Promise<void> {
    return Promise.resolve();
  }

  wake(durableThrough: number): void {
    if (this.#exitReason === undefined) this.#side.wake(durableThrough);
  }

  reload(config: Config): void {
    this.#side.reload(config);
  }

  status(): Promise<ProcessingStatus | undefined> {
    return Promise.resolve(this.#exitReason === undefined ? this.#side.status() : undefined);
  }

  metrics(): Promise<MetricsSnapshot> {
    return this.#side.metrics();
  }

  async stop(timeoutMs: number): Promise<{ code: number; jobsLeft: number }> {
    const r = await this.#side.stop(timeoutMs);
    this.#exitReason = 'stopped';
    return r;
  }

  get exitReason(): string | undefined {
    return this.#exitReason;
  }
}
