/**
 * The processor keeps the decision log the status page shows: one entry per decision, with its reason,
 * written in the batch's own commit (a batch that fails to commit logs nothing, and is decided and logged
 * once when it is taken again), capped at DECISION_LOG_KEEP. The in-memory store, a fixed clock, the
 * example rules.
 */
import { describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { nodeDigests } from '../../src/adapters/digests.js';
import { MemoryStore } from '../../src/adapters/store/memory/memory-store.js';
import type { ProcessingSettings } from '../../src/core/assess.js';
import { deliveryKey } from '../../src/core/fingerprint.js';
import type { Alert } from '../../src/core/alert.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { DECISION_LOG_KEEP, Processor } from '../../src/services/processor.js';
import { cpuAlert, exampleRules } from '../helpers/fixtures.js';

const T = 1_800_000_000_000;

function harness(store: MemoryStore) {
  let now = T;
  const settings: ProcessingSettings = {
    rules: exampleRules(),
    policy: { holdDownMs: 0, reopenWindowMs: 3_600_000, recovery: 'solve', followupPrivate: false, writeBackPrefix: '[glpi-bridge]', markerKey: 'decision-log-test-key-0123456789', digests: nodeDigests },
    fingerprintFields: ['host', 'trigger'],
    coalesceWindowMs: 0,
  };
  const processor = new Processor(store, () => settings, { now: () => now }, pino({ level: 'silent' }), createMetrics({ processMetrics: false }), () => undefined);
  return {
    receive: (...alerts: Alert[]) => {
      store.acceptDeliveries(alerts.map((a) => ({ key: deliveryKey(a, nodeDigests), receivedAt: now, alert: a })));
      processor.admit(store.lastDeliveryId());
    },
    decide: (at: number) => {
      now = T + at;
      return processor.drain();
    },
  };
}

describe('the decision log', () => {
  it('records every decision with its host, category, severity, action, reason and jobs, newest first', () => {
    const store = new MemoryStore();
    const h = harness(store);
    h.receive(cpuAlert('problem', { eventId: '10', host: 'web-1' }), cpuAlert('problem', { eventId: '11', host: 'web-1' }), cpuAlert('recovery', { eventId: '10', host: 'web-1' }));
    expect(h.decide(1000)).toBe(3);
    const log = store.recentDecisions();
    expect(log.map((d) => [d.deliveryId, d.eventId, d.kind, d.host, d.category, d.action])).toEqual([
      [3, '10', 'recovery', 'web-1', 'cpu', expect.any(String)],
      [2, '11', 'problem', 'web-1', 'cpu', 'follow_up'],
      [1, '10', 'problem', 'web-1', 'cpu', 'open'],
    ]);
    expect(log[2]).toMatchObject({ at: T + 1000, fingerprint: 'host=web-1|trigger=#100', severity: 'high', jobs: ['create_ticket'] });
    for (const d of log) expect(d.reason).not.toBe('');
  });

  it('logs nothing for a batch whose commit fails, and logs it once when it is decided again', () => {
    const store = new MemoryStore();
    const h = harness(store);
    h.receive(cpuAlert('problem', { eventId: '10' }));
    const markProcessed = store.markProcessed.bind(store);
    store.markProcessed = () => {
      throw new Error('disk I/O error');
    };
    expect(h.decide(0)).toBe(0);
    expect(store.recentDecisions()).toEqual([]);
    store.markProcessed = markProcessed;
    expect(h.decide(10)).toBe(1);
    expect(store.recentDecisions().map((d) => d.deliveryId)).toEqual([1]);
  });

  it(`keeps the newest ${DECISION_LOG_KEEP}`, () => {
    const store = new MemoryStore();
    const h = harness(store);
    h.receive(...Array.from({ length: DECISION_LOG_KEEP + 20 }, (_, i) => cpuAlert('problem', { eventId: String(100 + i), host: `h${i}` })));
    h.decide(0);
    const log = store.recentDecisions({ limit: 1000 });
    expect(log).toHaveLength(DECISION_LOG_KEEP);
    expect(log[0]?.host).toBe(`h${DECISION_LOG_KEEP + 19}`);
    expect(log.at(-1)?.host).toBe('h20');
  });
});
