import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { SqliteStore } from '../../src/adapters/store/sqlite/index.js';
import type { Alert, AlertKind } from '../../src/core/alert.js';
import type { Policy } from '../../src/core/decide.js';
import { deliveryKey, type FingerprintField } from '../../src/core/fingerprint.js';
import { createMetrics } from '../../src/observability/metrics.js';
import type { ProcessingSettings } from '../../src/core/assess.js';
import { Processor } from '../../src/services/processor.js';
import { cpuAlert, exampleRules } from '../helpers/fixtures.js';
import { nodeDigests } from '../../src/adapters/digests.js';

/**
 * The processor on a real store with a pinned clock: deliveries go into the
 * inbox with the time they were received, and are decided later, in a
 * batch, as under a backlog.
 */
const T = 1_800_000_000_000;
const policy: Policy = { holdDownMs: 0, reopenWindowMs: 3_600_000, recovery: 'solve', followupPrivate: false, writeBackPrefix: '[glpi-bridge]', markerKey: 'processor-test-key-0123456789abcdef', digests: nodeDigests };

let store: SqliteStore;
let now: number;
let settings: ProcessingSettings;
let processor: Processor;
let deliveries: number;

function make(over: Partial<Policy> = {}, fields: readonly FingerprintField[] = ['host', 'trigger']): void {
  settings = { rules: exampleRules(), policy: { ...policy, ...over }, fingerprintFields: fields, coalesceWindowMs: 0 };
  processor = new Processor(store, () => settings, { now: () => now }, pino({ level: 'silent' }), createMetrics({ processMetrics: false }), () => undefined);
}

beforeEach(() => {
  store = new SqliteStore(join(mkdtempSync(join(tmpdir(), 'zgb-processor-')), 'bridge.db'));
  now = T;
  deliveries = 0;
  make();
});
afterEach(() => store.close());

function alert(kind: AlertKind, eventId: string, over: Partial<Alert> = {}): Alert {
  return cpuAlert(kind, { eventId, ...over });
}

function ack(eventId: string, message: string): Alert {
  return alert('update', eventId, { update: { action: 'acknowledged', message, user: 'Ann', at: message, acknowledged: true, severityChanged: false, closed: false } });
}

/** Alerts received at the given times (ms after T); decided when decide() is called. */
function receive(...items: [Alert, number][]): void {
  store.acceptDeliveries(items.map(([a, at]) => ({ key: deliveryKey(a, nodeDigests), receivedAt: T + at, alert: a })));
  deliveries += items.length;
  processor.admit(deliveries);
}

function decide(at: number): void {
  now = T + at;
  processor.drain();
}

const jobs = () => [...store.jobs('pending'), ...store.jobs('running')].map((j) => j.type);

