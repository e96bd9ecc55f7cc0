/**
 * The inbox contract (InboxWriter, InboxReader, and the housekeeping every store has): alerts as
 * accepted, in order, once per delivery key. What the intake and the processor rely on: a redelivery
 * answers the first delivery's id and changes nothing; ids only grow, so the decided position never
 * skips an alert; pruning never drops an alert that is not decided (on disk), nor the problem of an
 * open event, nor one still within retention.
 */
import { describe, expect, it } from '@jest/globals';
import { problemDeliveryKey, recoveryDeliveryKey, updateKeyPrefix } from '../../src/core/fingerprint.js';
import type { NewDelivery } from '../../src/core/ports.js';
import { backends, freshStore } from './backends.js';
import { T, alert, incident } from './store-samples.js';

const DAY = 86_400_000;

function delivery(key: string, receivedAt = T, eventId = '1'): NewDelivery {
  return { key, receivedAt, alert: alert('problem', eventId, { eventName: key }) };
}

describe.each(backends)('Inbox ($name)', (backend) => {
  const store = freshStore(backend);

  describe('acceptDeliveries', () => {
    it('commits deliveries in the order given, with growing ids, and hands them out in that order', () => {
      const s = store();
      const accepted = s.acceptDeliveries([delivery('k1', T + 2), delivery('k2', T + 1), delivery('k3', T)]);
      expect(accepted.map((a) => a.duplicate)).toEqual([false, false, false]);
      const ids = accepted.map((a) => a.deliveryId);
      expect([...ids].sort((a, b) => a - b)).toEqual(ids);
      expect(new Set(ids).size).toBe(3);
      expect(s.unprocessedDeliveries(10)).toEqual([
        { id: ids[0], alert: alert('problem', '1', { eventName: 'k1' }), receivedAt: T + 2 },
        { id: ids[1], alert: alert('problem', '1', { eventName: 'k2' }), receivedAt: T + 1 },
        { id: ids[2], alert: alert('problem', '1', { eventName: 'k3' }), receivedAt: T },
      ]);
    });

    it('answers a redelivery with the first delivery id; the first alert is the one kept', () => {
      const s = store();
      const [first] = s.acceptDeliveries([delivery('k1')]);
      const again = s.acceptDeliveries([{ key: 'k1', receivedAt: T + 60_000, alert: alert('problem', '1', { source: 'poller', eventName: 'second' }) }]);
      expect(again).toEqual([{ deliveryId: first!.deliveryId, duplicate: true }]);
      expect(s.deliveryAlert('k1')).toMatchObject({ source: 'webhook', eventName: 'k1' });
      expect(s.unprocessedDeliveries(10).map((d) => d.id)).toEqual([first!.deliveryId]);
      expect(s.stats().unprocessed).toBe(1);
    });

    it('answers a key repeated within one batch with the id it got earlier in that batch', () => {
      const s = store();
      const [a, b, c] = s.acceptDeliveries([delivery('k1'), delivery('k2'), delivery('k1')]);
      expect(c).toEqual({ deliveryId: a!.deliveryId, duplicate: true });
      expect(b!.duplicate).toBe(false);
      expect(s.unprocessedDeliveries(10)).toHaveLength(2);
    });

    it('counts the undecided deliveries exactly however many redeliveries came between them (the queue\'s counts)', () => {
      const s = store();
      const first = s.acceptDeliveries([delivery('k1'), delivery('k1'), delivery('k2')]);
      s.acceptDeliveries([delivery('k2'), delivery('k1')]);
      const [k3] = s.acceptDeliveries([delivery('k3')]);
      expect(s.stats().unprocessed).toBe(3);
      s.markProcessed(first[0]!.deliveryId);
      expect(s.stats().unprocessed).toBe(2);
      s.markProcessed(k3!.deliveryId);
      expect(s.stats().unprocessed).toBe(0);
      // A redelivery after everything was decided is not new work.
      s.acceptDeliveries([delivery('k3')]);
      expect(s.stats().unprocessed).toBe(0);
    });

    it('accepts an empty batch', () => {
      expect(store().acceptDeliveries([])).toEqual([]);
    });

    it('keeps the alert as given (a copy: changing the object afterwards changes nothing)', () => {
      const s = store();
      const a = alert('update', '7', { update: { action: 'acknowledged', message: 'héllo "quoted" \u2028 ☃', acknowledged: true, severityChanged: false, closed: false }, tags: [{ tag: 't', value: 'v' }] });
      const item = { key: 'u', receivedAt: T, alert: { ...a, tags: [...a.tags] } };
      s.acceptDeliveries([item]);
      item.alert.tags.push({ tag: 'later', value: 'x' });
      expect(s.deliveryAlert('u')).toEqual(a);
    });

    it('resolves syncInbox, for every caller waiting at once; has no size cap unless configured', async () => {
      const s = store();
      s.acceptDeliveries([delivery('k1')]);
      await expect(Promise.all([s.syncInbox(), s.syncInbox(), s.syncInbox()])).resolves.toHaveLength(3);
      expect(s.nearlyFull(T)).toBe(false);
    });
  });

  describe('lookups', () => {
    it('finds a delivery by its key, and nothing under a key never seen', () => {
      const s = store();
      const [a] = s.acceptDeliveries([delivery(problemDeliveryKey('0', '5'), T, '5')]);
      expect(s.hasDelivery(problemDeliveryKey('0', '5'))).toBe(true);
      expect(s.deliveryId(problemDeliveryKey('0', '5'))).toBe(a!.deliveryId);
      expect(s.deliveryAlert(problemDeliveryKey('0', '5'))?.eventId).toBe('5');
      expect(s.deliveryAlertById(a!.deliveryId)?.eventId).toBe('5');
      expect(s.hasDelivery(recoveryDeliveryKey('0', '5'))).toBe(false);
      expect(s.deliveryId('nope')).toBeUndefined();
      expect(s.deliveryAlert('nope')).toBeUndefined();
      expect(s.deliveryAlertById(a!.deliveryId + 100)).toBeUndefined();
      expect(s.lastDeliveryId()).toBe(a!.deliveryId);
    });

    it('hands out deliveries after the decided position, in order, up to a limit and up to `throughId`', () => {
      const s = store();
      const ids = s.acceptDeliveries([1, 2, 3, 4, 5].map((i) => delivery(`k${i}`))).map((a) => a.deliveryId);
      expect(s.unprocessedDeliveries(2).map((d) => d.id)).toEqual(ids.slice(0, 2));
      expect(s.unprocessedDeliveries(10, ids[2]).map((d) => d.id)).toEqual(ids.slice(0, 3));
      s.markProcessed(ids[1]!);
      expect(s.unprocessedDeliveries(10).map((d) => d.id)).toEqual(ids.slice(2));
      expect(s.unprocessedDeliveries(10, ids[1]!)).toEqual([]);
      expect(s.stats().unprocessed).toBe(3);
    });

    it('finds the updates of one event delivered before a delivery, in order, whether decided or not', () => {
      const s = store();
      const u = (eventId: string, digest: string) => `${updateKeyPrefix('0', eventId)}${digest}`;
      const ids = s
        .acceptDeliveries([
          delivery(u('1', 'b'), T, '1'), // before, decided
          delivery(u('10', 'a'), T, '10'), // another event whose id starts the same
          delivery(problemDeliveryKey('0', '1'), T, '1'), // the problem itself is no update
          delivery(u('1', 'a'), T, '1'), // before, not decided
          delivery(u('2', 'a'), T, '2'), // another event
          delivery(u('1', 'c'), T, '1'), // the delivery asked about
          delivery(u('1', 'd'), T, '1'), // after it
        ])
        .map((a) => a.deliveryId);
      s.markProcessed(ids[0]!);
      expect(s.earlierUpdates('0', '1', ids[5]!).map((d) => d.id)).toEqual([ids[0], ids[3]]);
      expect(s.earlierUpdates('0', '1', ids[0]!)).toEqual([]);
      expect(s.earlierUpdates('3', '1', ids[6]! + 1)).toEqual([]); // another event source
      expect(s.earlierUpdates('0', '1', ids[6]! + 1)[0]).toMatchObject({ id: ids[0], receivedAt: T, alert: { eventId: '1' } });
    });
  });

  describe('pruneDeliveries', () => {
    it('forgets decided deliveries past retention, but keeps the problems of open events and anything not decided', () => {
      const s = store();
      const ids = s
        .acceptDeliveries([
          delivery(problemDeliveryKey('0', '7'), T - 10_000, '7'), // its incident ended
          delivery(problemDeliveryKey('0', '8'), T - 10_000, '8'), // its event is still open
          delivery(`${updateKeyPrefix('0', '8')}ab`, T - 10_000, '8'), // an update of it is not kept
          delivery(problemDeliveryKey('0', '9'), T, '9'), // within retention
          delivery(problemDeliveryKey('0', '10'), T, '10'), // not decided yet
        ])
        .map((a) => a.deliveryId);
      s.markProcessed(ids[3]!);
      s.syncDecided();
      s.putIncident(incident('open'), T);
      s.putEvents('open', [{ eventId: '8', cycle: 1, open: true }]);
      expect(s.pruneDeliveries(T, 5_000)).toBe(2);
      expect(['7', '8', '9', '10'].map((e) => s.hasDelivery(problemDeliveryKey('0', e)))).toEqual([false, true, true, true]);
      expect(s.hasDelivery(`${updateKeyPrefix('0', '8')}ab`)).toBe(false);
      expect(s.unprocessedDeliveries(10).map((d) => d.id)).toEqual([ids[4]]);
    });

    it('prunes only behind the decided position on disk: decisions committed crash-safe are not enough', () => {
      const s = store();
      const ids = s.acceptDeliveries([1, 2, 3].map((i) => delivery(`k${i}`, T))).map((a) => a.deliveryId);
      s.markProcessed(ids[0]!);
      s.syncDecided(); // on disk through the first
      s.markProcessed(ids[2]!); // decided, not on disk: a power cut would take these back to decide again
      // All three are past retention, but the second and third are decided only in memory, and the retention
      // counts from the first of them.
      expect(s.pruneDeliveries(T + 40 * DAY, 7 * DAY)).toBe(0);
      expect(['k1', 'k2', 'k3'].map((k) => s.hasDelivery(k))).toEqual([true, true, true]);
      s.syncDecided();
      expect(s.pruneDeliveries(T + 40 * DAY, 7 * DAY)).toBe(3);
      expect(s.lastDeliveryId()).toBe(0);
    });

    it('counts the retention from the first alert still to decide: a recovery tombstone outlives a decision backlog', () => {
      const s = store();
      const [tombstone] = s.acceptDeliveries([delivery(recoveryDeliveryKey('0', '7'), T, '7'), delivery(problemDeliveryKey('0', '7'), T + 10, '7')]);
      s.markProcessed(tombstone!.deliveryId);
      s.syncDecided();
      expect(s.pruneDeliveries(T + 40 * DAY, 7 * DAY)).toBe(0);
      expect(s.hasDelivery(recoveryDeliveryKey('0', '7'))).toBe(true);
      s.markProcessed(tombstone!.deliveryId + 1);
      s.syncDecided();
      expect(s.pruneDeliveries(T + 40 * DAY, 7 * DAY)).toBe(2);
    });

    it('never gives a pruned delivery id again: a key accepted again after pruning is a new delivery after the decided position', () => {
      const s = store();
      const ids = s.acceptDeliveries([delivery('k1'), delivery('k2')]).map((a) => a.deliveryId);
      s.markProcessed(ids[1]!);
      s.syncDecided();
      expect(s.pruneDeliveries(T + 40 * DAY, 7 * DAY)).toBe(2);
      const [again] = s.acceptDeliveries([delivery('k2', T + 40 * DAY)]);
      expect(again!.duplicate).toBe(false);
      expect(again!.deliveryId).toBeGreaterThan(ids[1]!);
      expect(s.unprocessedDeliveries(10).map((d) => d.id)).toEqual([again!.deliveryId]);
    });
  });
});
