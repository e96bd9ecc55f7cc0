/**
 * The StateTransactions contract: every port call made inside `fn` commits together or not at all. What
 * the processor relies on: a batch of decisions (incidents, events, jobs, parked deliveries, the decided
 * position) is one commit, and a throw leaves the state as if the batch never ran, so it is decided
 * again, once. Durability: only a power-safe commit moves the position the inbox is pruned behind.
 */
import { describe, expect, it } from '@jest/globals';
import type { ContractStore } from './backends.js';
import { backends, freshStore } from './backends.js';
import { T, alert, create, followup, incident } from './store-samples.js';

const none = new Set<string>();
const DAY = 86_400_000;

/** Everything a reader of the state can see (the inbox aside). */
function snapshot(s: ContractStore): unknown {
  return {
    incidents: ['A', 'B'].map((f) => s.getIncident(f)),
    events: ['1', '2'].map((e) => s.eventInfo(e)),
    open: s.openIncidentEvents().sort(),
    tickets: [s.ticketId('A', 1), s.ticketId('B', 1)],
    jobs: (['pending', 'running', 'done', 'dead', 'cancelled'] as const).map((st) => s.jobs(st)),
    through: s.processedThrough(),
    parked: s.parkedDeliveries(),
    stats: s.stats(),
    next: s.nextDueAt(),
  };
}

class Boom extends Error {}

