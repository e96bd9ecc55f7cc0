/**
 * The processor's unit tests: the in-memory store (its contract with SQLite is test/contract/), a fixed
 * clock, the real rules (config/rules.example.yaml) and the core's decisions. No file, no thread, no timer
 * unless a test asks for one. The processor on SQLite, with the cases found by the model test, is
 * test/services/processor.test.ts.
 */
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { pino } from 'pino';
import { nodeDigests } from '../../src/adapters/digests.js';
import { MemoryStore } from '../../src/adapters/store/memory/memory-store.js';
import type { Alert, AlertKind } from '../../src/core/alert.js';
import type { ProcessingSettings } from '../../src/core/assess.js';
import type { Incident, Policy } from '../../src/core/decide.js';
import { deliveryKey, fingerprintKey } from '../../src/core/fingerprint.js';
import type { Accepted, Digests } from '../../src/core/ports.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { MAX_HOLD_MS, Processor } from '../../src/services/processor.js';
import { cpuAlert, exampleRules } from '../helpers/fixtures.js';

const T = 1_800_000_000_000;
const FP = 'host=srv|trigger=#100';
const none = new Set<string>();

const basePolicy: Policy = {
  holdDownMs: 0,
  reopenWindowMs: 3_600_000,
  recovery: 'solve',
  followupPrivate: false,
  writeBackPrefix: '[glpi-bridge]',
  markerKey: 'processor-unit-test-key-0123456789',
  digests: nodeDigests,
};

interface Harness {
  readonly store: MemoryStore;
  readonly processor: Processor;
  /** Alerts received at the given times (ms after T), durable at once (the intake's part). */
  receive(...items: [Alert, number][]): Accepted[];
  /** Decide everything received, the clock at T + at. Returns how many deliveries were decided. */
  decide(at: number): number;
  readonly queued: () => number;
}

function harness(over: Partial<Policy> = {}, store = new MemoryStore(), intakeBusy?: () => boolean, metrics = createMetrics({ processMetrics: false })): Harness {
  let now = T;
  let queued = 0;
  const settings: ProcessingSettings = { rules: exampleRules(), policy: { ...basePolicy, ...over }, fingerprintFields: ['host', 'trigger'], coalesceWindowMs: 0 };
  const processor = new Processor(store, () => settings, { now: () => now }, pino({ level: 'silent' }), metrics, () => queued++, intakeBusy);
  return {
    store,
    processor,
    receive: (...items) => {
      const accepted = store.acceptDeliveries(items.map(([a, at]) => ({ key: deliveryKey(a, nodeDigests), receivedAt: T + at, alert: a })));
      processor.admit(store.lastDeliveryId());
      return accepted;
    },
    decide: (at) => {
      now = T + at;
      return processor.drain();
    },
    queued: () => queued,
  };
}

const alert = (kind: AlertKind, eventId = '10', over: Partial<Alert> = {}): Alert => cpuAlert(kind, { eventId, ...over });
const ack = (eventId: string, message: string): Alert =>
  alert('update', eventId, { update: { action: 'acknowledged', message, user: 'Ann', at: message, acknowledged: true, severityChanged: false, closed: false } });

/** What is queued, as [type, cycle] in queue order. */
const queue = (store: MemoryStore): [string, number][] => [...store.jobs('pending'), ...store.jobs('running')].sort((a, b) => a.id - b.id).map((j) => [j.type, j.cycle]);

/** Run the queue as a dispatcher that always succeeds would, returning the job types in the order run. */
function runQueue(store: MemoryStore, at: number): string[] {
  const ran: string[] = [];
  for (;;) {
    const jobs = store.claimReady(at, 10, none);
    if (jobs.length === 0) return ran;
    for (const j of jobs) {
      ran.push(j.type);
      store.completeJob(j.id, at);
    }
  }
}

