/**
 * The SQLite inbox's size check (SqliteInboxWriter.nearlyFull, store.max_size): room is kept for deciding on the
 * undecided alerts (twice their size). Their size is kept as the intake commits them, not summed over the inbox
 * at every look (that read every undecided row on the intake's thread); only the alerts the inbox held before the
 * writer started are summed from it, at most once a second by the caller's clock, until they are decided.
 * The files are real (their used bytes are read at every call); the decided position is set by the test.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStoreFiles, type StoreFiles } from '../../src/adapters/store/sqlite/database.js';
import { SqliteInboxReader, SqliteInboxWriter } from '../../src/adapters/store/sqlite/inbox.js';
import { cpuAlert } from '../helpers/fixtures.js';

const MAX = 8 * 1024 * 1024;
const T = 1_800_000_000_000;

let dir: string;
let files: StoreFiles;
let writers: SqliteInboxWriter[];
/** The decided position the writers see. */
let decided: number;
/** The older backlog's ranges the writer summed from the inbox. */
let reads: [number, number][];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'zgb-nearly-full-'));
  files = openStoreFiles(join(dir, 'bridge.db'), { maxSizeBytes: MAX });
  decided = 0;
  reads = [];
  writers = [];
});

afterEach(() => {
  for (const w of writers) w.close();
  files.state.close();
  files.inbox.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A writer on the real inbox, as the intake opens one: its reader counts the sums it is asked for. */
function writer(): SqliteInboxWriter {
  const position = { processedThrough: () => decided, decidedOnDisk: () => decided };
  const reader = new SqliteInboxReader(files.inbox, position);
  const sum = reader.alertBytes.bind(reader);
  reader.alertBytes = (after, through) => {
    reads.push([after, through]);
    return sum(after, through);
  };
  const w = new SqliteInboxWriter(files, { decided: position, reader, openIncidentEvents: () => [] });
  writers.push(w);
  return w;
}

/** `n` deliveries of about 100 KB each (a long trigger name), committed by `w`; their ids. */
function commit(w: SqliteInboxWriter, n: number, from: number): number[] {
  const items = Array.from({ length: n }, (_, i) => ({ key: `k${from + i}`, receivedAt: T, alert: cpuAlert('problem', { eventId: String(from + i), eventName: 'x'.repeat(100_000) }) }));
  return w.acceptDeliveries(items).map((a) => a.deliveryId);
}

describe('nearlyFull keeps room for the undecided alerts', () => {
  it('counts what this writer committed until it is decided, without reading the inbox', () => {
    const w = writer();
    expect(w.nearlyFull(T)).toBe(false);
    // 2.5 MB undecided: the files hold it once, the reserve twice more: over 90 % of 8 MB.
    const ids = [...commit(w, 13, 0), ...commit(w, 12, 100)];
    expect(w.nearlyFull(T)).toBe(true);
    // The first commit decided: 1.2 MB left, kept room for twice: under 90 %.
    decided = ids[12]!;
    expect(w.nearlyFull(T)).toBe(false);
    // A redelivery adds nothing.
    commit(w, 1, 0);
    expect(w.nearlyFull(T)).toBe(false);
    expect(reads).toEqual([]);
  });

  it('a commit decided in part still counts whole (the reserve errs on the safe side)', () => {
    const w = writer();
    const ids = commit(w, 25, 0);
    decided = ids[0]!;
    expect(w.nearlyFull(T)).toBe(true);
    decided = ids[24]!;
    expect(w.nearlyFull(T)).toBe(false);
  });

  it('sums the alerts the inbox held before it started, at most once a second by the caller\'s clock, until they are decided', () => {
    const ids = commit(writer(), 25, 0); // a run before this one left 2.5 MB undecided
    const w = writer();
    expect(w.nearlyFull(T)).toBe(true);
    expect(reads).toEqual([[0, ids[24]]]);
    // Decided meanwhile: still counted until the next read (however little the machine's clock moved), then gone.
    decided = ids[12]!;
    expect(w.nearlyFull(T + 999)).toBe(true);
    expect(reads).toHaveLength(1);
    expect(w.nearlyFull(T + 1_000)).toBe(false);
    expect(reads).toEqual([[0, ids[24]], [ids[12], ids[24]]]);
    // Past them, the inbox is not read again.
    decided = ids[24]!;
    expect(w.nearlyFull(T + 5_000)).toBe(false);
    expect(reads).toHaveLength(2);
  });
});
