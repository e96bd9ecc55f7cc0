import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { CursorState } from '../../src/adapters/store/sqlite/poll-cursor.js';
import { PollCursor, SqliteStore } from '../../src/adapters/store/sqlite/index.js';
import { ROOT } from '../helpers/fixtures.js';

const stores: SqliteStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});

function open(file: string): SqliteStore {
  // The daemon's main thread: the intake's connection, which never waits for a lock by itself.
  const s = new SqliteStore(file, { inboxCheckpoint: 'external' });
  stores.push(s);
  return s;
}

const STATE: CursorState = { scope: '{"host_groups":[],"min_severity":"not_classified"}', baselineAt: 1_800_000_000_000, baselineMode: 'skip', baselineCount: 2 };

describe('PollCursor', () => {
  it('has no state on a new store, and keeps the first sweep and its baseline across a restart', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'zgb-cursor-')), 'bridge.db');
    const first = new PollCursor(open(file));
    expect(first.state()).toBeUndefined();
    expect(first.baseline().size).toBe(0);
    await first.record(STATE, ['50', '51'], STATE.baselineAt);
    stores.pop()!.close();

    const again = new PollCursor(open(file));
    expect(again.state()).toEqual(STATE);
    expect([...again.baseline()].sort()).toEqual(['50', '51']);
    again.forget(['50']);
    expect([...again.baseline()]).toEqual(['51']);
  });

  it('a write waits for another connection holding the inbox (a checkpoint) instead of failing with SQLITE_BUSY', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'zgb-cursor-')), 'bridge.db');
    const store = open(file);
    const cursor = new PollCursor(store);
    // Another thread takes the inbox's write lock and gives it back a moment later, as the processing thread's checkpoint does.
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const Database = require(workerData.module);
       const db = new Database(workerData.file);
       db.exec('BEGIN IMMEDIATE');
       parentPort.postMessage('held');
       Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
       db.exec('COMMIT');
       db.close();`,
      { eval: true, workerData: { file: store.inboxFile, module: join(ROOT, 'node_modules', 'better-sqlite3') } },
    );
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    await new Promise((resolve) => worker.once('message', resolve));
    await cursor.record(STATE, ['50'], STATE.baselineAt);
    expect(cursor.state()).toEqual(STATE);
    // The intake's connection is left as it was: no waiting on its own commits.
    expect(store.inbox.pragma('busy_timeout', { simple: true })).toBe(0);
    await exited;
  });
});