describe('Processor (in-memory store, fixed clock)', () => {
  it('a problem opens an incident and queues the ticket creation, in one decision', () => {
    const h = harness();
    const [accepted] = h.receive([alert('problem'), 0]);
    expect(h.decide(1_000)).toBe(1);
    const incident = h.store.getIncident(FP);
    expect(incident).toMatchObject({ fingerprint: FP, cycle: 1, status: 'open', openCount: 1, occurrences: 1, severity: 'high', openedAt: T });
    const [job] = h.store.jobs('pending');
    expect(job).toMatchObject({
      type: 'create_ticket', cycle: 1, fingerprint: FP, key: fingerprintKey(FP, nodeDigests), deliveryId: accepted!.deliveryId, nextAttemptAt: T, attempts: 0,
      spec: { type: 'create_ticket', eventId: '10', ticket: { marker: incident!.marker } },
    });
    expect(h.store.jobs('pending')).toHaveLength(1);
    expect(h.store.eventInfo('10')).toEqual({ fingerprint: FP, cycle: 1, open: true });
    expect(h.store.processedThrough()).toBe(accepted!.deliveryId);
    expect(h.queued()).toBe(1);
    expect(h.decide(2_000)).toBe(0); // nothing decided twice
  });

  it('a recovery solves the incident: the solution runs after the creation, in its lane', () => {
    const h = harness();
    h.receive([alert('problem'), 0]);
    h.decide(1_000);
    h.receive([alert('recovery'), 60_000]);
    h.decide(61_000);
    expect(h.store.getIncident(FP)).toMatchObject({ status: 'solved', openCount: 0, solvedAt: T + 60_000 });
    expect(h.store.eventInfo('10')).toEqual({ fingerprint: FP, cycle: 1, open: false });
    expect(h.store.openIncidentEvents()).toEqual([]);
    expect(queue(h.store)).toEqual([['create_ticket', 1], ['solve', 1]]);
    expect(runQueue(h.store, T + 61_000)).toEqual(['create_ticket', 'solve']);
  });

  it('hold-down: a problem that recovers within it is a flap; its held-back creation and what queued behind it are cancelled', () => {
    const h = harness({ holdDownMs: 120_000 });
    h.receive([alert('problem'), 0]);
    h.decide(1_000);
    const [create] = h.store.jobs('pending');
    expect(create).toMatchObject({ type: 'create_ticket', nextAttemptAt: T + 120_000 });
    expect(h.store.claimReady(T + 60_000, 10, none)).toEqual([]); // held back
    h.receive([ack('10', 'looking'), 10_000], [alert('recovery'), 30_000]);
    h.decide(31_000);
    expect(h.store.getIncident(FP)).toMatchObject({ status: 'suppressed', openCount: 0 });
    expect(h.store.jobs('pending')).toEqual([]);
    expect(h.store.jobs('cancelled').map((j) => j.type)).toEqual(['create_ticket', 'followup']);
    expect(runQueue(h.store, T + 200_000)).toEqual([]);
  });

  it('hold-down is judged on when alerts were received, not when a backlog let them be decided', () => {
    const h = harness({ holdDownMs: 120_000 });
    h.receive([alert('problem'), 0], [alert('recovery'), 300_000]);
    h.decide(600_000);
    expect(h.store.getIncident(FP)?.status).toBe('solved');
    expect(queue(h.store)).toEqual([['create_ticket', 1], ['solve', 1]]);
  });

  it('a redelivery (a Zabbix retry, or the poller finding the same event) is the same delivery, decided once', () => {
    const h = harness();
    const [first] = h.receive([alert('problem'), 0]);
    const [again] = h.receive([alert('problem', '10', { source: 'poller' }), 5_000]);
    expect(again).toEqual({ deliveryId: first!.deliveryId, duplicate: true });
    expect(h.decide(6_000)).toBe(1);
    const [late] = h.receive([alert('problem'), 60_000]); // after the decision
    expect(late!.duplicate).toBe(true);
    expect(h.decide(61_000)).toBe(0);
    expect(queue(h.store)).toEqual([['create_ticket', 1]]);
    expect(h.store.getIncident(FP)?.occurrences).toBe(1);
  });

  it('an update Zabbix delivered before its problem is decided again behind the problem: the follow-up runs after the creation', () => {
    const h = harness();
    const [early] = h.receive([ack('10', 'seen early'), 0]);
    h.decide(1_000); // nothing to follow up yet: no incident
    expect(queue(h.store)).toEqual([]);
    h.receive([alert('problem'), 60_000]);
    h.decide(61_000);
    const jobs = h.store.jobs('pending');
    expect(jobs.map((j) => j.type)).toEqual(['create_ticket', 'followup']);
    expect(jobs[1]).toMatchObject({ deliveryId: early!.deliveryId, spec: { lines: expect.arrayContaining(['Message: seen early']) } });
    expect(runQueue(h.store, T + 61_000)).toEqual(['create_ticket', 'followup']);
  });

  it('a decision that throws parks its delivery, and the deliveries after it are still decided', () => {
    // The marker of event 13's ticket cannot be made (an internal error while deciding on it).
    const failing: Digests = {
      ...nodeDigests,
      hmacSha256Hex: (key, text) => {
        if (text.endsWith('\n13')) throw new Error('HMAC unavailable');
        return nodeDigests.hmacSha256Hex(key, text);
      },
    };
    const h = harness({ digests: failing });
    const [bad, good] = h.receive([alert('problem', '13', { triggerId: '113' }), 0], [alert('problem', '14', { triggerId: '114' }), 1_000]);
    expect(h.decide(2_000)).toBe(2);
    expect(h.store.parkedDeliveries()).toEqual([{ deliveryId: bad!.deliveryId, eventId: '13', kind: 'problem', error: 'HMAC unavailable', parkedAt: T + 2_000 }]);
    expect(h.store.stats()).toMatchObject({ parked: 1, unprocessed: 0 });
    expect(h.store.getIncident('host=srv|trigger=#113')).toBeUndefined();
    expect(h.store.jobs('pending').map((j) => [j.type, j.fingerprint, j.deliveryId])).toEqual([['create_ticket', 'host=srv|trigger=#114', good!.deliveryId]]);
    expect(h.store.processedThrough()).toBe(good!.deliveryId);
  });

  describe('a batch is one transaction', () => {
    afterEach(() => {
      jest.clearAllTimers();
      jest.useRealTimers();
    });

    /** A store whose commit of one incident fails (a full disk, say), until healed. */
    class FailingStore extends MemoryStore {
      failOn: string | undefined;
      override putIncident(incident: Incident, now: number): void {
        if (incident.fingerprint === this.failOn) throw new Error('database or disk is full');
        super.putIncident(incident, now);
      }
    }

    it('a failure while committing it rolls it back entirely; the batch is decided again, once, when the store works again', () => {
      jest.useFakeTimers({ now: T });
      const store = new FailingStore();
      store.failOn = 'host=srv|trigger=#200';
      const h = harness({}, store);
      h.receive([alert('problem', '10'), 0], [alert('problem', '20', { triggerId: '200' }), 1_000], [ack('10', 'on it'), 2_000]);
      expect(h.decide(3_000)).toBe(0);
      // Nothing of the batch is left: not the first incident (committed before the failure), its jobs, events or the position.
      expect(store.getIncident(FP)).toBeUndefined();
      expect(store.jobs('pending')).toEqual([]);
      expect(store.openIncidentEvents()).toEqual([]);
      expect(store.processedThrough()).toBe(0);
      expect(store.stats()).toMatchObject({ unprocessed: 3, parked: 0 });
      expect(h.queued()).toBe(0);
      store.failOn = undefined;
      expect(h.decide(4_000)).toBe(3);
      expect(store.jobs('pending').map((j) => [j.type, j.fingerprint])).toEqual([
        ['create_ticket', FP],
        ['create_ticket', 'host=srv|trigger=#200'],
        ['followup', FP],
      ]);
      expect(store.getIncident(FP)).toMatchObject({ status: 'open', occurrences: 1 });
      expect(store.openIncidentEvents().sort()).toEqual(['10', '20']);
      // The processor retries on its own a second later; by then there is nothing left to decide.
      jest.advanceTimersByTime(2_000);
      expect(store.jobs('pending')).toHaveLength(3);
    });
  });
});

