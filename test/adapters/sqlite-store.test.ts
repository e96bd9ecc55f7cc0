import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { inboxFileOf, SqliteStore } from '../../src/adapters/store/sqlite/index.js';
import type { Alert } from '../../src/core/alert.js';
import type { Incident, JobSpec } from '../../src/core/decide.js';
import { fingerprintKey } from '../../src/core/fingerprint.js';
import { nodeDigests } from '../../src/adapters/digests.js';
import { queueJob } from '../../src/services/storm-control.js';

const key = (fp: string) => fingerprintKey(fp, nodeDigests);

const alert: Alert = { source: 'webhook', eventSource: '0', eventId: '1', kind: 'problem', severity: 'high', eventName: 'x', host: 'h', hostName: 'h', triggerName: 't', tags: [] };
const fu = (line: string): JobSpec => ({ type: 'followup', lines: [line], isPrivate: false });
const T = 1_800_000_000_000;
const incident = (fingerprint: string, status: Incident['status'] = 'open', over: Partial<Incident> = {}): Incident => ({
  fingerprint, cycle: 1, status, marker: 'm', category: 'cpu', severity: 'high', urgency: 4, impact: 4, openCount: status === 'open' ? 1 : 0, occurrences: 1, openedAt: T, ...over,
});

/**
 * The state file's schema as versions 1 and 3 of the store created it (DDL
 * copied from sqlite_master of files those versions wrote): upgrades are
 * tested from the real thing, not from today's schema with parts removed.
 */
const SCHEMA_1 = `
  CREATE TABLE deliveries (id INTEGER PRIMARY KEY AUTOINCREMENT, delivery_key TEXT NOT NULL UNIQUE, received_at INTEGER NOT NULL,
    source TEXT NOT NULL, alert TEXT NOT NULL, processed_at INTEGER, fingerprint TEXT, action TEXT, reason TEXT);
  CREATE INDEX deliveries_unprocessed ON deliveries(id) WHERE processed_at IS NULL;
  CREATE TABLE incidents (fingerprint TEXT PRIMARY KEY, status TEXT NOT NULL, state TEXT NOT NULL, updated_at INTEGER NOT NULL);
  CREATE TABLE tickets (fingerprint TEXT NOT NULL, seq INTEGER NOT NULL, ticket_id INTEGER NOT NULL, marker TEXT NOT NULL,
    created_at INTEGER NOT NULL, PRIMARY KEY (fingerprint, seq));
  CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, fingerprint TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL,
    payload TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL,
    last_error TEXT, delivery_id INTEGER, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
  CREATE INDEX jobs_by_fingerprint ON jobs(fingerprint, id) WHERE status IN ('pending', 'running');
  CREATE INDEX jobs_ready ON jobs(next_attempt_at, id) WHERE status = 'pending';
  CREATE INDEX jobs_dead ON jobs(id) WHERE status = 'dead';
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`;
const SCHEMA_3 = `
  CREATE TABLE incidents (fingerprint TEXT PRIMARY KEY, status TEXT NOT NULL, state TEXT NOT NULL, updated_at INTEGER NOT NULL);
  CREATE TABLE tickets (fingerprint TEXT NOT NULL, seq INTEGER NOT NULL, ticket_id INTEGER NOT NULL, marker TEXT NOT NULL,
    created_at INTEGER NOT NULL, PRIMARY KEY (fingerprint, seq));
  CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, fingerprint TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL,
    payload TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL,
    last_error TEXT, delivery_id INTEGER, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
  CREATE INDEX jobs_by_fingerprint ON jobs(fingerprint, id) WHERE status IN ('pending', 'running');
  CREATE INDEX jobs_ready ON jobs(next_attempt_at, id) WHERE status = 'pending';
  CREATE INDEX jobs_dead ON jobs(id) WHERE status = 'dead';
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE incident_events (event_id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, seq INTEGER NOT NULL, open INTEGER NOT NULL);
  CREATE INDEX incident_events_by_cycle ON incident_events(fingerprint, seq) WHERE open = 1;
  CREATE INDEX incidents_ended ON incidents(updated_at) WHERE status <> 'open';
  CREATE INDEX incidents_open ON incidents(fingerprint) WHERE status = 'open';
  CREATE INDEX jobs_by_fingerprint_any ON jobs(fingerprint, status);
  CREATE TABLE parked_deliveries (delivery_id INTEGER PRIMARY KEY, event_id TEXT NOT NULL, kind TEXT NOT NULL, error TEXT NOT NULL, parked_at INTEGER NOT NULL);
`;

