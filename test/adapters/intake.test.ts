import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../src/adapters/clock.js';
import { openIntakeStore, SqliteStore, type IntakeStore } from '../../src/adapters/store/sqlite/index.js';
import { StoreBusy } from '../../src/core/errors.js';
import type { Alert } from '../../src/core/alert.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { Intake } from '../../src/services/intake.js';
import { nodeDigests } from '../../src/adapters/digests.js';

const alert = (eventId: string): Alert => ({ source: 'webhook', eventSource: '0', eventId, kind: 'problem', severity: 'high', eventName: 'x', host: 'h', hostName: 'h', triggerName: 't', tags: [] });
const T = 1_800_000_000_000;

const stores: { close(): void }[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});

/** The main thread's store, and another connection to the same files (the processing thread's, holding the inbox as a checkpoint does). */
function pair(): { intakeSide: IntakeStore; other: SqliteStore } {
  const file = join(mkdtempSync(join(tmpdir(), 'zgb-intake-')), 'bridge.db');
  const intakeSide = openIntakeStore(file);
  const other = new SqliteStore(file);
  stores.push(intakeSide, other);
  return { intakeSide, other };
}

describe('intake against a held inbox (a checkpoint restarting the WAL)', () => {
  it('the intake connection does not wait for the lock: StoreBusy at once, then the commit goes through', () => {
    const { intakeSide, other } = pair();
    other.inbox.exec('BEGIN IMMEDIATE');
    const started = Date.now();
    expect(() => intakeSide.acceptDeliveries([{ key: 'k1', receivedAt: T, alert: alert('1') }])).toThrow(StoreBusy);
    expect(Date.now() - started).toBeLessThan(1000);
    other.inbox.exec('COMMIT');
    expect(intakeSide.acceptDeliveries([{ key: 'k1', receivedAt: T, alert: alert('1') }])).toEqual([{ deliveryId: 1, duplicate: false }]);
  });

  it('alerts wait on the event loop, not in it, and are answered once the inbox is free and the commit on disk', async () => {
    const { intakeSide, other } = pair();
    const committed: number[] = [];
    const intake = new Intake(intakeSide, systemClock, nodeDigests, createLogger('fatal', { write: () => undefined }), createMetrics({ processMetrics: false }), (through) => committed.push(through));
    other.inbox.exec('BEGIN IMMEDIATE');
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    const answers = Promise.all([intake.accept(alert('1')), intake.accept(alert('2'))]);
    await new Promise((r) => setTimeout(r, 100));
    expect(committed).toEqual([]);
    other.inbox.exec('COMMIT');
    const accepted = await answers;
    clearInterval(ticker);
    expect(ticks).toBeGreaterThan(5); // the event loop kept turning while the inbox was held
    expect(accepted.map((a) => a.deliveryId)).toEqual([1, 2]);
    expect(committed).toEqual([2]);
    expect(intake.storeError).toBeUndefined();
  });

  it('an inbox held past 5 s by the intake\'s clock: the waiting alerts are refused (a 503, Zabbix sends again), the next ones are taken once it is free', async () => {
    const { intakeSide, other } = pair();
    let now = T;
    const intake = new Intake(intakeSide, { now: () => now }, nodeDigests, createLogger('fatal', { write: () => undefined }), createMetrics({ processMetrics: false }), () => undefined);
    other.inbox.exec('BEGIN IMMEDIATE');
    const answer = intake.accept(alert('1')).then(() => 'accepted', (e: unknown) => e);
    await new Promise((r) => setImmediate(r)); // the intake's commit ran (before this, in the same phase) and found the inbox held at T
    expect(intake.storeError).toBeUndefined();
    now = T + 5_001;
    // The intake tries again every millisecond: its next try runs before this later timer, and gives up.
    await new Promise((r) => setTimeout(r, 2));
    expect(intake.storeError).toBe('the inbox is being checkpointed');
    expect(await answer).toMatchObject({ code: 'BRIDGE_STORE_UNAVAILABLE' });
    other.inbox.exec('COMMIT');
    expect(await intake.accept(alert('2'))).toEqual({ deliveryId: 1, duplicate: false });
    expect(intake.storeError).toBeUndefined();
  });
});
