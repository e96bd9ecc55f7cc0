import { describe, expect, it } from '@jest/globals';
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrate, type Migration } from '../../src/adapters/store/sqlite/database.js';
import { SqliteStore } from '../../src/adapters/store/sqlite/index.js';
import { INBOX_MIGRATIONS, STATE_MIGRATIONS } from '../../src/adapters/store/sqlite/migrations/index.js';
import { ROOT } from '../helpers/fixtures.js';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe('the store migrations', () => {
  it('are listed in the order of their file numbers, each numbered as the schema version it makes', () => {
    const files = readdirSync(join(ROOT, 'src', 'adapters', 'store', 'sqlite', 'migrations'))
      .filter((f) => f !== 'index.ts' && f.endsWith('.ts'))
      .map((f) => f.slice(0, -3))
      .sort();
    const listed = [...INBOX_MIGRATIONS, ...STATE_MIGRATIONS];
    expect(listed.map((m) => m.name).sort()).toEqual(files);
    for (const [prefix, list] of [['inbox', INBOX_MIGRATIONS], ['state', STATE_MIGRATIONS]] as const) {
      expect(list.map((m) => m.name)).toEqual(files.filter((f) => f.startsWith(`${prefix}-`)));
      list.forEach((m, i) => {
        expect(m.version).toBe(i + 1);
        expect(m.name.startsWith(`${prefix}-${String(i + 1).padStart(3, '0')}-`)).toBe(true);
      });
    }
  });

  it('never change once shipped: a file of an older version migrates as it always did (a change of schema is a new migration)', () => {
    // sha256 of each migration's SQL as shipped; only the state's second step reads the inbox file.
    expect([...STATE_MIGRATIONS, ...INBOX_MIGRATIONS].map((m) => [m.name, m.withInbox === true, sha256(m.sql)])).toEqual([
      ['state-001-initial', false, '09a8af5a0ff5c7fefd27e7f1ef3c37ca19682f03447c25f2a2ed7e49677dc8bb'],
      ['state-002-inbox', true, 'db7e9afea2c7aa46a0d5ae991081b51c0b802df6d5c83d84de1c696fd6ba929b'],
      ['state-003-event-index', false, '5b80f83351712f554c38bab2fad183afc5734f28b71eac4c15cfe90bb46b85aa'],
      ['state-004-incident-key', false, '5fd26573f19aef37c409a3eeae2e51c1cf75081b8fc5c59e407ae04cae4e6cc5'],
      ['state-005-cycle', false, '95438f5c1142dc3d6908b61b069d58d3e6cda6306ad8fa28e1adec30e5b10af5'],
      ['state-006-decision-log', false, '96d29b9efb00fc37f87c8fad0d3e796d1947c9b5f62aaccc7f05272169837675'],
      ['inbox-001-initial', false, 'f6ff14788248a0a7df13f292e66d269f7457a524e52b7fbe514b02023bc5a3e1'],
    ]);
  });

  it('a new store is at the last version of each file', () => {
    const store = new SqliteStore(join(mkdtempSync(join(tmpdir(), 'zgb-migrations-')), 'bridge.db'));
    try {
      expect(store.db.pragma('user_version', { simple: true })).toBe(STATE_MIGRATIONS.length);
      expect(store.inbox.pragma('user_version', { simple: true })).toBe(INBOX_MIGRATIONS.length);
    } finally {
      store.close();
    }
  });

  it('runs only the steps a file has not had, and refuses a list out of order', () => {
    const db = new Database(':memory:');
    const steps: Migration[] = [
      { version: 1, name: 'x-001-a', sql: 'CREATE TABLE a (v INTEGER);' },
      { version: 2, name: 'x-002-b', sql: 'INSERT INTO a VALUES (2);' },
    ];
    migrate(db, steps.slice(0, 1), ':memory:');
    migrate(db, steps, ':memory:');
    migrate(db, steps, ':memory:');
    expect(db.prepare('SELECT v FROM a').pluck().all()).toEqual([2]);
    expect(db.pragma('user_version', { simple: true })).toBe(2);
    expect(() => migrate(db, [steps[1]!, steps[0]!], ':memory:')).toThrow(/x-002-b is listed as step 1 but numbered 2/);
    db.close();
  });
});
