import { writeSync } from 'node:fs';
import { pino, type Logger, type DestinationStream } from 'pino';
import type { ErrorCode } from '../core/errors.js';

/** Paths pino blanks out wherever they appear, in addition to the Secret type printing as <secret>. */
export const REDACT_PATHS = [
  'token',
  '*.token',
  'app_token',
  '*.app_token',
  'user_token',
  '*.user_token',
  'password',
  '*.password',
  'req.headers.authorization',
  'headers.authorization',
  'headers["app-token"]',
  'headers["session-token"]',
  'headers.Authorization',
  'headers["App-Token"]',
  'headers["Session-Token"]',
  'session_token',
];

/**
 * Largest write of several lines: a pipe (systemd's journal stream, a shell's pipe) takes a write of up to
 * PIPE_BUF (4096 on Linux) bytes whole, so the other thread's lines never land inside one of ours.
 */
const BATCH_BYTES = 4096;
/**
 * What one thread keeps for a reader that is behind (journald under load, a stopped pipe) before it drops lines:
 * some ten seconds of a storm's decision lines. Beyond it new lines are dropped, counted, and announced by one line
 * once the reader catches up; the decisions themselves are in the state file (`explain`).
 */
const MAX_PENDING_BYTES = 4 * 1024 * 1024;
/** How soon lines the reader refused are offered again. */
const RETRY_MS = 10;
/** At exit, how long the pending lines may still wait for the reader. */
const EXIT_WAIT_MS = 1_000;
/** Sleep between tries at exit (nothing else runs then). */
const EXIT_SLEEP = new Int32Array(new SharedArrayBuffer(4));

/** The line announcing dropped lines, as the thread's logger would write it (createLogger, below). */
function droppedNotice(dropped: number): string {
  let line = '';
  createLogger('warn', { write: (l: string) => void (line = l) }).warn(
    { code: 'LOG_LINES_DROPPED' satisfies ErrorCode, dropped },
    `the log's reader fell behind: ${dropped} log lines were dropped (zgb_log_lines_dropped_total); decisions are kept in the state file (explain)`,
  );
  return line;
}

/**
 * Log lines to a file descriptor, written once per event-loop turn instead of once per line: under a storm
 * the processing thread logs a decision per alert, and a write system call per line (and a wake-up of the
 * reader per line) was a tenth of its CPU (issue 16). Lines are whole in every write, a write is at most
 * BATCH_BYTES (a longer line goes alone), and what is pending is written before the thread or process exits;
 * only a kill -9 can lose the lines of the turn it interrupts.
 *
 * Standard output is non-blocking once the processing thread exists (Node opens its side of the worker's stdio
 * so, and the flag belongs to the descriptor both threads share). A reader that is behind answers EAGAIN: the
 * lines wait here, in order, and are offered again RETRY_MS later, so neither thread ever waits for the reader
 * (on the main thread that would hold every webhook). Past `maxPendingBytes` new lines are dropped and counted.
 */
export class BatchedLines implements DestinationStream {
  #lines: string[] = [];
  #bytes = 0;
  #scheduled = false;
  /** What the reader refused, oldest first, with how many lines each holds: written before anything newer. */
  #pending: { buf: Buffer; lines: number }[] = [];
  #pendingBytes = 0;
  #retry: NodeJS.Timeout | undefined;
  /** The queue reached its cap: newer lines are dropped until it is empty again. */
  #full = false;
  /** Lines dropped since the last notice, and in all. */
  #unannounced = 0;
  #dropped = 0;

  constructor(
    private readonly fd = 1,
    private readonly maxPendingBytes = MAX_PENDING_BYTES,
  ) {
    process.once('exit', () => this.close());
  }

  /** Lines dropped because the reader was too far behind, or gone (EPIPE). */
  get droppedLines(): number {
    return this.#dropped;
  }

