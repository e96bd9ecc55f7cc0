// The synchronous bridge to PostgreSQL: the store's ports are synchronous (a transaction is a synchronous
// function, as with better-sqlite3), while every PostgreSQL driver is asynchronous. Each thread that opens a
// PostgreSQL store starts one worker thread running `pg` (worker-source.ts); a call posts its statements to
// it and blocks in Atomics.wait until the worker answers, then reads the answer with receiveMessageOnPort.
// The worker's connections belong to the calling thread alone: the thread layout stays that of the SQLite
// store (the main thread's intake, the processing thread's decisions and jobs), each with its own.
//
// Round trips are what costs (~0.3 ms each, locally): statements whose answer is not needed (writes inside
// a transaction) are held back and sent with the next statement that needs one, or with the COMMIT, so a
// transaction of writes is one hop to the worker. Multi-row work is one statement (unnest). What the caller
// need not wait for (the intake's WAL flush) is sent with start(), answered on a port of its own.
//
// Written here rather than with `synckit`: synckit runs a function module (a file the worker imports, which
// jest does not transform for a worker) and has no notion of a session (our transactions hold a connection
// across calls) nor of failing fast while the server is down; the mechanism itself is ~100 lines.

import { createRequire } from 'node:module';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { WORKER_SOURCE } from './worker-source.js';

/** What the worker's pg.Client is given (pg's ClientConfig, the part we use; PG* environment variables fill what is absent). */
export interface PgConnectionConfig {
  readonly connectionString?: string;
  readonly host?: string;
  readonly port?: number;
  readonly user?: string;
  readonly password?: string;
  readonly database?: string;
  /** TLS as libpq's sslmode (absent: none); `ca`: PEM text (absent: the system's CAs). Plain data: it crosses to the worker. */
  readonly ssl?: { readonly mode: 'require' | 'verify-ca' | 'verify-full'; readonly ca?: string };
  /** Milliseconds to establish a connection. */
  readonly connectionTimeoutMillis?: number;
  /** Server-side statement_timeout, milliseconds. */
  readonly statement_timeout?: number;
  /** Client-side: a statement not answered in this long fails (server unresponsive). */
  readonly query_timeout?: number;
  readonly application_name?: string;
}

export interface Statement {
  readonly sql: string;
  readonly params?: readonly unknown[];
}

export interface Result<R> {
  readonly rows: R[];
  readonly rowCount: number;
}

/** PostgreSQL cannot be reached (or the connection dropped): nothing was committed by this call. Retry later. */
export class PgUnavailable extends Error {
  readonly code = 'PG_UNAVAILABLE';
  constructor(message: string) {
    super(message);
    this.name = 'PgUnavailable';
  }
}

/** PostgreSQL refused a statement (constraint, syntax, timeout): its SQLSTATE in `code`. */
export class PgError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly sql: string,
  ) {
    super(message);
    this.name = 'PgError';
  }
}

interface Answer {
  readonly id: number;
  readonly ok: boolean;
  readonly unavailable?: boolean;
  readonly results?: Result<Record<string, unknown>>[];
  readonly error?: { message: string; code?: string };
  readonly failedStep?: number;
}

/**
 * A request sent without blocking (SyncPg.start): the caller goes on while the worker runs it. `done` resolves
 * once it is answered (never rejects); `result()` gives its results or throws its error, blocking until the
 * answer is in when it is read early. Requests keep their order in the worker whichever way they were sent.
 */
export class PgRun {
  #answer: Answer | undefined;
  readonly done: Promise<void>;
  #answered!: () => void;

