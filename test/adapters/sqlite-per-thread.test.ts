import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openIntakeStore, openProcessingStore, SqliteStore, type IntakeStore, type ProcessingStore } from '../../src/adapters/store/sqlite/index.js';
import type { Alert } from '../../src/core/alert.js';
import type { Incident } from '../../src/core/decide.js';
import type { DecisionStore, DispatchStore, InboxWriter, PollerStore } from '../../src/core/ports.js';

const T = 1_800_000_000_000;
const DAY = 86_400_000;
const alert = (eventId: string): Alert => ({ source: 'webhook', eventSource: '0', eventId, kind: 'problem', severity: 'high', eventName: 'x', host: 'h', hostName: 'h', triggerName: 't', tags: [] });
const incident = (fingerprint: string): Incident => ({
  fingerprint, cycle: 1, status: 'open', marker: 'm', category: 'cpu', severity: 'high', urgency: 4, impact: 4, openCount: 1, occurrences: 1, openedAt: T,
});

const open: { close(): void }[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.close();
});

/** The two threads of the daemon on one pair of files: the main thread's store first (it creates and migrates the files). */
function openBoth(): { intake: IntakeStore; processing: ProcessingStore; file: string } {
  const file = join(mkdtempSync(join(tmpdir(), 'zgb-per-thread-')), 'bridge.db');
  const intake = openIntakeStore(file, { synchronous: 'full' });
  const processing = openProcessingStore(file, { synchronous: 'full' });
  open.push(intake, processing);
  return { intake, processing, file };
}

describe('each thread gets the store it may write', () => {
  it('the intake\'s store cannot reach the state, the processing thread\'s cannot write the inbox (compile errors, and absent at run time)', () => {
    const { intake, processing } = openBoth();
    // @ts-expect-error the main thread cannot reach the action queue
    expect(intake.enqueue).toBeUndefined();
    // @ts-expect-error nor claim jobs
    expect(intake.claimReady).toBeUndefined();
    // @ts-expect-error nor move the decided position
    expect(intake.markProcessed).toBeUndefined();
    // @ts-expect-error nor write incidents
    expect(intake.putIncident).toBeUndefined();
    // @ts-expect-error nor open a transaction of the state file
    expect(intake.transaction).toBeUndefined();
    // @ts-expect-error nor write the run record
    expect(intake.recordCleanStop).toBeUndefined();
    // @ts-expect-error nor checkpoint the inbox (the processing thread does)
    expect(intake.checkpointInbox).toBeUndefined();

    // @ts-expect-error the processing thread cannot append to the inbox
    expect(processing.acceptDeliveries).toBeUndefined();
    // @ts-expect-error nor sync it
    expect(processing.syncInbox).toBeUndefined();
    // @ts-expect-error nor prune it
    expect(processing.pruneDeliveries).toBeUndefined();
    // @ts-expect-error nor write to it for readiness
    expect(processing.checkWritable).toBeUndefined();
    // @ts-expect-error nor keep the poller's memory (in the inbox file)
    expect(processing.pollMemory).toBeUndefined();
  });

  it('each is what its services take; the whole store is both', () => {
    const { intake, processing, file } = openBoth();
    const forIntake: InboxWriter = intake;
    const forPoller: PollerStore = intake;
    const forProcessor: DecisionStore = processing;
    const forDispatcher: DispatchStore = processing;
    const whole = new SqliteStore(file);
    open.push(whole);
    const both: [IntakeStore, ProcessingStore] = [whole, whole];
    expect([forIntake.acceptDeliveries, forPoller.hasDelivery, forProcessor.markProcessed, forDispatcher.claimReady, both[0].pruneDeliveries, both[1].enqueue].every((m) => typeof m === 'function')).toBe(true);
    expect([intake.file, processing.file, whole.file]).toEqual([file, file, file]);
  });
});

describe('the two threads\' stores on one pair of files', () => {
  it('the processing thread decides what the intake committed, in one transaction across incidents, events, jobs and the decided position', async () => {
    const { intake, processing } = openBoth();
    intake.acceptDeliveries([
      { key: 'zbx:0:1:problem', receivedAt: T, alert: alert('1') },
      { key: 'zbx:0:2:problem', receivedAt: T, alert: alert('2') },
    ]);
    await intake.syncInbox();
    const through = intake.lastDeliveryId();
    expect(processing.unprocessedDeliveries(10, through).map((d) => d.id)).toEqual([1, 2]);

    // A batch whose last step throws leaves nothing behind.
    expect(() =>
      processing.transaction(() => {
        processing.putIncident(incident('fp-1'), T);
        processing.putEvents('fp-1', [{ eventId: '1', cycle: 1, open: true }]);
        processing.enqueue('fp-1', 1, { type: 'followup', lines: ['x'], isPrivate: false }, T, T, 1);
        processing.markProcessed(1);
        throw new Error('decision failed');
      }, 'crash-safe'),
    ).toThrow('decision failed');
    expect([processing.getIncident('fp-1'), processing.eventInfo('1'), processing.jobs('pending'), processing.processedThrough()]).toEqual([undefined, undefined, [], 0]);

    processing.transaction(() => {
      processing.putIncident(incident('fp-1'), T);
      processing.putEvents('fp-1', [{ eventId: '1', cycle: 1, open: true }]);
      processing.enqueue('fp-1', 1, { type: 'followup', lines: ['x'], isPrivate: false }, T, T, 1);
      processing.markProcessed(2);
    }, 'crash-safe');
    expect(processing.unprocessedDeliveries(10, through)).toEqual([]);
    // The main thread reads the state it does not write: /readyz and /metrics, the poller.
    expect(intake.stats()).toEqual({ pending: 1, running: 0, dead: 0, oldestPendingAt: T, unprocessed: 0, parked: 0 });
    expect(intake.openIncidentEvents()).toEqual(['1']);
  });

  it('the intake prunes the inbox only behind the position the processing thread put on disk', () => {
    const { intake, processing } = openBoth();
    intake.acceptDeliveries([1, 2, 3].map((i) => ({ key: `zbx:0:${i}:problem`, receivedAt: T, alert: alert(String(i)) })));
    processing.markProcessed(3); // committed, not fsynced
    expect(intake.pruneDeliveries(T + 40 * DAY, 7 * DAY)).toBe(0);
    processing.syncDecided();
    expect(intake.pruneDeliveries(T + 40 * DAY, 7 * DAY)).toBe(3);
    expect(processing.hasDelivery('zbx:0:1:problem')).toBe(false);
  });

  it('the intake keeps accepting while the processing thread checkpoints the inbox; the poller memory is one per store', async () => {
    const { intake, processing } = openBoth();
    for (let i = 1; i <= 50; i++) {
      intake.acceptDeliveries([{ key: `k${i}`, receivedAt: T, alert: alert(String(i)) }]);
      if (i % 10 === 0) processing.checkpointInbox();
    }
    await intake.syncInbox();
    expect(processing.unprocessedDeliveries(100).length).toBe(50);
    expect(intake.pollMemory()).toBe(intake.pollMemory());
    await intake.pollMemory().record({ scope: 's', baselineAt: T, baselineMode: 'skip', baselineCount: 1 }, ['9'], T);
    expect([...intake.pollMemory().baseline()]).toEqual(['9']);
  });
});