describe.each(backends)('StateTransactions ($name)', (backend) => {
  const store = freshStore(backend);

  /** Some state to change: incident A open with a ticket, an event, a job running and one pending. */
  function seeded(): ContractStore {
    const s = store();
    s.acceptDeliveries([1, 2, 3].map((i) => ({ key: `k${i}`, receivedAt: T, alert: alert() })));
    s.putIncident(incident('A'), T);
    s.putEvents('A', [{ eventId: '1', cycle: 1, open: true }]);
    s.putTicket('A', 1, 41, 'm', T);
    s.enqueue('A', 1, followup('running'), T, T);
    s.enqueue('A', 1, followup('pending'), T, T);
    s.claimReady(T, 10, none);
    s.markProcessed(1);
    return s;
  }

  it('commits every change made in fn, and returns what fn returns', () => {
    const s = seeded();
    const id = s.transaction(() => {
      s.putIncident(incident('B'), T);
      s.markProcessed(2);
      return s.enqueue('B', 1, create(), T, T);
    }, 'crash-safe');
    expect(s.job(id)?.type).toBe('create_ticket');
    expect(s.getIncident('B')).toBeDefined();
    expect(s.processedThrough()).toBe(2);
  });

  it('rolls back every change made in fn when it throws, whatever the port, and rethrows the same error', () => {
    const s = seeded();
    const before = snapshot(s);
    const [running] = s.jobs('running');
    const error = new Boom('decision failed');
    let thrown: unknown;
    try {
      s.transaction(() => {
        s.putIncident(incident('A', 'solved', { solvedAt: T }), T + 1);
        s.putIncident(incident('B'), T + 1);
        s.putEvents('A', [{ eventId: '1', cycle: 1, open: false }, { eventId: '2', cycle: 1, open: true }]);
        s.moveOpenEvents('A', 1, 2);
        s.putTicket('A', 1, 99, 'm2', T + 1);
        s.putTicket('B', 1, 98, 'm3', T + 1);
        s.completeJob(running!.id, T + 1);
        s.enqueue('B', 1, create(), T, T + 1);
        s.cancelCycle('A', 1, T + 1);
        s.replaceJobSpec(running!.id, followup('changed'), T + 1);
        s.markProcessed(3);
        s.parkDelivery(2, '2', 'problem', 'x', T + 1);
        s.pruneIncidents(T + 10);
        s.pruneFinished(T + 10);
        s.requeueRunning(T + 1);
        s.recordStart(T + 1);
        throw error;
      }, 'crash-safe');
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBe(error);
    expect(snapshot(s)).toEqual(before);
  });

  it('rolls back claims, dead letters and their retries', () => {
    const s = store();
    const a = s.enqueue('A', 1, followup('a'), T, T);
    const b = s.enqueue('B', 1, followup('b'), T, T);
    s.claimReady(T, 1, none);
    s.buryJob(a, 'GLPI_PERMANENT', T);
    const before = snapshot(s);
    expect(() =>
      s.transaction(() => {
        s.claimReady(T, 10, none);
        s.rescheduleJob(b, T + 5, 'x', T);
        s.retryDead('all', T);
        s.claimReady(T, 10, none);
        throw new Boom();
      }),
    ).toThrow(Boom);
    expect(snapshot(s)).toEqual(before);
    expect(s.claimReady(T, 10, none).map((j) => [j.id, j.attempts])).toEqual([[b, 1]]);
  });

  it('after a rollback, the next commit goes on as if the rolled-back one never ran', () => {
    const s = store();
    const first = s.enqueue('A', 1, followup('a'), T, T);
    expect(() =>
      s.transaction(() => {
        s.enqueue('A', 1, followup('lost'), T, T);
        throw new Boom();
      }),
    ).toThrow(Boom);
    const next = s.enqueue('A', 1, followup('b'), T, T);
    expect(next).toBeGreaterThan(first);
    expect(s.jobs('pending').map((j) => j.spec)).toEqual([followup('a'), followup('b')]);
  });

  it('sees its own changes inside fn', () => {
    const s = store();
    s.transaction(() => {
      s.putIncident(incident('A'), T);
      const id = s.enqueue('A', 1, followup('x'), T, T);
      expect(s.getIncident('A')?.status).toBe('open');
      expect(s.lastQueued('A', 'glpi')?.id).toBe(id);
      expect(s.claimReady(T, 10, none).map((j) => j.id)).toEqual([id]);
    });
    expect(s.jobs('running')).toHaveLength(1);
  });

  it('joins a nested transaction to the outer one: the outer throw rolls back what the inner one did', () => {
    const s = store();
    expect(() =>
      s.transaction(() => {
        const inner = s.transaction(() => {
          s.putIncident(incident('A'), T);
          return s.enqueue('A', 1, followup('x'), T, T);
        }, 'power-safe');
        expect(s.job(inner)).toBeDefined();
        throw new Boom();
      }, 'crash-safe'),
    ).toThrow(Boom);
    expect(s.getIncident('A')).toBeUndefined();
    expect(s.jobs('pending')).toEqual([]);
  });

  it('refuses a function that returns a promise (its awaited part would run outside), and keeps none of its changes', () => {
    const s = store();
    expect(() =>
      s.transaction(() => {
        s.putIncident(incident('A'), T);
        return Promise.resolve(1);
      }),
    ).toThrow(TypeError);
    expect(s.getIncident('A')).toBeUndefined();
  });

  it('leaves the inbox alone: deliveries are not part of the state', () => {
    const s = store();
    expect(() =>
      s.transaction(() => {
        s.acceptDeliveries([{ key: 'k1', receivedAt: T, alert: alert() }]);
        throw new Boom();
      }),
    ).toThrow(Boom);
    expect(s.hasDelivery('k1')).toBe(true);
  });

  it('moves the position the inbox is pruned behind only with a power-safe commit', () => {
    const s = store();
    s.acceptDeliveries([1, 2].map((i) => ({ key: `k${i}`, receivedAt: T, alert: alert() })));
    s.transaction(() => s.markProcessed(2), 'crash-safe');
    expect(s.pruneDeliveries(T + 40 * DAY, 7 * DAY)).toBe(0);
    s.transaction(() => s.putIncident(incident('A'), T), 'crash-safe');
    expect(s.pruneDeliveries(T + 40 * DAY, 7 * DAY)).toBe(0);
    s.transaction(() => undefined, 'power-safe');
    expect(s.pruneDeliveries(T + 40 * DAY, 7 * DAY)).toBe(2);
  });

  it('a power-safe commit that throws moves nothing either', () => {
    const s = store();
    s.acceptDeliveries([1, 2].map((i) => ({ key: `k${i}`, receivedAt: T, alert: alert() })));
    s.markProcessed(2);
    expect(() =>
      s.transaction(() => {
        throw new Boom();
      }, 'power-safe'),
    ).toThrow(Boom);
    expect(s.pruneDeliveries(T + 40 * DAY, 7 * DAY)).toBe(0);
  });
});