describe('decisions yield to a saturated intake (issue 16: Zabbix is answered first)', () => {
  afterEach(() => {
    jest.useRealTimers();
  });

  /** Received alerts, then how many were decided after `ms` of timers. */
  async function scheduled(busy: () => boolean, ms: number, admitted?: number): Promise<{ decided: number; yieldedSeconds: number }> {
    jest.useFakeTimers({ now: T });
    const metrics = createMetrics({ processMetrics: false });
    const h = harness({}, new MemoryStore(), busy, metrics);
    h.receive([alert('problem', '10'), 0], [alert('problem', '20', { triggerId: '200' }), 0]);
    if (admitted !== undefined) h.processor.admit(admitted);
    h.processor.schedule();
    jest.advanceTimersByTime(ms);
    const decided = h.store.processedThrough();
    jest.useRealTimers();
    const yielded = await metrics.decisionsYielded.get();
    return { decided, yieldedSeconds: yielded.values[0]?.value ?? 0 };
  }

  it('an intake that is not queueing: new deliveries are decided after gathering (tens of milliseconds)', async () => {
    expect(await scheduled(() => false, 100)).toEqual({ decided: 2, yieldedSeconds: 0 });
  });

  it('while Zabbix queues on the intake, new deliveries wait', async () => {
    expect(await scheduled(() => true, 500)).toEqual({ decided: 0, yieldedSeconds: 0 });
  });

  it('however long the intake stays saturated, a batch is decided at least every second, and the wait is counted', async () => {
    const r = await scheduled(() => true, 1_200);
    expect(r.decided).toBe(2);
    expect(r.yieldedSeconds).toBeGreaterThanOrEqual(1);
  });

  it('decided as soon as the intake stops queueing', () => {
    let busy = true;
    jest.useFakeTimers({ now: T });
    const h = harness({}, new MemoryStore(), () => busy);
    h.receive([alert('problem', '10'), 0]);
    h.processor.schedule();
    jest.advanceTimersByTime(300);
    expect(h.store.processedThrough()).toBe(0);
    busy = false;
    jest.advanceTimersByTime(100);
    expect(h.store.processedThrough()).toBe(1);
  });

  it('not once the intake has been saturated for 30 s in a row: from then on deliveries are decided as they come, whatever the intake does', () => {
    jest.useFakeTimers({ now: T });
    const h = harness({}, new MemoryStore(), () => true);
    // A storm: a delivery every 100 ms, each on its own trigger; the largest number left undecided between them.
    let n = 0;
    const mostUndecided = (ms: number) => {
      let most = 0;
      for (let t = 0; t < ms; t += 100) {
        n++;
        h.receive([alert('problem', String(n), { triggerId: String(1000 + n) }), 0]);
        h.processor.schedule();
        jest.advanceTimersByTime(100);
        most = Math.max(most, n - h.store.processedThrough());
      }
      return most;
    };
    // Held: a batch a second (about ten deliveries wait at times), none decided after gathering.
    expect(mostUndecided(MAX_HOLD_MS - 1_000)).toBeGreaterThanOrEqual(8);
    mostUndecided(2_000);
    // Past the bound: each delivery is decided before the next one comes.
    expect(mostUndecided(5_000)).toBeLessThanOrEqual(1);
  });

  it('tells the dispatcher whether GLPI may be narrowed too: for 30 s of saturation in a row; a new saturation holds again', () => {
    let busy = true;
    const h = harness({}, new MemoryStore(), () => busy);
    h.receive([alert('problem', '10'), 0]);
    let now = 1_000;
    const lookEvery = (ms: number, until: number) => {
      let held = true;
      for (; now < until; now += ms) held = h.processor.holdsBack(now);
      return held;
    };
    expect(h.processor.holdsBack(now)).toBe(true);
    expect(lookEvery(500, 1_000 + MAX_HOLD_MS - 500)).toBe(true);
    expect(lookEvery(500, 1_000 + MAX_HOLD_MS + 1_000)).toBe(false);
    // Zabbix stops queueing, then floods again: a new hold.
    busy = false;
    expect(h.processor.holdsBack(now)).toBe(false);
    busy = true;
    expect(h.processor.holdsBack((now += 20))).toBe(true);
    // A saturation nobody looked at for seconds (nothing to decide meanwhile) has ended: the next look starts a new hold.
    expect(lookEvery(500, now + MAX_HOLD_MS + 1_000)).toBe(false);
    expect(h.processor.holdsBack((now += 5_000))).toBe(true);
  });
});
