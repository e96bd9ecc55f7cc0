import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { BatchedLines } from '../../src/observability/logger.js';

/**
 * BatchedLines on a non-blocking pipe whose reader is behind (what standard output is under journald once the
 * processing thread exists): the writer never waits, keeps what the reader refuses up to its cap, and drops, counts
 * and announces the rest.
 */

/** A FIFO held open for both ends, non-blocking: writes succeed until its buffer (64 KiB) is full, then EAGAIN. */
function stalledPipe(): { writeFd: number; readFd: number; close(): void } {
  const path = join(mkdtempSync(join(tmpdir(), 'zgb-fifo-')), 'out');
  execFileSync('mkfifo', [path]);
  const writeFd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
  const readFd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  return {
    writeFd,
    readFd,
    close: () => {
      closeSync(writeFd);
      closeSync(readFd);
    },
  };
}

/** Read the pipe until the writer has nothing pending and the pipe is empty. */
async function readAll(fd: number, out: BatchedLines): Promise<string> {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(65_536);
  for (let idle = 0; idle < 3; ) {
    let n = 0;
    try {
      n = readSync(fd, buf);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
    }
    if (n > 0) {
      chunks.push(Buffer.from(buf.subarray(0, n)));
      idle = 0;
    } else {
      idle = out.pendingBytes === 0 ? idle + 1 : 0;
      await new Promise((r) => setTimeout(r, 15));
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}

const lines = (n: number) => Array.from({ length: n }, (_, i) => `${JSON.stringify({ n: i, msg: 'decision', text: 'x'.repeat(900) })}\n`);

describe('log lines on a pipe whose reader is behind', () => {
  it('keeps what the reader refuses, without waiting, and writes it all in order once the reader reads', async () => {
    const pipe = stalledPipe();
    try {
      const out = new BatchedLines(pipe.writeFd);
      const sent = lines(300); // about 280 KiB: four times what the pipe holds
      for (const l of sent) out.write(l);
      out.flush();
      expect(out.pendingBytes).toBeGreaterThan(100_000);
      expect(out.droppedLines).toBe(0);
      // Newer lines queue behind the older ones, not past them.
      out.write(`${JSON.stringify({ n: 300, msg: 'last' })}\n`);
      out.flush();
      expect(await readAll(pipe.readFd, out)).toBe([...sent, `${JSON.stringify({ n: 300, msg: 'last' })}\n`].join(''));
      expect(out.droppedLines).toBe(0);
    } finally {
      pipe.close();
    }
  });

  it('past its cap drops the newest lines, counts them, and says so in one line once the reader catches up', async () => {
    const pipe = stalledPipe();
    try {
      const out = new BatchedLines(pipe.writeFd, 100_000);
      const sent = lines(400);
      for (const l of sent) out.write(l);
      out.flush();
      expect(out.pendingBytes).toBeLessThanOrEqual(100_000);
      const dropped = out.droppedLines;
      expect(dropped).toBeGreaterThan(0);
      const got = (await readAll(pipe.readFd, out)).split('\n').filter((l) => l !== '');
      const notice = JSON.parse(got.pop()!) as { level: string; code: string; dropped: number; msg: string };
      expect(notice).toMatchObject({ level: 'warn', code: 'LOG_LINES_DROPPED', dropped });
      expect(notice.msg).toContain(`${dropped} log lines were dropped`);
      // What was kept is the oldest lines, whole and in order.
      expect(got.map((l) => `${l}\n`)).toEqual(sent.slice(0, 400 - dropped));
    } finally {
      pipe.close();
    }
  });

  it('drops and counts lines when the reader is gone, instead of throwing into the logger', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'zgb-fifo-')), 'out');
    execFileSync('mkfifo', [path]);
    const readFd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const writeFd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
    closeSync(readFd); // EPIPE from now on (Node ignores SIGPIPE)
    try {
      const out = new BatchedLines(writeFd);
      for (const l of lines(3)) out.write(l);
      expect(() => out.flush()).not.toThrow();
      expect(out.droppedLines).toBe(3);
      expect(out.pendingBytes).toBe(0);
    } finally {
      closeSync(writeFd);
    }
  });
});