  /** Bytes waiting for the reader. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  write(line: string): void {
    this.#lines.push(line);
    this.#bytes += line.length;
    if (this.#bytes >= BATCH_BYTES * 4) this.flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Write what is pending now, in whole lines, in writes of at most BATCH_BYTES (what the reader refuses waits). */
  flush(): void {
    this.#scheduled = false;
    const lines = this.#lines;
    if (lines.length === 0) return;
    this.#lines = [];
    this.#bytes = 0;
    let chunk = '';
    let chunkBytes = 0;
    let chunkLines = 0;
    for (const line of lines) {
      const bytes = Buffer.byteLength(line);
      if (chunk !== '' && chunkBytes + bytes > BATCH_BYTES) {
        this.#send(Buffer.from(chunk), chunkLines);
        chunk = '';
        chunkBytes = 0;
        chunkLines = 0;
      }
      chunk += line;
      chunkBytes += bytes;
      chunkLines++;
    }
    if (chunk !== '') this.#send(Buffer.from(chunk), chunkLines);
  }

  /** Before the thread or process ends: everything written, waiting for the reader up to EXIT_WAIT_MS. */
  close(): void {
    this.flush();
    clearTimeout(this.#retry);
    this.#retry = undefined;
    const deadline = Date.now() + EXIT_WAIT_MS;
    while (this.#drain() && Date.now() < deadline) Atomics.wait(EXIT_SLEEP, 0, 0, 1);
    this.#dropPending();
  }

  #send(buf: Buffer, lines: number): void {
    if (this.#pending.length > 0) return this.#keep(buf, lines);
    let written: number;
    try {
      written = writeSync(this.fd, buf);
    } catch (e) {
      // Anything but a reader that is behind (the journal's stream gone: EPIPE) drops the lines rather than the bridge.
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return this.#keep(buf, lines);
      return this.#drop(lines);
    }
    // A socket may take part of a write: the rest goes next, whatever the queue holds (half a line is worse than a long queue).
    if (written < buf.length) this.#keep(buf.subarray(written), lines, true);
  }

  #keep(buf: Buffer, lines: number, restOfLine = false): void {
    // Once full, everything newer is dropped until the reader has caught up: one gap, announced where it is.
    if (!restOfLine && (this.#full || this.#pendingBytes + buf.length > this.maxPendingBytes)) {
      this.#full = true;
      return this.#drop(lines);
    }
    this.#pending.push({ buf, lines });
    this.#pendingBytes += buf.length;
    this.#retryLater();
  }

  #retryLater(): void {
    if (this.#retry) return;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (this.#drain()) this.#retryLater();
    }, RETRY_MS);
    // The lines are no reason to keep the process alive: close() writes them at exit.
    this.#retry.unref();
  }

  #drop(lines: number): void {
    this.#dropped += lines;
    this.#unannounced += lines;
  }

  #dropPending(): void {
    for (const p of this.#pending) this.#drop(p.lines);
    this.#pending = [];
    this.#pendingBytes = 0;
  }

  /** Write what waits, oldest first, until the reader refuses; then announce any drop. True while something still waits. */
  #drain(): boolean {
    while (this.#pending.length > 0) {
      const head = this.#pending[0] as { buf: Buffer; lines: number };
      let written: number;
      try {
        written = writeSync(this.fd, head.buf);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return true;
        this.#dropPending();
        return false;
      }
      this.#pendingBytes -= written;
      if (written < head.buf.length) head.buf = head.buf.subarray(written);
      else this.#pending.shift();
    }
    this.#full = false;
    if (this.#unannounced > 0) {
      const dropped = this.#unannounced;
      this.#unannounced = 0;
      this.#send(Buffer.from(droppedNotice(dropped)), 1);
    }
    return this.#pending.length > 0;
  }
}

let stdoutLines: BatchedLines | undefined;
/** Standard output as a batched line destination, one per thread. */
export function batchedStdout(): BatchedLines {
  stdoutLines ??= new BatchedLines(1);
  return stdoutLines;
}

/** Log lines this thread dropped on standard output (zgb_log_lines_dropped_total). */
export function droppedStdoutLines(): number {
  return stdoutLines?.droppedLines ?? 0;
}

export function createLogger(level: string, destination: DestinationStream = batchedStdout()): Logger {
  return pino(
    {
      level,
      base: { service: 'zabbix-glpi-bridge' },
      redact: { paths: REDACT_PATHS, censor: '<secret>' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

export type { Logger };
