/**
 * LimitedQuery (sqlite/database.ts): the store's queries with a LIMIT chosen per call (the dispatcher's ready
 * jobs, the decisions' inbox read) run with the limit written into their SQL, because SQLite compiles a statement
 * again at every run when its LIMIT is a bound parameter. What callers rely on: exactly the first `limit` rows, in
 * the query's order, for any limit; and a bounded number of statements however many different limits are asked.
 */
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import Database from 'better-sqlite3';
import { LimitedQuery } from '../../src/adapters/store/sqlite/database.js';

let db: Database.Database;

beforeEach(() => {
  db = new Database(':memory:');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, grp INTEGER NOT NULL)');
  const insert = db.prepare('INSERT INTO t (id, grp) VALUES (?, ?)');
  db.transaction(() => {
    for (let id = 1; id <= 300; id++) insert.run(id, id % 3);
  })();
});

afterEach(() => {
  db.close();
});

describe('LimitedQuery', () => {
  it('returns the same rows as the query with a bound LIMIT, for every limit', () => {
    const sql = 'SELECT id FROM t WHERE grp = ? AND id > ? ORDER BY id DESC LIMIT ?';
    const limited = new LimitedQuery<[number, number], { id: number }>(db, sql);
    const bound = db.prepare<[number, number, number], { id: number }>(sql);
    for (let limit = 1; limit <= 120; limit++) {
      expect(limited.all(limit, 1, 10)).toEqual(bound.all(1, 10, limit));
    }
    // A limit above the rows there are: all of them.
    expect(limited.all(5000, 2, 0)).toHaveLength(100);
  });

  it('returns nothing for a limit below one, as LIMIT 0 would', () => {
    const limited = new LimitedQuery<[], { id: number }>(db, 'SELECT id FROM t ORDER BY id LIMIT ?');
    expect(limited.all(0)).toEqual([]);
    expect(limited.all(-3)).toEqual([]);
    expect(limited.all(Number.NaN)).toEqual([]);
  });

  it('prepares one statement per power of two, not one per limit asked', () => {
    const prepare = jest.spyOn(db, 'prepare');
    const limited = new LimitedQuery<[], { id: number }>(db, 'SELECT id FROM t ORDER BY id LIMIT ?');
    for (let limit = 1; limit <= 300; limit++) expect(limited.all(limit)).toHaveLength(limit);
    // 1, 2, 4, ..., 512: ten statements for three hundred limits, and none more when they are asked again.
    expect(prepare).toHaveBeenCalledTimes(10);
    for (let limit = 300; limit >= 1; limit--) limited.all(limit);
    expect(prepare).toHaveBeenCalledTimes(10);
  });

  it('refuses SQL that does not end with LIMIT ?, saying which', () => {
    expect(() => new LimitedQuery(db, 'SELECT id FROM t LIMIT 5')).toThrow(/must end with "LIMIT \?": SELECT id FROM t LIMIT 5/);
  });
});