/** A state file written by an older store (fresh inbox): `fill` puts that version's rows in. */
function oldStateFile(path: string, schema: string, version: number, fill: (db: Database.Database) => void): void {
  rmSync(path, { force: true });
  rmSync(inboxFileOf(path), { force: true });
  for (const f of [`${path}-wal`, `${path}-shm`, `${inboxFileOf(path)}-wal`, `${inboxFileOf(path)}-shm`]) rmSync(f, { force: true });
  const old = new Database(path);
  old.exec(schema);
  fill(old);
  old.pragma(`user_version = ${version}`);
  old.close();
}

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
    expect(first.map((j) => [j.key, j.id, j.attempts])).toEqual([
      [key('A'), 1, 1],
      [key('B'), 3, 1],
    ]);
    expect(store.claimReady(T, 10, new Set())).toEqual([]);
    store.completeJob(1, T);
    expect(store.claimReady(T, 10, new Set()).map((j) => j.id)).toEqual([2]);
  });

  it('does not hand out jobs before their time or of a busy incident', () => {
    store.enqueue('A', 1, { type: 'reopen', lines: ['x'] }, T + 1000, T);
    const b = store.enqueue('B', 1, { type: 'reopen', lines: ['x'] }, T, T);
    expect(store.claimReady(T, 10, new Set([store.job(b)!.lane]))).toEqual([]);
    expect(store.nextDueAt()).toBe(T);
    expect(store.claimReady(T + 1000, 10, new Set()).map((j) => j.key)).toEqual([key('B'), key('A')]);
  });

  it('storm control merges a follow-up into a queued one that has not started; the store itself only appends', () => {
    const id1 = queueJob(store, 'A', 1, fu('one'), T, T);
    const id2 = queueJob(store, 'A', 1, fu('two'), T, T);
    expect(id2).toBe(id1);
    expect(store.job(id1)?.spec).toEqual({ type: 'followup', lines: ['one', 'two'], isPrivate: false });
    expect(store.lastQueued('A', 'glpi')).toMatchObject({ id: id1, cycle: 1, status: 'pending', attempts: 0 });
    expect(store.lastQueued('A', 'zabbix')).toBeUndefined();
    store.claimReady(T, 1, new Set());
    expect(store.lastQueued('A', 'glpi')).toMatchObject({ id: id1, status: 'running', attempts: 1 });
    const id3 = queueJob(store, 'A', 1, fu('three'), T, T);
    expect(id3).not.toBe(id1);
    expect(store.enqueue('A', 1, fu('four'), T, T)).not.toBe(id3);
  });

  it('cancels a held-back create and every job queued behind it in that cycle (hold-down), only while pending', () => {
    const create: JobSpec = { type: 'create_ticket', delayMs: 0, ticket: { name: 'n', content: 'c', marker: 'm', urgency: 3, impact: 3, type: 1, itilcategories_id: 0, entities_id: 0, requesttypes_id: 0, groups_id_assign: 0 } };
    store.enqueue('A', 1, create, T + 30_000, T);
    store.enqueue('A', 1, fu('acknowledged'), T, T);
    store.enqueue('A', 2, fu('other cycle'), T, T);
    expect(store.cancelCycle('A', 1, T + 1)).toBe(2);
    expect(store.claimReady(T + 60_000, 10, new Set()).map((j) => j.cycle)).toEqual([2]);
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
    const inc = incident;
    store.putIncident(inc('old-solved', 'solved'), T - 100_000);
    store.putIncident(inc('old-open', 'open'), T - 100_000);
    store.putIncident(inc('old-solved-with-dead-job', 'solved'), T - 100_000);
    store.putIncident(inc('recent-solved', 'solved'), T);
    store.putTicket('old-solved', 1, 41, 'm', T - 100_000);
    store.putEvents('old-solved', [{ eventId: '500', cycle: 1, open: false }]);
    const id = store.enqueue('old-solved-with-dead-job', 1, fu('x'), T, T);
    store.buryJob(id, 'GLPI_PERMANENT', T);
    expect(store.pruneIncidents(T - 50_000).sort()).toEqual(['old-solved']);
    expect(store.getIncident('old-solved')).toBeUndefined();
    expect(store.ticketId('old-solved', 1)).toBeUndefined();
    expect(store.eventInfo('500')).toBeUndefined();
    expect(['old-open', 'old-solved-with-dead-job', 'recent-solved'].map((f) => store.getIncident(f)?.fingerprint)).toEqual(['old-open', 'old-solved-with-dead-job', 'recent-solved']);
  });

  it('indexes events per incident cycle: open ones are what the poller checks, a new cycle can take them over', () => {
    store.putIncident(incident('A'), T);
    store.putEvents('A', [{ eventId: '1', cycle: 1, open: true }, { eventId: '2', cycle: 1, open: true }, { eventId: '3', cycle: 1, open: false }]);
    expect(store.openIncidentEvents().sort()).toEqual(['1', '2']);
    expect(store.latestOpenEvent('A', 1)).toBe('2');
    store.moveOpenEvents('A', 1, 2);
    expect(store.eventInfo('1')).toEqual({ fingerprint: 'A', cycle: 2, open: true });
    expect(store.eventInfo('3')).toEqual({ fingerprint: 'A', cycle: 1, open: false });
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
    expect(store.recordStart(T)).toBe(false);
    store.enqueue('A', 1, create, T, T);
    store.close();
    store = new SqliteStore(file);
    expect(store.recordStart(T)).toBe(true);
    expect(store.jobs('pending')[0]?.attempts).toBe(1);
    store.recordCleanStop();
    store.enqueue('B', 1, create, T, T);
    store.close();
    store = new SqliteStore(file);
    expect(store.recordStart(T)).toBe(false);
    expect(store.jobs('pending').map((j) => [j.key, j.attempts])).toEqual([
      [key('A'), 1],
      [key('B'), 0],
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
    store.putIncident(incident('fp-open'), T);
    store.putEvents('fp-open', [{ eventId: '8', cycle: 1, open: true }]);
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
    store.recordStart(T); // fsynced (synchronous=FULL, like a job claim): the disk holds the decisions through delivery 1
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
    oldStateFile(file, SCHEMA_1, 1, (old) => {
      const insert = old.prepare('INSERT INTO deliveries (delivery_key, received_at, source, alert, processed_at) VALUES (?, ?, ?, ?, ?)');
      insert.run('zbx:0:1:problem', T, 'webhook', JSON.stringify(alert), T);
      insert.run('zbx:0:2:problem', T, 'webhook', JSON.stringify(alert), T);
      insert.run('zbx:0:3:problem', T, 'webhook', JSON.stringify({ ...alert, eventId: '3' }), null);
      old.prepare('INSERT INTO incidents (fingerprint, status, state, updated_at) VALUES (?, ?, ?, ?)').run('fp', 'open', JSON.stringify({ fingerprint: 'fp', seq: 1, status: 'open', marker: 'm', openEvents: ['3'], events: ['1', '3'], occurrences: 2 }), T);
    });
    store = new SqliteStore(file);
    expect(store.hasDelivery('zbx:0:1:problem')).toBe(true);
    expect(store.unprocessedDeliveries(10).map((d) => [d.id, d.alert.eventId])).toEqual([[3, '3']]);
    expect(store.acceptDeliveries([{ key: 'zbx:0:4:problem', receivedAt: T, alert }])).toEqual([{ deliveryId: 4, duplicate: false }]);
    expect(store.db.prepare("SELECT name FROM sqlite_master WHERE name = 'deliveries'").all()).toEqual([]);
    // Schema 3: the per-incident event lists became the event index and an open count.
    expect(store.openIncidentEvents()).toEqual(['3']);
    expect(store.eventInfo('1')).toEqual({ fingerprint: 'fp', cycle: 1, open: false });
    expect(store.getIncident('fp')).toMatchObject({ openCount: 1 });
    expect(store.getIncident('fp')).not.toHaveProperty('events');
  });

  it('files every row under a fixed-size key of the fingerprint; the readable fingerprint is kept once, with the incident', () => {
    // A fingerprint built from tags can be long: it must not be repeated in every ticket, event and job row.
    const fp = `host=web01|tag:service=${'s'.repeat(4000)}`;
    store.putIncident(incident(fp), T);
    store.putTicket(fp, 1, 41, '[zbx:m]', T);
    store.putEvents(fp, [{ eventId: '500', cycle: 1, open: true }, { eventId: '501', cycle: 1, open: false }]);
    const followup = store.enqueue(fp, 1, fu('again'), T, T);
    const ack = store.enqueue(fp, 1, { type: 'zabbix_ack', eventIds: ['500'], message: 'ticket #41', acknowledge: true }, T, T);
    const keys = ['incidents', 'tickets', 'incident_events', 'jobs'].flatMap((t) => store.db.prepare<[], { fp_key: string }>(`SELECT fp_key FROM ${t}`).all().map((r) => r.fp_key));
    expect(keys).toHaveLength(6);
    for (const k of keys) expect(k).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set(keys)).toEqual(new Set([key(fp)]));
    // The readable form: once in the whole state file, in the incident's state.
    const rows = store.db.prepare<[{ fp: string }], { n: number }>(
      `SELECT (SELECT COUNT(*) FROM incidents WHERE instr(state, @fp) > 0)
            + (SELECT COUNT(*) FROM jobs WHERE instr(payload || fp_key || lane, @fp) > 0)
            + (SELECT COUNT(*) FROM tickets WHERE instr(fp_key || marker, @fp) > 0)
            + (SELECT COUNT(*) FROM incident_events WHERE instr(fp_key, @fp) > 0) AS n`,
    );
    expect(rows.get({ fp })?.n).toBe(1);
    // Everything is found again by the readable fingerprint, and jobs name it.
    expect(store.getIncident(fp)?.fingerprint).toBe(fp);
    expect(store.ticketId(fp, 1)).toBe(41);
    expect(store.eventInfo('500')).toEqual({ fingerprint: fp, cycle: 1, open: true });
    expect(store.latestOpenEvent(fp, 1)).toBe('500');
    // The write-back runs in its own lane: both are ready at once, and a busy GLPI lane does not hold it back.
    const jobs = store.claimReady(T, 10, new Set());
    expect(jobs.map((j) => [j.id, j.fingerprint, j.key])).toEqual([
      [followup, fp, key(fp)],
      [ack, fp, key(fp)],
    ]);
    expect(new Set(jobs.map((j) => j.lane)).size).toBe(2);
    // A job reaches its ticket through the key it carries.
    expect(store.ticketId(jobs[0]!, 1)).toBe(41);
  });

  it('upgrades a schema-3 file: incidents, tickets, events and jobs are found again by their fingerprint; markers unchanged', () => {
    store.close();
    const fp = 'host=web01|trigger=#123';
    const solved = 'host=db01|trigger=#7';
    const state = (f: string, status: string, extra: object = {}) => JSON.stringify({ fingerprint: f, seq: 1, status, marker: f === fp ? '[zbx:24]' : '[zbx:20]', category: 'cpu', severity: 'high', urgency: 4, impact: 4, openCount: 1, occurrences: 1, openedAt: T, ...extra });
    oldStateFile(file, SCHEMA_3, 3, (old) => {
      old.prepare('INSERT INTO incidents (fingerprint, status, state, updated_at) VALUES (?, ?, ?, ?)').run(fp, 'open', state(fp, 'open'), T);
      old.prepare('INSERT INTO incidents (fingerprint, status, state, updated_at) VALUES (?, ?, ?, ?)').run(solved, 'solved', state(solved, 'solved', { openCount: 0, solvedAt: T - 100_000 }), T - 100_000);
      old.prepare('INSERT INTO tickets (fingerprint, seq, ticket_id, marker, created_at) VALUES (?, 1, ?, ?, ?)').run(fp, 41, '[zbx:24]', T);
      old.prepare('INSERT INTO tickets (fingerprint, seq, ticket_id, marker, created_at) VALUES (?, 1, ?, ?, ?)').run(solved, 42, '[zbx:20]', T);
      const event = old.prepare('INSERT INTO incident_events (event_id, fingerprint, seq, open) VALUES (?, ?, 1, ?)');
      event.run('500', fp, 1);
      event.run('501', fp, 0);
      event.run('600', solved, 0);
      const job = old.prepare("INSERT INTO jobs (fingerprint, seq, type, payload, status, attempts, next_attempt_at, created_at, updated_at) VALUES (?, 1, ?, ?, ?, 0, ?, ?, ?)");
      job.run(fp, 'followup', JSON.stringify(fu('again')), 'pending', T, T, T);
      job.run(`zabbix:${fp}`, 'zabbix_ack', JSON.stringify({ type: 'zabbix_ack', eventIds: ['500'], message: 'ticket #41', acknowledge: true }), 'pending', T, T, T);
      job.run(`zabbix:${solved}`, 'zabbix_ack', JSON.stringify({ type: 'zabbix_ack', eventIds: ['600'], message: 'ticket #42', acknowledge: true }), 'done', T, T, T);
      old.prepare("INSERT INTO meta (key, value) VALUES ('processed_through', '0')").run();
    });
    store = new SqliteStore(file);
    expect(store.db.pragma('user_version', { simple: true })).toBe(6);
    for (const table of ['incidents', 'tickets', 'incident_events', 'jobs']) {
      const columns = store.db.prepare<[], { name: string }>(`SELECT name FROM pragma_table_info('${table}')`).all().map((c) => c.name);
      expect(columns).toContain('fp_key');
      expect(columns).not.toContain('fingerprint');
      for (const r of store.db.prepare<[], { fp_key: string }>(`SELECT fp_key FROM ${table}`).all()) expect(r.fp_key).toMatch(/^[0-9a-f]{32}$/);
    }
    // Found by the readable fingerprint, as the processor and the dispatcher ask.
    expect(store.getIncident(fp)).toMatchObject({ fingerprint: fp, cycle: 1, status: 'open', marker: '[zbx:24]' });
    expect(store.getIncident(fp)).not.toHaveProperty('seq');
    expect(store.ticketId(fp, 1)).toBe(41);
    expect(store.cycleHasTicket(fp, 1)).toBe(true);
    expect(store.eventInfo('500')).toEqual({ fingerprint: fp, cycle: 1, open: true });
    expect(store.eventInfo('501')).toEqual({ fingerprint: fp, cycle: 1, open: false });
    expect(store.openIncidentEvents()).toEqual(['500']);
    expect(store.openIncidentDefinitions()).toEqual([]);
    // The write-back that was queued as "zabbix:<fingerprint>" keeps its own lane: both jobs are ready together.
    const jobs = store.claimReady(T, 10, new Set());
    expect(jobs.map((j) => [j.type, j.fingerprint, j.key])).toEqual([
      ['followup', fp, key(fp)],
      ['zabbix_ack', fp, key(fp)],
    ]);
    expect(jobs[0]!.lane).not.toBe(jobs[1]!.lane);
    // A new follow-up merges into its lane's queue as before, and the ended incident is forgotten with its rows.
    store.completeJob(jobs[0]!.id, T);
    expect(store.pruneIncidents(T - 50_000)).toEqual([solved]);
    expect(store.getIncident(solved)).toBeUndefined();
    expect(store.ticketId(solved, 1)).toBeUndefined();
    expect(store.eventInfo('600')).toBeUndefined();
    expect(store.getIncident(fp)).toBeDefined();
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
