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

/** One worker thread and its connections, called synchronously. */
export class SyncPg {
  readonly #worker: Worker;
  readonly #reply: MessagePort;
  readonly #signal = new Int32Array(new SharedArrayBuffer(4));
  /** The longest a call may block: connecting, then running the statement, and a margin (the worker enforces both). */
  readonly #waitMs: number;
  #nextId = 1;
  #closed = false;

  constructor(connection: PgConnectionConfig) {
    const { port1, port2 } = new MessageChannel();
    this.#reply = port1;
    const pgPath = createRequire(import.meta.url).resolve('pg');
    this.#waitMs = (connection.connectionTimeoutMillis ?? 5000) + (connection.query_timeout ?? 30_000) + 5000;
    this.#worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { pgPath, connection, signal: this.#signal.buffer, reply: port2 },
      transferList: [port2],
    });
    // The worker never keeps the process alive by itself, and its failure surfaces as the next call's error.
    this.#worker.unref();
    this.#worker.on('error', () => undefined);
  }

  /** Run statements in order on the named connection; every result, or the first error. */
  run(conn: string, steps: readonly Statement[]): Result<Record<string, unknown>>[] {
    if (this.#closed) throw new PgUnavailable('the PostgreSQL store is closed');
    const answer = this.#call({ op: 'run', conn, steps });
    if (answer.ok) return answer.results ?? [];
    const e = answer.error ?? { message: 'unknown error' };
    if (answer.unavailable) throw new PgUnavailable(e.message);
    const step = steps[answer.failedStep ?? 0];
    throw new PgError(e.message, e.code, step?.sql ?? '');
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
      void this.#worker.terminate();
      this.#reply.close();
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