  constructor(
    readonly steps: readonly Statement[],
    readonly settle: () => void,
  ) {
    this.done = new Promise((r) => (this.#answered = r));
  }

  /** Called once with the worker's answer. */
  answer(a: Answer): void {
    if (this.#answer) return;
    this.#answer = a;
    this.#answered();
  }

  get answered(): boolean {
    return this.#answer !== undefined;
  }

  result(): Result<Record<string, unknown>>[] {
    if (!this.#answer) this.settle();
    return outcome(this.#answer ?? { id: 0, ok: false, unavailable: true, error: { message: 'PostgreSQL did not answer' } }, this.steps);
  }
}

/** The results of an answer, or its error as PgUnavailable / PgError. */
function outcome(answer: Answer, steps: readonly Statement[]): Result<Record<string, unknown>>[] {
  if (answer.ok) return answer.results ?? [];
  const e = answer.error ?? { message: 'unknown error' };
  if (answer.unavailable) throw new PgUnavailable(e.message);
  const step = steps[answer.failedStep ?? 0];
  throw new PgError(e.message, e.code, step?.sql ?? '');
}

/** One worker thread and its connections, called synchronously. */
export class SyncPg {
  readonly #worker: Worker;
  readonly #reply: MessagePort;
  /** Answers to requests sent with start() (no wake-up through the signal: nobody waits for them). */
  readonly #asyncReply: MessagePort;
  readonly #inFlight = new Map<number, PgRun>();
  readonly #signal = new Int32Array(new SharedArrayBuffer(4));
  /** The longest a call may block: connecting, then running the statement, and a margin (the worker enforces both). */
  readonly #waitMs: number;
  #nextId = 1;
  #closed = false;

  constructor(connection: PgConnectionConfig) {
    const { port1, port2 } = new MessageChannel();
    this.#reply = port1;
    const asyncChannel = new MessageChannel();
    this.#asyncReply = asyncChannel.port1;
    const pgPath = createRequire(import.meta.url).resolve('pg');
    this.#waitMs = (connection.connectionTimeoutMillis ?? 5000) + (connection.query_timeout ?? 30_000) + 5000;
    this.#worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { pgPath, connection, signal: this.#signal.buffer, reply: port2, asyncReply: asyncChannel.port2 },
      transferList: [port2, asyncChannel.port2],
    });
    // The worker never keeps the process alive by itself, and its failure surfaces as the next call's error.
    this.#worker.unref();
    this.#worker.on('error', () => undefined);
    this.#worker.on('exit', () => this.#failInFlight('the PostgreSQL worker thread ended'));
    this.#asyncReply.on('message', (a: Answer) => this.#answered(a));
    // Kept alive only while a request sent with start() waits for its answer.
    this.#asyncReply.unref();
  }

  /**
   * Send statements without waiting (they run in order with every other request of this worker); the intake
   * commits its batch this way and parses the next requests meanwhile (store.ts, acceptDeliveries).
   */
  start(conn: string, steps: readonly Statement[]): PgRun {
    if (this.#closed) throw new PgUnavailable('the PostgreSQL store is closed');
    const id = this.#nextId++;
    const run = new PgRun(steps, () => this.settle());
    if (this.#inFlight.size === 0) this.#asyncReply.ref();
    this.#inFlight.set(id, run);
    this.#worker.postMessage({ op: 'run', conn, steps, id, async: true });
    return run;
  }

  /** Block until every request sent with start() so far is answered (the worker answers in order: a no-op behind them). */
  settle(): void {
    if (this.#inFlight.size === 0) return;
    try {
      this.#call({ op: 'barrier' });
    } finally {
      // Answers posted before the barrier's are already in the port (one sender, in order).
      for (let m = receiveMessageOnPort(this.#asyncReply); m !== undefined; m = receiveMessageOnPort(this.#asyncReply)) this.#answered(m.message as Answer);
    }
    if (this.#inFlight.size > 0) this.#failInFlight(`PostgreSQL did not answer within ${this.#waitMs} ms`);
  }

  #answered(a: Answer): void {
    const run = this.#inFlight.get(a.id);
    if (!run) return;
    this.#inFlight.delete(a.id);
    if (this.#inFlight.size === 0) this.#asyncReply.unref();
    run.answer(a);
  }

  #failInFlight(message: string): void {
    for (const [id] of this.#inFlight) this.#answered({ id, ok: false, unavailable: true, error: { message } });
  }

  /** Run statements in order on the named connection; every result, or the first error. */
  run(conn: string, steps: readonly Statement[]): Result<Record<string, unknown>>[] {
    if (this.#closed) throw new PgUnavailable('the PostgreSQL store is closed');
    return outcome(this.#call({ op: 'run', conn, steps }), steps);
  }

  /** Close a connection (rolling back whatever it had open). */
  drop(conn: string): void {
    if (!this.#closed) this.#call({ op: 'drop', conn });
  }

  close(): void {
    if (this.#closed) return;
    try {
      this.#call({ op: 'close' });
    } finally {
      this.#closed = true;
      for (let m = receiveMessageOnPort(this.#asyncReply); m !== undefined; m = receiveMessageOnPort(this.#asyncReply)) this.#answered(m.message as Answer);
      this.#failInFlight('the PostgreSQL store is closed');
      void this.#worker.terminate();
      this.#reply.close();
      this.#asyncReply.close();
    }
  }

  #call(request: Record<string, unknown>): Answer {
    const id = this.#nextId++;
    Atomics.store(this.#signal, 0, 0);
    this.#worker.postMessage({ ...request, id });
    const deadline = Date.now() + this.#waitMs;
    for (;;) {
      // Answers to calls that timed out earlier are read and dropped here; the port is read again after each
      // reset of the signal, so an answer posted around the reset is never slept past.
      for (let m = receiveMessageOnPort(this.#reply); m !== undefined; m = receiveMessageOnPort(this.#reply)) {
        const answer = m.message as Answer;
        if (answer.id === id) return answer;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new PgUnavailable(`PostgreSQL did not answer within ${this.#waitMs} ms`);
      Atomics.wait(this.#signal, 0, 0, left);
      Atomics.store(this.#signal, 0, 0);
    }
  }
}
