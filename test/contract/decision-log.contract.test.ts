/**
 * The DecisionLog and OpenIncidentList contracts: what the status page (and `status`) rely on. The log
 * keeps the newest decisions with their reasons, newest first, capped by count, filterable by host,
 * category and action; it commits or rolls back with the decisions it records. Open incidents come a page
 * at a time, most recently changed first, with the ticket of their current cycle.
 */
import { describe, expect, it } from '@jest/globals';
import type { DecisionRecord } from '../../src/core/ports.js';
import { backends, freshStore } from './backends.js';
import { T, incident } from './store-samples.js';

const record = (n: number, over: Partial<DecisionRecord> = {}): DecisionRecord => ({
  at: T + n, deliveryId: n, eventId: String(n), kind: 'problem', host: 'web-1', fingerprint: `host=web-1|trigger=${n}`, category: 'cpu', severity: 'high',
  action: 'open', reason: `reason ${n}`, jobs: ['create_ticket'], ...over,
});

describe.each(backends)('DecisionLog ($name)', (backend) => {
  const store = freshStore(backend);

  it('gives the decisions back newest first, every field as recorded', () => {
    const s = store();
    s.recordDecisions([record(1), record(2, { kind: 'recovery', action: 'solve', jobs: ['solve', 'zabbix_ack'] })], 500);
    s.recordDecisions([{ ...record(3), deliveryId: undefined }].map(({ deliveryId: _, ...r }) => r), 500);
    expect(s.recentDecisions()).toEqual([
      { at: T + 3, eventId: '3', kind: 'problem', host: 'web-1', fingerprint: 'host=web-1|trigger=3', category: 'cpu', severity: 'high', action: 'open', reason: 'reason 3', jobs: ['create_ticket'] },
      record(2, { kind: 'recovery', action: 'solve', jobs: ['solve', 'zabbix_ack'] }),
      record(1),
    ]);
  });

  it('keeps only the newest `keep` decisions', () => {
    const s = store();
    for (let i = 1; i <= 12; i++) s.recordDecisions([record(i)], 5);
    s.recordDecisions([record(13), record(14), record(15)], 5);
    expect(s.recentDecisions().map((r) => r.deliveryId)).toEqual([15, 14, 13, 12, 11]);
  });

  it('filters by host, category and action (exact values, combined), and bounds what it returns', () => {
    const s = store();
    s.recordDecisions(
      [
        record(1, { host: 'db-1', category: 'disk' }),
        record(2, { host: 'db-1', category: 'cpu', action: 'follow_up' }),
        record(3, { host: 'web-1', category: 'disk', action: 'follow_up' }),
        record(4, { host: 'db-10' }),
      ],
      500,
    );
    expect(s.recentDecisions({ host: 'db-1' }).map((r) => r.deliveryId)).toEqual([2, 1]);
    expect(s.recentDecisions({ category: 'disk' }).map((r) => r.deliveryId)).toEqual([3, 1]);
    expect(s.recentDecisions({ action: 'follow_up', host: 'web-1' }).map((r) => r.deliveryId)).toEqual([3]);
    expect(s.recentDecisions({ host: "db-1' OR '1'='1" })).toEqual([]);
    expect(s.recentDecisions({ limit: 2 }).map((r) => r.deliveryId)).toEqual([4, 3]);
  });

  it('rolls back with the transaction it was recorded in (a decision taken again after a crash is logged once)', () => {
    const s = store();
    s.recordDecisions([record(1)], 500);
    expect(() =>
      s.transaction(() => {
        s.recordDecisions([record(2)], 500);
        s.markProcessed(2);
        throw new Error('crash');
      }, 'crash-safe'),
    ).toThrow('crash');
    s.transaction(() => s.recordDecisions([record(2)], 500), 'crash-safe');
    expect(s.recentDecisions().map((r) => r.deliveryId)).toEqual([2, 1]);
  });
});

describe.each(backends)('OpenIncidentList ($name)', (backend) => {
  const store = freshStore(backend);

  it('counts and pages open incidents, most recently changed first, with their current cycle\'s ticket', () => {
    const s = store();
    for (let i = 1; i <= 7; i++) s.putIncident(incident(`host=h${i}`, 'open', { occurrences: i, openedAt: T - i }), T + i);
    s.putIncident(incident('host=solved', 'solved'), T + 100);
    s.putIncident(incident('host=h3', 'open', { cycle: 2, occurrences: 9, openedAt: T - 3 }), T + 50);
    s.putTicket('host=h3', 1, 41, '[zbx:a]', T);
    s.putTicket('host=h3', 2, 42, '[zbx:b]', T);
    expect(s.openIncidentCount()).toBe(7);
    const first = s.openIncidents(0, 3);
    expect(first).toEqual([
      { fingerprint: 'host=h3', cycle: 2, category: 'cpu', severity: 'high', occurrences: 9, openedAt: T - 3, ticketId: 42 },
      { fingerprint: 'host=h7', cycle: 1, category: 'cpu', severity: 'high', occurrences: 7, openedAt: T - 7 },
      { fingerprint: 'host=h6', cycle: 1, category: 'cpu', severity: 'high', occurrences: 6, openedAt: T - 6 },
    ]);
    expect(s.openIncidents(3, 3).map((i) => i.fingerprint)).toEqual(['host=h5', 'host=h4', 'host=h2']);
    expect(s.openIncidents(6, 3).map((i) => i.fingerprint)).toEqual(['host=h1']);
    expect(s.openIncidents(9, 3)).toEqual([]);
  });
});
