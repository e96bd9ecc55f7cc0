/**
 * The SQLite inbox's size check (SqliteInboxWriter.nearlyFull, store.max_size): the undecided backlog's size is
 * a sum over every undecided row, so it is re-read at most once a second — by the time its caller (the intake,
 * with its Clock) passes in, not the machine's clock: the store takes time from its caller like the rest.
 * The backlog comes from a stub reader so its size is set by the test; the files are real (their used bytes are
 * read at every call).
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStoreFiles, type StoreFiles } from '../../src/adapters/store/sqlite/database.js';
import { SqliteInboxWriter, type SqliteInboxReader } from '../../src/adapters/store/sqlite/inbox.js';

const MAX = 8 * 1024 * 1024;
const T = 1_800_000_000_000;

let dir: string;
let files: StoreFiles;
let writer: SqliteInboxWriter;
/** The undecided backlog's bytes as the reader would sum them, and how many times it was asked. */
let backlog: number;
let reads: number;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'zgb-nearly-full-'));
  files = openStoreFiles(join(dir, 'bridge.db'), { maxSizeBytes: MAX });
  backlog = 0;
  reads = 0;
  const reader = {
    undecided: () => {
      reads++;
      return { n: backlog > 0 ? 1 : 0, bytes: backlog };
    },
  } as unknown as SqliteInboxReader;
  writer = new SqliteInboxWriter(files, { decided: { processedThrough: () => 0, decidedOnDisk: () => 0 }, reader, openIncidentEvents: () => [] });
});

afterEach(() => {
  writer.close();
  files.state.close();
  files.inbox.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('nearlyFull paces the backlog read by the time it is given', () => {
  it('re-reads the backlog only once a second has passed by the caller\'s clock, however little the machine\'s moved', () => {
    expect(writer.nearlyFull(T)).toBe(false);
    expect(reads).toBe(1);

    // A backlog that, kept room for, fills the cap (twice its size > 90 %): not seen before its interval.
    backlog = MAX;
    expect(writer.nearlyFull(T + 999)).toBe(false);
    expect(reads).toBe(1);
    expect(writer.nearlyFull(T + 1_000)).toBe(true);
    expect(reads).toBe(2);

    // Decided meanwhile: still counted until the next read, then gone.
    backlog = 0;
    expect(writer.nearlyFull(T + 1_500)).toBe(true);
    expect(reads).toBe(2);
    expect(writer.nearlyFull(T + 2_000)).toBe(false);
    expect(reads).toBe(3);
  });
});