describe('Processor', () => {
  it('a problem whose recovery arrived first opens nothing; the other order opens and solves (item 2)', () => {
    receive([alert('recovery', '10'), 0], [alert('problem', '10'), 60_000]);
    decide(61_000);
    expect(jobs()).toEqual([]);
    expect(store.getIncident('host=srv|trigger=#100')).toBeUndefined();
    receive([alert('problem', '20', { triggerId: '200' }), 70_000], [alert('recovery', '20', { triggerId: '200' }), 80_000]);
    decide(81_000);
    expect(jobs()).toEqual(['create_ticket', 'solve']);
  });

  it('under a backlog a problem and its recovery received minutes apart are a real incident, not a flap (item 5)', () => {
    make({ holdDownMs: 120_000 });
    receive([alert('problem', '10'), 0], [alert('recovery', '10'), 300_000]);
    decide(600_000); // decided together, ten minutes later
    expect(store.getIncident('host=srv|trigger=#100')).toMatchObject({ status: 'solved' });
    expect(jobs()).toEqual(['create_ticket', 'solve']);
  });

  it('a flap within the hold-down cancels the create and every job queued behind it (item 5)', () => {
    make({ holdDownMs: 120_000 });
    receive([alert('problem', '10'), 0], [ack('10', 'looking'), 10_000], [alert('recovery', '10'), 30_000]);
    decide(31_000);
    expect(store.getIncident('host=srv|trigger=#100')).toMatchObject({ status: 'suppressed' });
    expect(jobs()).toEqual([]);
    expect(store.jobs('cancelled' as never)).toHaveLength(2);
  });

  it('a held create waits while deliveries received before its hold-down ended are not decided yet (item 5)', () => {
    make({ holdDownMs: 60_000 });
    receive([alert('problem', '10'), 0]);
    decide(1_000);
    receive([alert('recovery', '10'), 30_000]); // received in time, not decided yet
    expect(processor.decidedHorizon(T + 100_000)).toBe(T);
    expect(store.claimReady(T + 100_000, 10, new Set(), processor.decidedHorizon(T + 100_000))).toEqual([]);
    decide(100_000);
    expect(processor.decidedHorizon(T + 100_000)).toBe(T + 100_000);
    expect(jobs()).toEqual([]);
  });

  it('an acknowledgement of the first of 300 events still reaches the ticket (item 12)', () => {
    const items: [Alert, number][] = [];
    for (let i = 0; i < 300; i++) items.push([alert('problem', String(1000 + i)), i]);
    receive(...items);
    decide(1_000);
    receive([ack('1000', 'first one'), 2_000]);
    decide(3_000);
    const followups = store.jobs('pending').filter((j) => j.type === 'followup');
    expect(JSON.stringify(followups.at(-1)?.spec)).toContain('first one');
  });

  it('a changed correlation.fingerprint does not orphan open incidents: updates, recurrences and the recovery still reach them (item 12)', () => {
    receive([alert('problem', '10'), 0]);
    decide(1_000);
    make({}, ['host', 'trigger_name']); // reload with another definition
    receive([ack('10', 'after reload'), 2_000], [alert('problem', '11'), 3_000], [alert('recovery', '10'), 4_000], [alert('recovery', '11'), 5_000]);
    decide(6_000);
    expect(store.getIncident('host=srv|trigger=#100')).toMatchObject({ status: 'solved', occurrences: 2 });
    expect(store.getIncident('host=srv|trigger_name=High CPU')).toBeUndefined();
    expect(store.jobs('pending').map((j) => [j.fingerprint, j.type])).toEqual([
      ['host=srv|trigger=#100', 'create_ticket'],
      ['host=srv|trigger=#100', 'followup'],
      ['host=srv|trigger=#100', 'solve'],
    ]);
  });

  it('an alert whose decision fails is parked and listed, and the ones after it are still decided (item 12)', () => {
    const broken = { ...alert('problem', '10'), tags: undefined } as unknown as Alert;
    receive([broken, 0], [alert('problem', '11', { triggerId: '101' }), 1_000]);
    decide(2_000);
    expect(store.parkedDeliveries()).toMatchObject([{ deliveryId: 1, eventId: '10', kind: 'problem' }]);
    expect(store.stats().parked).toBe(1);
    expect(jobs()).toEqual(['create_ticket']);
  });

  it('with recovery: followup, a problem months later opens a new ticket (item 6)', () => {
    make({ recovery: 'followup' });
    receive([alert('problem', '10'), 0], [alert('recovery', '10'), 1_000]);
    decide(2_000);
    const first = store.getIncident('host=srv|trigger=#100');
    expect(first?.status).toBe('solved');
    receive([alert('problem', '99'), 90 * 86_400_000]);
    decide(90 * 86_400_000 + 1);
    expect(store.getIncident('host=srv|trigger=#100')).toMatchObject({ cycle: 2, status: 'open' });
    expect(store.getIncident('host=srv|trigger=#100')?.marker).not.toBe(first?.marker);
  });

  it('a ticket closed in GLPI while its problem is open gets a new cycle with a new ticket; its problems move to it (item 10)', () => {
    receive([alert('problem', '10'), 0]);
    decide(1_000);
    store.putTicket('host=srv|trigger=#100', 1, 7, 'm', T);
    for (const j of store.claimReady(T + 2_000, 10, new Set())) store.completeJob(j.id, T + 2_000);
    processor.ticketClosed('host=srv|trigger=#100', 1, 7);
    expect(store.getIncident('host=srv|trigger=#100')).toMatchObject({ cycle: 2, status: 'open', openCount: 1 });
    expect(store.eventInfo('10')).toMatchObject({ cycle: 2, open: true });
    expect(store.jobs('pending').map((j) => [j.type, j.cycle])).toEqual([['create_ticket', 2]]);
    // Told again (another queued job found it closed): nothing more.
    processor.ticketClosed('host=srv|trigger=#100', 1, 7);
    expect(store.jobs('pending')).toHaveLength(1);
    receive([alert('recovery', '10'), 3_000]);
    decide(4_000);
    expect(store.getIncident('host=srv|trigger=#100')).toMatchObject({ cycle: 2, status: 'solved' });
  });

  it('forgets ended incidents after the reopen window; the next problem opens a ticket with a marker never used before (item 11)', () => {
    receive([alert('problem', '10'), 0], [alert('recovery', '10'), 1_000]);
    decide(2_000);
    const first = store.getIncident('host=srv|trigger=#100')?.marker;
    for (let round = 0; round < 2; round++) for (const j of store.claimReady(T + 3_000, 10, new Set())) store.completeJob(j.id, T + 3_000);
    now = T + 2 * 3_600_000;
    expect(processor.pruneEnded(now - policy.reopenWindowMs)).toBe(1);
    expect(store.getIncident('host=srv|trigger=#100')).toBeUndefined();
    receive([alert('problem', '11'), 2 * 3_600_000 + 1]);
    decide(2 * 3_600_000 + 2);
    const next = store.getIncident('host=srv|trigger=#100');
    expect(next).toMatchObject({ cycle: 1, status: 'open' });
    expect(next?.marker).not.toBe(first);
  });

  it('an acknowledgement Zabbix delivered before its problem reaches the ticket once the problem arrives (found by the model test)', () => {
    receive([ack('10', 'seen early'), 0], [alert('problem', '10'), 60_000]);
    decide(61_000);
    const pending = store.jobs('pending');
    expect(pending.map((j) => j.type)).toEqual(['create_ticket', 'followup']);
    expect(JSON.stringify(pending[1]?.spec)).toContain('seen early');
    // Redelivered later: the same delivery, nothing more.
    receive([ack('10', 'seen early'), 62_000]);
    decide(63_000);
    expect(store.jobs('pending')).toHaveLength(2);
  });

  it('does not forget an ended incident while a problem received within its reopen window is still to be decided (found by the model test)', () => {
    receive([alert('problem', '10'), 0], [alert('recovery', '10'), 10]);
    decide(20);
    for (let round = 0; round < 2; round++) for (const j of store.claimReady(T + 30, 10, new Set())) store.completeJob(j.id, T + 30);
    receive([alert('problem', '11'), 30]); // received at once, decided a day later
    now = T + 25 * 3_600_000;
    processor.prune(now, 3_600_000); // retention shorter than the reopen window: the window decides
    expect(store.getIncident('host=srv|trigger=#100')).toBeDefined();
    decide(25 * 3_600_000);
    expect(store.jobs('pending').map((j) => j.type)).toEqual(['reopen']);
  });

  it('an acknowledgement of a long-recovered event still reaches its ticket while the alerts are kept (found by the model test)', () => {
    receive([alert('problem', '10'), 0], [alert('recovery', '10'), 10]);
    decide(20);
    for (let round = 0; round < 2; round++) for (const j of store.claimReady(T + 30, 10, new Set())) store.completeJob(j.id, T + 30);
    store.putTicket('host=srv|trigger=#100', 1, 7, 'm', T);
    now = T + 72 * 3_600_000; // past the reopen window, within store.retention (7 days)
    processor.prune(now, 7 * 86_400_000);
    receive([ack('10', 'root cause found'), 72 * 3_600_000]);
    decide(72 * 3_600_000 + 1);
    const followup = store.jobs('pending')[0];
    expect(followup?.type).toBe('followup');
    expect(store.ticketId(followup!.fingerprint, followup!.cycle)).toBe(7);
    now = T + 8 * 86_400_000;
    processor.prune(now, 7 * 86_400_000);
    expect(store.getIncident('host=srv|trigger=#100')).toBeDefined(); // a job of its is still pending
  });

  it('an acknowledgement of an event of an earlier ticket cycle goes to that cycle\'s ticket, not the new one (found by the model test)', () => {
    receive([alert('problem', '10'), 0], [alert('recovery', '10'), 10]);
    decide(20);
    for (let round = 0; round < 2; round++) for (const j of store.claimReady(T + 30, 10, new Set())) store.completeJob(j.id, T + 30);
    store.putTicket('host=srv|trigger=#100', 1, 7, 'm', T);
    receive([alert('problem', '11'), 72 * 3_600_000], [ack('10', 'about the first one'), 72 * 3_600_000 + 1]);
    decide(72 * 3_600_000 + 2);
    expect(store.getIncident('host=srv|trigger=#100')?.cycle).toBe(2);
    expect(store.jobs('pending').map((j) => [j.type, j.cycle])).toEqual([
      ['create_ticket', 2],
      ['followup', 1],
    ]);
  });
});
