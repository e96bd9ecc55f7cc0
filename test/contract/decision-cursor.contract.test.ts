/**
 * The DecisionCursor contract: where the decisions stand in the inbox. What the processor relies on:
 * the position only moves forward, everything up to it is never handed out again, and a delivery whose
 * decision threw is kept aside (parked) for the operator while the position moves past it.
 */
import { describe, expect, it } from '@jest/globals';
import { backends, freshStore } from './backends.js';
import { T, alert } from './store-samples.js';

describe.each(backends)('DecisionCursor ($name)', (backend) => {
  const store = freshStore(backend);

  it('starts before the first delivery, and only moves forward', () => {
    const s = store();
    expect(s.processedThrough()).toBe(0);
    const ids = s.acceptDeliveries([1, 2, 3].map((i) => ({ key: `k${i}`, receivedAt: T, alert: alert() }))).map((a) => a.deliveryId);
    s.markProcessed(ids[1]!);
    expect(s.processedThrough()).toBe(ids[1]);
    s.markProcessed(ids[0]!); // never goes back
    expect(s.processedThrough()).toBe(ids[1]);
    expect(s.unprocessedDeliveries(10).map((d) => d.id)).toEqual([ids[2]]);
    expect(s.stats().unprocessed).toBe(1);
  });

  it('syncDecided can be called whenever: it changes no position', () => {
    const s = store();
    s.syncDecided();
    s.markProcessed(5);
    s.syncDecided();
    s.syncDecided();
    expect(s.processedThrough()).toBe(5);
  });

  it('parks a delivery whose decision failed with its reason, listed in delivery order, counted in stats', () => {
    const s = store();
    s.parkDelivery(9, '900', 'update', 'TypeError: x is undefined', T + 9);
    s.parkDelivery(3, '300', 'problem', 'RangeError: bad', T + 3);
    expect(s.parkedDeliveries()).toEqual([
      { deliveryId: 3, eventId: '300', kind: 'problem', error: 'RangeError: bad', parkedAt: T + 3 },
      { deliveryId: 9, eventId: '900', kind: 'update', error: 'TypeError: x is undefined', parkedAt: T + 9 },
    ]);
    expect(s.parkedDeliveries(1).map((p) => p.deliveryId)).toEqual([3]);
    expect(s.stats().parked).toBe(2);
  });

  it('parks a delivery once: parking it again records the latest reason', () => {
    const s = store();
    s.parkDelivery(3, '300', 'problem', 'first', T);
    s.parkDelivery(3, '300', 'problem', 'second', T + 1);
    expect(s.parkedDeliveries()).toEqual([{ deliveryId: 3, eventId: '300', kind: 'problem', error: 'second', parkedAt: T + 1 }]);
    expect(s.stats().parked).toBe(1);
  });
});
