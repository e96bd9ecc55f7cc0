import type { CursorState, PollMemory } from '../../../core/ports.js';

/** The poller's memory in memory (the SQLite one is PollCursor, in the inbox file): same semantics, nothing durable. */
export class MemoryPollMemory implements PollMemory {
  #state: string | undefined;
  readonly #baseline = new Set<string>();

  state(): CursorState | undefined {
    return this.#state === undefined ? undefined : (JSON.parse(this.#state) as CursorState);
  }

  baseline(): Set<string> {
    return new Set(this.#baseline);
  }

  /** The sweep's state replaces the one recorded; its baseline events join those already kept. */
  record(state: CursorState, baseline: readonly string[], _now: number): Promise<void> {
    for (const id of baseline) this.#baseline.add(id);
    this.#state = JSON.stringify(state);
    return Promise.resolve();
  }

  forget(eventIds: readonly string[]): void {
    for (const id of eventIds) this.#baseline.delete(id);
  }
}
