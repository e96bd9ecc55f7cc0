import { Worker } from 'node:worker_threads';
import type { Config } from '../config/schema.js';
import { toTransferable } from '../config/thread-transfer.js';
import type { Logger } from '../observability/logger.js';
import type { MetricsSnapshot } from '../observability/metrics.js';
import type { LogSink, ProcessingHandle } from './handle.js';
import { WakeSignal, type FromProcessing, type ProcessingInit, type ProcessingStatus, type ToProcessing } from './messages.js';

/** A question to the thread (metrics, status) not answered by then gets the fallback answer. */
const ANSWER_TIMEOUT_MS = 2_000;

export type { LogSink };

/**
 * The processing thread's V8 heap (issue 16: the footprint). Its young generation is what a storm churns
 * through (parsed alerts, rendered jobs, GLPI answers): V8's default lets it grow to tens of megabytes before
 * collecting; 4 MB keeps the thread's resident memory low for a few more (cheap) scavenges (8 MB until the
 * storm's peak RSS was brought under 130 MB; the node options in the unit do the rest, README "Performance"). The old
 * generation holds the incident cache and a batch of up to 512 alerts (a 64 KiB body each at worst): no cap
 * below what a hostile batch needs.
 */
const PROCESSING_HEAP = { maxYoungGenerationSizeMb: 4 } as const;

/**
 * The main thread's handle on the processing thread (see
 * processing-worker.ts): wakes it after commits, forwards reloads, collects
 * its metrics, status and log lines, and stops it.
 */
export class ProcessingThread implements ProcessingHandle {
  readonly #worker: Worker;
  readonly #ready: Promise<void>;
  /** Questions waiting for their answer, by id. */
  readonly #waiting = new Map<number, (answer: unknown) => void>();
  #nextId = 1;
  /** How far the inbox is on disk, shared with the thread: a 'wake' message only when it sleeps. */
  readonly #wake = new WakeSignal();
  /** Set by stop(): resolves its promise (a thread that dies while stopping resolves it with code 1). */
  #stopped: ((r: { code: number; jobsLeft: number }) => void) | undefined;
  #exitReason: string | undefined;

  constructor(
    config: Config,
    durableThrough: number,
    /** 'stdout': the thread writes its lines to file descriptor 1 itself (one write per line, as the main thread does). */
    private readonly sink: LogSink | 'stdout',
    private readonly logger: Logger,
    /** Called once if the thread dies on its own (a bug or a fatal error): the daemon must stop. */
    onDeath: (reason: string) => void,
    /** Beside this code both in dist/src/threads and in the bundle, dist/bridge (scripts/bundle.mjs names it so). */
    script: URL = new URL('./processing-worker.js', import.meta.url),
  ) {
    this.#wake.advance(durableThrough);
    const init: ProcessingInit = { config: toTransferable(config), durableThrough, logToStdout: sink === 'stdout', wake: this.#wake.buffer };
    this.#worker = new Worker(script, {
      workerData: init,
      resourceLimits: PROCESSING_HEAP,
      stdout: false,
      stderr: false,
    });
    let started: () => void = () => undefined;
    let failed: (e: Error) => void = () => undefined;
    this.#ready = new Promise((resolve, reject) => {
      started = resolve;
      failed = reject;
    });
    this.#worker.on('message', (m: FromProcessing) => {
      switch (m.t) {
        case 'ready':
          started();
          break;
        case 'log':
          if (this.sink !== 'stdout') this.sink.write(m.text);
          break;
        case 'status':
          this.#answer(m.id, m.status);
          break;
        case 'metrics':
          this.#answer(m.id, m.snapshot);
          break;
        case 'stopped': {
          const resolve = this.#stopped;
          this.#stopped = () => undefined; // the exit that follows is expected
          resolve?.({ code: m.code, jobsLeft: m.jobsLeft });
          break;
        }
      }
    });
    this.#worker.on('error', (e) => {
      this.#exitReason = e.message;
      this.logger.fatal({ err: e.message, stack: e.stack, code: 'BRIDGE_PROCESSING_FAILED' }, 'the processing thread failed');
      failed(e);
    });
    this.#worker.on('exit', (code) => {
      for (const resolve of this.#waiting.values()) resolve(undefined);
      this.#waiting.clear();
      const reason = this.#exitReason ?? `exited with code ${code}`;
      this.#exitReason = reason;
      if (this.#stopped) return this.#stopped({ code: 1, jobsLeft: 0 });
      failed(new Error(`the processing thread ${reason}`));
      onDeath(reason);
    });
  }

  /** Resolves once the thread has opened the store and started; rejects if it could not. */
  ready(): Promise<void> {
    return this.#ready;
  }

  #answer(id: number, answer: unknown): void {
    this.#waiting.get(id)?.(answer);
    this.#waiting.delete(id);
  }

  /** Ask the thread; undefined when it is gone or does not answer in time. */
  #ask<T>(question: (id: number) => ToProcessing): Promise<T | undefined> {
    if (this.#exitReason !== undefined) return Promise.resolve(undefined);
    const id = this.#nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.#answer(id, undefined), ANSWER_TIMEOUT_MS);
      this.#waiting.set(id, (answer) => {
        clearTimeout(timer);
        resolve(answer as T | undefined);
      });
      this.#send(question(id));
    });
  }

  /** The GLPI session as the thread sees it; undefined if it does not answer. */
  status(): Promise<ProcessingStatus | undefined> {
    return this.#ask<ProcessingStatus>((id) => ({ t: 'status', id }));
  }

  /** Why the thread is gone (undefined while it runs). */
  get exitReason(): string | undefined {
    return this.#exitReason;
  }

  #send(m: ToProcessing): void {
    if (this.#exitReason === undefined) this.#worker.postMessage(m);
  }

  /** New deliveries are on disk, up to this id (`webhooks` answered by this commit): a message only when the thread sleeps (see WakeSignal). */
  wake(durableThrough: number, webhooks = 0): void {
    if (this.#wake.advance(durableThrough, webhooks)) this.#send({ t: 'wake' });
  }

  reload(config: Config): void {
    this.#send({ t: 'reload', config: toTransferable(config) });
  }

  /** The thread's metrics; empty if it does not answer in time. */
  async metrics(): Promise<MetricsSnapshot> {
    return (await this.#ask<MetricsSnapshot>((id) => ({ t: 'metrics', id }))) ?? [];
  }

  /**
   * Decide on what is left in the inbox, let GLPI jobs in flight finish (up
   * to timeoutMs), close the GLPI session and the thread's store connection.
   */
  async stop(timeoutMs: number): Promise<{ code: number; jobsLeft: number }> {
    if (this.#exitReason !== undefined) throw new Error(`the processing thread ${this.#exitReason}`);
    const done = new Promise<{ code: number; jobsLeft: number }>((resolve) => (this.#stopped = resolve));
    this.#send({ t: 'stop', timeoutMs });
    const result = await done;
    await this.#worker.terminate();
    return result;
  }
}
