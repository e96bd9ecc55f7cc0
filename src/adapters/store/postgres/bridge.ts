// The synchronous bridge to PostgreSQL: the store's ports are synchronous (a transaction is a synchronous
// function, as with better-sqlite3), while every PostgreSQL driver is asynchronous. Each thread that opens a
// PostgreSQL store starts one worker thread running `pg` (worker-source.ts); a call posts its statements to
// it and blocks in Atomics.wait until the worker answers, then reads the answer with receiveMessageOnPort.
// The worker's connections belong to the calling thread alone: the thread layout stays that of the SQLite
// store (the main thread's intake, the processing thread's decisions and jobs), each with its own.
//
// Round trips are what costs (~0.3 ms each, locally): statements whose answer is not needed (writes inside
// a transaction) are held back and sent with the next statement that needs one, or with the COMMIT, so a
// transaction of writes is one hop to the worker. Multi-row work is one statement (unnest).
//
// What the calling thread must not wait for is sent with runAsync(): the intake's commit of a batch (the
// webhook thread parses the next requests and forms the next batch meanwhile; the 202s go out once the
// promise resolves) and the node's heartbeat. It is answered on a port of its own, with no wake-up.
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

/** The results of an answer, or its error as PgUnavailable / PgError. */
function outcome(answer: Answer, steps: readonly Statement[]): Result<Record<string, unknown>>[] {
  if (answer.ok) return answer.results ?? [];
  const e = answer.error ?? { message: 'unknown error' };
  if (answer.unavailable) throw new PgUnavailable(e.message);
  const step = steps[answer.failedStep ?? 0];
  throw new PgError(e.message, e.code, step?.sql ?? '');
}

interface InFlight {
  readonly steps: readonly Statement[];
  readonly resolve: (r: Result<Record<string, unknown>>[]) => void;
  readonly reject: (e: Error) => void;
}

/** One worker thread and its connections, called synchronously (run) or not (runAsync). */
export class SyncPg {
  readonly #worker: Worker;
  readonly #reply: MessagePort;
  /** Answers to runAsync() requests, delivered by the event loop. */
  readonly #asyncReply: MessagePort;
  readonly #inFlight = new Map<number, InFlight>();
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
    this.#asyncReply.on('message', (a: Answer) => this.#settle(a));
    // Keeps the process alive only while a runAsync() request waits for its answer.
    this.#asyncReply.unref();
  }

  /** Run statements in order on the named connection; every result, or the first error. */
  run(conn: string, steps: readonly Statement[]): Result<Record<string, unknown>>[] {
    if (this.#closed) throw new PgUnavailable('the PostgreSQL store is closed');
    return outcome(this.#call({ op: 'run', conn, steps }), steps);
  }

  /**
   * run() without blocking: the statements run in order with the other requests on the same connection
   * (never inside a transaction another call holds open there: use a connection of its own), and the promise
   * settles with their results or the first error once the worker answers. The worker bounds the wait
   * (connection and query timeouts); a worker that ends fails what is in flight.
   */
  runAsync(conn: string, steps: readonly Statement[]): Promise<Result<Record<string, unknown>>[]> {
    if (this.#closed) return Promise.reject(new PgUnavailable('the PostgreSQL store is closed'));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      if (this.#inFlight.size === 0) this.#asyncReply.ref();
      this.#inFlight.set(id, { steps, resolve, reject });
      this.#worker.postMessage({ op: 'run', conn, steps, id, async: true });
    });
  }

  #settle(a: Answer): void {
    const f = this.#inFlight.get(a.id);
    if (!f) return;
    this.#inFlight.delete(a.id);
    if (this.#inFlight.size === 0) this.#asyncReply.unref();
    try {
      f.resolve(outcome(a, f.steps));
    } catch (e) {
      f.reject(e as Error);
    }
  }

  #failInFlight(message: string): void {
    for (const id of [...this.#inFlight.keys()]) this.#settle({ id, ok: false, unavailable: true, error: { message } });
  }

  /** Close a connection (rolling back whatever it had open). */
  drop(conn: string): void {
    if (!this.#closed) this.#call({ op: 'drop', conn });
  }

  close(): void {
    if (this.#closed) return;
    try {
      // The worker closes once every connection's queue is done: runAsync() answers are in the port by then.
      this.#call({ op: 'close' });
    } finally {
      this.#closed = true;
      for (let m = receiveMessageOnPort(this.#asyncReply); m !== undefined; m = receiveMessageOnPort(this.#asyncReply)) this.#settle(m.message as Answer);
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
