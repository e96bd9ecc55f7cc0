import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { inboxFileOf, SqliteStore } from '../../src/adapters/store/sqlite-store.js';
import type { Alert } from '../../src/core/alert.js';
import type { JobSpec } from '../../src/core/decide.js';

const alert: Alert = { source: 'webhook', eventSource: '0', eventId: '1', kind: 'problem', severity: 'high', eventName: 'x', host: 'h', hostName: 'h', triggerName: 't', tags: [] };
const fu = (line: string): JobSpec => ({ type: 'followup', lines: [line], isPrivate: false });
const T = 1_800_000_000_000;

let file: string;
let store: SqliteStore;
beforeEach(() => {
  file = join(mkdtempSync(join(tmpdir(), 'zgb-store-')), 'bridge.db');
  store = new SqliteStore(file);
});
afterEach(() => store.close());

describe('SqliteStore', () => {
  it('commits deliveries once per key and answers a redelivery with the first id, across reopen', () => {
    const [a, b] = store.acceptDeliveries([
      { key: 'k1', receivedAt: T, alert },
      { key: 'k2', receivedAt: T, alert },
    ]);
    store.close();
    store = new SqliteStore(file);
    const [again] = store.acceptDeliveries([{ key: 'k1', receivedAt: T + 1, alert }]);
    expect(a).toEqual({ deliveryId: 1, duplicate: false });
    expect(b).toEqual({ deliveryId: 2, duplicate: false });
    expect(again).toEqual({ deliveryId: 1, duplicate: true });
    expect(store.unprocessedDeliveries(10).map((d) => d.id)).toEqual([1, 2]);
  });

  it('runs one job per incident at a time, in order, and incidents in parallel', () => {
    store.enqueue('A', 1, { type: 'reopen', lines: ['a1'] }, T, T);
    store.enqueue('A', 1, fu('a2'), T, T);
    store.enqueue('B', 1, { type: 'reopen', lines: ['b1'] }, T, T);
    const first = store.claimReady(T, 10, new Set());
    expect(first.map((j) => [j.fingerprint, j.id, j.attempts])).toEqual([
      ['A', 1, 1],
      ['B', 3, 1],
    ]);
    expect(store.claimReady(T, 10, new Set())).toEqual([]);
    store.completeJob(1, T);
    expect(store.claimReady(T, 10, new Set()).map((j) => j.id)).toEqual([2]);
  });

  it('does not hand out jobs before their time or of a busy incident', () => {
    store.enqueue('A', 1, { type: 'reopen', lines: ['x'] }, T + 1000, T);
    store.enqueue('B', 1, { type: 'reopen', lines: ['x'] }, T, T);
    expect(store.claimReady(T, 10, new Set(['B']))).toEqual([]);
    expect(store.nextDueAt()).toBe(T);
    expect(store.claimReady(T + 1000, 10, new Set()).map((j) => j.fingerprint)).toEqual(['B', 'A']);
  });

  it('merges a follow-up into a queued one that has not started', () => {
    const id1 = store.enqueue('A', 1, fu('one'), T, T);
    const id2 = store.enqueue('A', 1, fu('two'), T, T);
    expect(id2).toBe(id1);
    expect(store.job(id1)?.spec).toEqual({ type: 'followup', lines: ['one', 'two'], isPrivate: false });
    store.claimReady(T, 1, new Set());
    const id3 = store.enqueue('A', 1, fu('three'), T, T);
    expect(id3).not.toBe(id1);
  });

  it('cancels a held-back create and every job queued behind it in that cycle (hold-down), only while pending', () => {
    const create: JobSpec = { type: 'create_ticket', delayMs: 0, ticket: { name: 'n', content: 'c', marker: 'm', urgency: 3, impact: 3, type: 1, itilcategories_id: 0, entities_id: 0, requesttypes_id: 0, groups_id_assign: 0 } };
    store.enqueue('A', 1, create, T + 30_000, T);
    store.enqueue('A', 1, fu('acknowledged'), T, T);
    store.enqueue('A', 2, fu('other cycle'), T, T);
    expect(store.cancelCycle('A', 1, T + 1)).toBe(2);
    expect(store.claimReady(T + 60_000, 10, new Set()).map((j) => j.seq)).toEqual([2]);
    store.enqueue('B', 1, create, T, T);
    store.claimReady(T, 10, new Set());
    expect(store.cancelCycle('B', 1, T + 1)).toBe(0);
  });

  it('holds a held-back create until every delivery received before its hold-down ended is decided', () => {
    const create: JobSpec = { type: 'create_ticket', delayMs: 30_000, ticket: { name: 'n', content: 'c', marker: 'm', urgency: 3, impact: 3, type: 1, itilcategories_id: 0, entities_id: 0, requesttypes_id: 0, groups_id_assign: 0 } };
    store.enqueue('A', 1, create, T + 30_000, T);
    expect(store.claimReady(T + 60_000, 10, new Set(), T + 29_999)).toEqual([]);
    expect(store.claimReady(T + 60_000, 10, new Set(), T + 30_000)).toHaveLength(1);
  });

  it('forgets ended incidents after the window with their tickets and events, never open ones or ones with jobs left', () => {
    const inc = (fingerprint: string, status: 'open' | 'solved') => ({ fingerprint, seq: 1, status, marker: 'm', category: 'cpu', severity: 'high' as const, urgency: 4, impact: 4, openCount: status === 'open' ? 1 : 0, occurrences: 1, openedAt: T });
    store.putIncident(inc('old-solved', 'solved'), T - 100_000);
    store.putIncident(inc('old-open', 'open'), T - 100_000);
    store.putIncident(inc('old-solved-with-dead-job', 'solved'), T - 100_000);
    store.putIncident(inc('recent-solved', 'solved'), T);
    store.putTicket('old-solved', 1, 41, 'm', T - 100_000);
    store.putEvents('old-solved', [{ eventId: '500', seq: 1, open: false }]);
    const id = store.enqueue('old-solved-with-dead-job', 1, fu('x'), T, T);
    store.buryJob(id, 'GLPI_PERMANENT', T);
    expect(store.pruneIncidents(T - 50_000).sort()).toEqual(['old-solved']);
    expect(store.getIncident('old-solved')).toBeUndefined();
    expect(store.ticketId('old-solved', 1)).toBeUndefined();
    expect(store.eventInfo('500')).toBeUndefined();
    expect(['old-open', 'old-solved-with-dead-job', 'recent-solved'].map((f) => store.getIncident(f)?.fingerprint)).toEqual(['old-open', 'old-solved-with-dead-job', 'recent-solved']);
  });

  it('indexes events per incident cycle: open ones are what the poller checks, a new cycle can take them over', () => {
    store.putEvents('A', [{ eventId: '1', seq: 1, open: true }, { eventId: '2', seq: 1, open: true }, { eventId: '3', seq: 1, open: false }]);
    expect(store.openIncidentEvents().sort()).toEqual(['1', '2']);
    expect(store.latestOpenEvent('A', 1)).toBe('2');
    store.moveOpenEvents('A', 1, 2);
    expect(store.eventInfo('1')).toEqual({ fingerprint: 'A', seq: 2, open: true });
    expect(store.eventInfo('3')).toEqual({ fingerprint: 'A', seq: 1, open: false });
  });

  it('puts jobs left running by a crash back in the queue with their attempt counted', () => {
    store.enqueue('A', 1, fu('x'), T, T);
    store.claimReady(T, 10, new Set());
    store.close();
    store = new SqliteStore(file);
    expect(store.requeueRunning(T + 1)).toBe(1);
    const [job] = store.claimReady(T + 1, 10, new Set());
    expect(job?.attempts).toBe(2);
  });

  it('after an unclean stop, queued creates are treated as possibly sent; after a clean one they are not', () => {
    const create: JobSpec = { type: 'create_ticket', delayMs: 0, ticket: { name: 'n', content: 'c', marker: 'm', urgency: 3, impact: 3, type: 1, itilcategories_id: 0, entities_id: 0, requesttypes_id: 0, groups_id_assign: 0 } };
    expect(store.beginRun(T)).toBe(false);
    store.enqueue('A', 1, create, T, T);
    store.close();
    store = new SqliteStore(file);
    expect(store.beginRun(T)).toBe(true);
    expect(store.jobs('pending')[0]?.attempts).toBe(1);
    store.endRun();
    store.enqueue('B', 1, create, T, T);
    store.close();
    store = new SqliteStore(file);
    expect(store.beginRun(T)).toBe(false);
    expect(store.jobs('pending').map((j) => [j.fingerprint, j.attempts])).toEqual([
      ['A', 1],
      ['B', 0],
    ]);
  });

  it('prunes old decided deliveries but keeps the problems of open incidents and anything not decided yet', () => {
    store.acceptDeliveries([
      { key: 'zbx:0:7:problem', receivedAt: T - 10_000, alert }, // incident closed since
      { key: 'zbx:0:8:problem', receivedAt: T - 10_000, alert }, // incident still open
      { key: 'zbx:0:8:update:ab', receivedAt: T - 10_000, alert },
      { key: 'zbx:0:9:problem', receivedAt: T, alert }, // recent
      { key: 'zbx:0:10:problem', receivedAt: T, alert }, // not decided yet
    ]);
    store.markProcessed(4);
    store.syncDecided();
    store.putIncident({ fingerprint: 'fp-open', seq: 1, status: 'open', marker: 'm', category: 'cpu', severity: 'high', urgency: 4, impact: 4, openCount: 1, occurrences: 1, openedAt: T }, T);
    store.putEvents('fp-open', [{ eventId: '8', seq: 1, open: true }]);
    expect(store.pruneDeliveries(T, 5_000)).toBe(2);
    expect(['zbx:0:7:problem', 'zbx:0:8:problem', 'zbx:0:8:update:ab', 'zbx:0:9:problem', 'zbx:0:10:problem'].map((k) => store.hasDelivery(k))).toEqual([false, true, false, true, true]);
    expect(store.unprocessedDeliveries(10).map((d) => d.id)).toEqual([5]);
  });

  it('counts the retention from the first alert still to decide: a recovery tombstone outlives a decision backlog', () => {
    store.acceptDeliveries([
      { key: 'zbx:0:7:recovery', receivedAt: T, alert }, // decided (nothing to recover yet): the tombstone
      { key: 'zbx:0:7:problem', receivedAt: T + 10, alert }, // delivered late, not decided yet
    ]);
    store.markProcessed(1);
    store.syncDecided();
    expect(store.pruneDeliveries(T + 40 * 86_400_000, 7 * 86_400_000)).toBe(0);
    expect(store.hasDelivery('zbx:0:7:recovery')).toBe(true);
    store.markProcessed(2);
    store.syncDecided();
    expect(store.pruneDeliveries(T + 40 * 86_400_000, 7 * 86_400_000)).toBe(2);
  });

  it('prunes the inbox only behind a decided position on disk: a power cut that takes decisions back finds their alerts again', () => {
    const DAY = 86_400_000;
    store.acceptDeliveries([1, 2, 3].map((i) => ({ key: `zbx:0:${i}:problem`, receivedAt: T, alert })));
    store.markProcessed(1);
    store.beginRun(T); // fsynced (synchronous=FULL, like a job claim): the disk holds the decisions through delivery 1
    const disk = { db: readFileSync(file), wal: readFileSync(`${file}-wal`) };
    store.markProcessed(3); // decisions on 2 and 3: committed, not fsynced ('crash')
    // The intake's housekeeping, 40 days on (a backlog decided late, or a clock step): all three are past retention,
    // but 2 and 3 are decided only in memory and the page cache (and the retention counts from the first of them).
    expect(store.pruneDeliveries(T + 40 * DAY, 7 * DAY)).toBe(0);
    // Power cut: the state file goes back to its last fsync; the inbox keeps what it had (its later commits were fsynced).
    store.close();
    writeFileSync(file, disk.db);
    writeFileSync(`${file}-wal`, disk.wal);
    if (existsSync(`${file}-shm`)) unlinkSync(`${file}-shm`);
    store = new SqliteStore(file);
    expect(store.processedThrough()).toBe(1);
    // The decisions on 2 and 3 are taken again: their alerts must still be there.
    expect(store.unprocessedDeliveries(10).map((d) => d.id)).toEqual([2, 3]);
    // Once the position is on disk (a claim, or the processing thread's housekeeping), the inbox is pruned behind it.
    store.markProcessed(3);
    store.syncDecided();
    expect(store.pruneDeliveries(T + 40 * DAY, 7 * DAY)).toBe(3);
  });

  it('decides from the position it reached: deliveries up to it are not handed out again, across reopen', () => {
    store.acceptDeliveries([1, 2, 3].map((i) => ({ key: `k${i}`, receivedAt: T, alert })));
    store.markProcessed(2);
    store.markProcessed(1); // never goes back
    store.close();
    store = new SqliteStore(file);
    expect(store.unprocessedDeliveries(10).map((d) => d.id)).toEqual([3]);
    expect(store.stats().unprocessed).toBe(1);
  });

  it('upgrades a one-file store (schema 1): deliveries move to the inbox, undecided ones stay undecided', () => {
    store.close();
    // Schema 1 kept the deliveries in the state file, with their decision.
    const old = new Database(file);
    old.exec(`CREATE TABLE deliveries (id INTEGER PRIMARY KEY AUTOINCREMENT, delivery_key TEXT NOT NULL UNIQUE, received_at INTEGER NOT NULL,
      source TEXT NOT NULL, alert TEXT NOT NULL, processed_at INTEGER, fingerprint TEXT, action TEXT, reason TEXT)`);
    const insert = old.prepare('INSERT INTO deliveries (delivery_key, received_at, source, alert, processed_at) VALUES (?, ?, ?, ?, ?)');
    insert.run('zbx:0:1:problem', T, 'webhook', JSON.stringify(alert), T);
    insert.run('zbx:0:2:problem', T, 'webhook', JSON.stringify(alert), T);
    insert.run('zbx:0:3:problem', T, 'webhook', JSON.stringify({ ...alert, eventId: '3' }), null);
    // What later schema versions added goes too: this is a schema-1 file.
    old.exec('DROP TABLE incident_events; DROP TABLE parked_deliveries; DROP INDEX incidents_ended; DROP INDEX incidents_open; DROP INDEX jobs_by_fingerprint_any;');
    old.prepare('INSERT INTO incidents (fingerprint, status, state, updated_at) VALUES (?, ?, ?, ?)').run('fp', 'open', JSON.stringify({ fingerprint: 'fp', seq: 1, status: 'open', marker: 'm', openEvents: ['3'], events: ['1', '3'], occurrences: 2 }), T);
    old.pragma('user_version = 1');
    old.close();
    rmSync(inboxFileOf(file));
    store = new SqliteStore(file);
    expect(store.hasDelivery('zbx:0:1:problem')).toBe(true);
    expect(store.unprocessedDeliveries(10).map((d) => [d.id, d.alert.eventId])).toEqual([[3, '3']]);
    expect(store.acceptDeliveries([{ key: 'zbx:0:4:problem', receivedAt: T, alert }])).toEqual([{ deliveryId: 4, duplicate: false }]);
    expect(store.db.prepare("SELECT name FROM sqlite_master WHERE name = 'deliveries'").all()).toEqual([]);
    // Schema 3: the per-incident event lists became the event index and an open count.
    expect(store.openIncidentEvents()).toEqual(['3']);
    expect(store.eventInfo('1')).toEqual({ fingerprint: 'fp', seq: 1, open: false });
    expect(store.getIncident('fp')).toMatchObject({ openCount: 1 });
    expect(store.getIncident('fp')).not.toHaveProperty('events');
  });

  it('hands out for decision only deliveries known to be on disk; syncInbox resolves once they are', async () => {
    store.acceptDeliveries([1, 2, 3].map((i) => ({ key: `k${i}`, receivedAt: T, alert })));
    expect(store.unprocessedDeliveries(10, 2).map((d) => d.id)).toEqual([1, 2]);
    await expect(Promise.all([store.syncInbox(), store.syncInbox(), store.syncInbox()])).resolves.toHaveLength(3);
    expect(store.lastDeliveryId()).toBe(3);
  });

  it('keeps the inbox in its own file next to the state file', () => {
    expect(inboxFileOf('/var/lib/zgb/bridge.db')).toBe('/var/lib/zgb/bridge.inbox.db');
    expect(inboxFileOf('/var/lib/zgb/state')).toBe('/var/lib/zgb/state.inbox.db');
    expect(existsSync(join(dirname(file), 'bridge.inbox.db'))).toBe(true);
  });

  it('keeps dead letters with their reason until retried', () => {
    store.enqueue('A', 1, fu('x'), T, T);
    store.enqueue('B', 1, fu('y'), T, T);
    const [a, b] = store.claimReady(T, 10, new Set());
    store.buryJob(a!.id, 'GLPI_PERMANENT ERROR_GLPI_ADD: bad category', T);
    store.buryJob(b!.id, 'GLPI_PERMANENT ERROR_RIGHT_MISSING', T);
    expect(store.stats()).toMatchObject({ dead: 2, pending: 0 });
    expect(store.jobs('dead').map((j) => j.lastError)).toEqual(['GLPI_PERMANENT ERROR_GLPI_ADD: bad category', 'GLPI_PERMANENT ERROR_RIGHT_MISSING']);
    expect(store.retryDead(a!.id, T)).toBe(1);
    expect(store.retryDead('all', T)).toBe(1);
    expect(store.claimReady(T, 10, new Set())).toHaveLength(2);
  });
});
