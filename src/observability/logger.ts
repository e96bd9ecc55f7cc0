import { writeSync } from 'node:fs';
import { pino, type Logger, type DestinationStream } from 'pino';

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
/** Sleep before retrying a write the pipe refused (EAGAIN: the reader is behind). */
const RETRY_SLEEP = new Int32Array(new SharedArrayBuffer(4));

/**
 * Log lines to a file descriptor, written once per event-loop turn instead of once per line: under a storm
 * the processing thread logs a decision per alert, and a write system call per line (and a wake-up of the
 * reader per line) was a tenth of its CPU (issue 16). Lines are whole in every write, a write is at most
 * BATCH_BYTES (a longer line goes alone), and what is pending is written before the thread or process exits;
 * only a kill -9 can lose the lines of the turn it interrupts.
 */
export class BatchedLines implements DestinationStream {
  #lines: string[] = [];
  #bytes = 0;
  #scheduled = false;

  constructor(private readonly fd = 1) {
    process.once('exit', () => this.flush());
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

  /** Write what is pending now, in whole lines, in writes of at most BATCH_BYTES. */
  flush(): void {
    this.#scheduled = false;
    const lines = this.#lines;
    if (lines.length === 0) return;
    this.#lines = [];
    this.#bytes = 0;
    let chunk = '';
    let chunkBytes = 0;
    for (const line of lines) {
      const bytes = Buffer.byteLength(line);
      if (chunk !== '' && chunkBytes + bytes > BATCH_BYTES) {
        this.#writeAll(chunk);
        chunk = '';
        chunkBytes = 0;
      }
      chunk += line;
      chunkBytes += bytes;
    }
    if (chunk !== '') this.#writeAll(chunk);
  }

  #writeAll(text: string): void {
    let buf = Buffer.from(text);
    for (let tries = 0; buf.length > 0; ) {
      try {
        buf = buf.subarray(writeSync(this.fd, buf));
      } catch (e) {
        // A non-blocking pipe whose reader is behind: wait a little and retry, as pino's own destination does.
        // Anything else (the journal's stream gone: EPIPE) drops the lines rather than the bridge.
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN' || ++tries > 1000) return;
        Atomics.wait(RETRY_SLEEP, 0, 0, 1);
      }
    }
  }
}

let stdoutLines: BatchedLines | undefined;
/** Standard output as a batched line destination, one per thread. */
export function batchedStdout(): BatchedLines {
  stdoutLines ??= new BatchedLines(1);
  return stdoutLines;
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
