/**
 * The ActionQueue contract (core/ports.ts): the GLPI and Zabbix work, one lane per incident and kind,
 * run in order. What the dispatcher relies on: a lane runs one job at a time in queue order; a claim
 * counts an attempt; a held-back create waits for the decisions that could cancel it; dead letters
 * keep their reason and go back in order; nothing unfinished is ever pruned.
 */
import { describe, expect, it } from '@jest/globals';
import { queueJob } from '../../src/services/storm-control.js';
import { backends, freshStore } from './backends.js';
import { T, create, followup, incident, keyOf, reopen, solve, zabbixAck } from './store-samples.js';

const none = new Set<string>();

describe.each(backends)('ActionQueue ($name)', (backend) => {
  const store = freshStore(backend);

  describe('enqueue', () => {
    it('queues a job pending and untried, due at runAt, filed under the incident key in the lane of its kind', () => {
      const s = store();
      s.putIncident(incident('A'), T);
      const id = s.enqueue('A', 2, followup('x'), T + 5, T, 7);
      expect(s.job(id)).toEqual({
        id, fingerprint: 'A', key: keyOf('A'), lane: `glpi:${keyOf('A')}`, cycle: 2, type: 'followup', spec: followup('x'),
        status: 'pending', attempts: 0, nextAttemptAt: T + 5, deliveryId: 7, createdAt: T,
      });
      const ack = s.enqueue('A', 2, zabbixAck(), T, T);
      expect(s.job(ack)).toMatchObject({ lane: `zabbix:${keyOf('A')}`, type: 'zabbix_ack' });
      expect(s.job(ack)).not.toHaveProperty('deliveryId');
      expect(s.job(ack)).not.toHaveProperty('lastError');
    });

    it('takes the incident by its readable fingerprint or by its key (a Job): the same lane', () => {
      const s = store();
      const a = s.enqueue('A', 1, followup('by fingerprint'), T, T);
      const job = s.job(a)!;
      const b = s.enqueue(job, 1, solve(), T, T);
      expect(s.job(b)?.lane).toBe(job.lane);
      expect(s.claimReady(T, 10, none).map((j) => j.id)).toEqual([a]);
    });

    it('gives every job a new id, larger than any before, even after finished jobs are pruned', () => {
      const s = store();
      const ids = [s.enqueue('A', 1, followup('1'), T, T), s.enqueue('B', 1, followup('2'), T, T)];
      expect(ids[1]!).toBeGreaterThan(ids[0]!);
      for (const j of s.claimReady(T, 10, none)) s.completeJob(j.id, T);
      expect(s.pruneFinished(T + 1)).toBe(2);
      expect(s.enqueue('C', 1, followup('3'), T, T)).toBeGreaterThan(ids[1]!);
    });

    it('names the job by the incident readable fingerprint once the incident is known', () => {
      const s = store();
      const id = s.enqueue('host=srv|trigger=#1', 1, followup('x'), T, T);
      s.putIncident(incident('host=srv|trigger=#1'), T);
      expect(s.job(id)?.fingerprint).toBe('host=srv|trigger=#1');
      expect(s.job(id)?.key).toBe(keyOf('host=srv|trigger=#1'));
    });
  });

  describe('claimReady', () => {
    it('claims the head of each lane only: one job per lane at a time, in queue order, lanes in parallel', () => {
      const s = store();
      const a1 = s.enqueue('A', 1, reopen('a1'), T, T);
      const a2 = s.enqueue('A', 1, followup('a2'), T, T);
      const b1 = s.enqueue('B', 1, reopen('b1'), T, T);
      expect(s.claimReady(T, 10, none).map((j) => j.id)).toEqual([a1, b1]);
      expect(s.claimReady(T, 10, none)).toEqual([]); // a2 waits while a1 runs
      s.completeJob(b1, T);
      expect(s.claimReady(T, 10, none)).toEqual([]);
      s.completeJob(a1, T);
      expect(s.claimReady(T, 10, none).map((j) => j.id)).toEqual([a2]);
    });

    it('marks the claimed job running with one more attempt, and hands it out as such', () => {
      const s = store();
      const id = s.enqueue('A', 1, followup('x'), T, T);
      const [job] = s.claimReady(T + 3, 10, none);
      expect(job).toMatchObject({ id, status: 'running', attempts: 1, spec: followup('x'), key: keyOf('A') });
      expect(s.job(id)).toMatchObject({ status: 'running', attempts: 1 });
      s.rescheduleJob(id, T + 10, 'GLPI_TIMEOUT', T + 4);
      expect(s.claimReady(T + 10, 10, none)[0]).toMatchObject({ id, attempts: 2, lastError: 'GLPI_TIMEOUT' });
    });

    it('runs the GLPI lane and the Zabbix lane of one incident independently', () => {
      const s = store();
      const glpi = s.enqueue('A', 1, followup('x'), T, T);
      const zbx = s.enqueue('A', 1, zabbixAck(), T, T);
      expect(s.claimReady(T, 10, none).map((j) => j.id)).toEqual([glpi, zbx]);
    });

    it('hands out due heads earliest first, then in queue order, at most `limit`', () => {
      const s = store();
      const a = s.enqueue('A', 1, followup('a'), T + 2, T);
      const b = s.enqueue('B', 1, followup('b'), T + 1, T);
      const c = s.enqueue('C', 1, followup('c'), T + 1, T);
      expect(s.claimReady(T + 2, 2, none).map((j) => j.id)).toEqual([b, c]);
      expect(s.claimReady(T + 2, 2, none).map((j) => j.id)).toEqual([a]);
    });

    it('hands out nothing before its time, and a head not due holds back its whole lane', () => {
      const s = store();
      const held = s.enqueue('A', 1, create(30_000), T + 30_000, T);
      const behind = s.enqueue('A', 1, followup('acknowledged'), T, T);
      expect(s.claimReady(T + 29_999, 10, none)).toEqual([]);
      expect(s.claimReady(T + 30_000, 10, none).map((j) => j.id)).toEqual([held]);
      s.completeJob(held, T + 30_001);
      expect(s.claimReady(T + 30_001, 10, none).map((j) => j.id)).toEqual([behind]);
    });

    it('skips the lanes named busy (jobs running in this process), and only those', () => {
      const s = store();
      const a = s.enqueue('A', 1, followup('a'), T, T);
      const b = s.enqueue('B', 1, followup('b'), T, T);
      expect(s.claimReady(T, 10, new Set([s.job(a)!.lane])).map((j) => j.id)).toEqual([b]);
      expect(s.claimReady(T, 10, none).map((j) => j.id)).toEqual([a]);
    });

    it('holds an untried create due after the create horizon (a delivery before it is undecided), not a retried one nor other jobs', () => {
      const s = store();
      const held = s.enqueue('A', 1, create(30_000), T + 30_000, T);
      const other = s.enqueue('B', 1, followup('b'), T + 30_000, T);
      expect(s.claimReady(T + 60_000, 10, none, T + 29_999).map((j) => j.id)).toEqual([other]);
      expect(s.claimReady(T + 60_000, 10, none, T + 30_000).map((j) => j.id)).toEqual([held]);
      // Tried once already (it may have landed in GLPI): the horizon no longer holds it.
      s.rescheduleJob(held, T + 40_000, 'GLPI_TIMEOUT', T + 30_000);
      expect(s.claimReady(T + 60_000, 10, none, T).map((j) => j.id)).toEqual([held]);
    });

    it('finds due jobs behind any number of held creates earlier in the queue (a storm of new incidents starves no lane)', () => {
      const s = store();
      // More held creates than the claim's limit, all due earlier than the follow-up: it must still be found.
      for (let i = 0; i < 40; i++) s.enqueue(`new-${i}`, 1, create(30_000), T + 30_000, T);
      const due = s.enqueue('B', 1, followup('b'), T + 30_001, T);
      expect(s.claimReady(T + 60_000, 4, none, T + 29_999).map((j) => j.id)).toEqual([due]);
    });

    it('claims nothing from an empty queue, and a claim of zero jobs changes nothing', () => {
      const s = store();
      expect(s.claimReady(T, 10, none)).toEqual([]);
      const id = s.enqueue('A', 1, followup('x'), T, T);
      expect(s.claimReady(T, 0, none)).toEqual([]);
      expect(s.job(id)).toMatchObject({ status: 'pending', attempts: 0 });
    });
  });

  describe('outcomes', () => {
    it('completes a job (its error cleared) and lets the next of its lane run', () => {
      const s = store();
      const a1 = s.enqueue('A', 1, followup('1'), T, T);
      const a2 = s.enqueue('A', 1, followup('2'), T, T);
      s.claimReady(T, 10, none);
      s.rescheduleJob(a1, T, 'GLPI_TIMEOUT', T);
      s.claimReady(T, 10, none);
      s.completeJob(a1, T + 1);
      expect(s.job(a1)).toMatchObject({ status: 'done', attempts: 2 });
      expect(s.job(a1)).not.toHaveProperty('lastError');
      expect(s.claimReady(T + 1, 10, none).map((j) => j.id)).toEqual([a2]);
    });

    it('reschedules a job with its error, its attempts kept; it stays the head of its lane', () => {
      const s = store();
      const a1 = s.enqueue('A', 1, followup('1'), T, T);
      const a2 = s.enqueue('A', 1, followup('2'), T, T);
      s.claimReady(T, 10, none);
      s.rescheduleJob(a1, T + 1000, 'GLPI_UNAVAILABLE 503', T);
      expect(s.job(a1)).toMatchObject({ status: 'pending', attempts: 1, nextAttemptAt: T + 1000, lastError: 'GLPI_UNAVAILABLE 503' });
      expect(s.claimReady(T + 999, 10, none)).toEqual([]);
      expect(s.claimReady(T + 1000, 10, none).map((j) => j.id)).toEqual([a1]);
      expect(s.job(a2)?.status).toBe('pending');
    });

    it('keeps dead letters with their reason; a dead letter leaves its lane (the jobs behind it run)', () => {
      const s = store();
      const a1 = s.enqueue('A', 1, followup('1'), T, T);
      const a2 = s.enqueue('A', 1, followup('2'), T, T);
      s.claimReady(T, 10, none);
      s.buryJob(a1, 'GLPI_PERMANENT ERROR_GLPI_ADD: bad category', T);
      expect(s.jobs('dead')).toEqual([expect.objectContaining({ id: a1, status: 'dead', attempts: 1, lastError: 'GLPI_PERMANENT ERROR_GLPI_ADD: bad category' })]);
      expect(s.stats()).toMatchObject({ dead: 1, pending: 1, running: 0 });
      expect(s.claimReady(T, 10, none).map((j) => j.id)).toEqual([a2]);
    });

    it('retries dead letters in order: a retried job runs before the later jobs of its lane, and lanes by queue order', () => {
      const s = store();
      const a1 = s.enqueue('A', 1, followup('a1'), T, T);
      const b1 = s.enqueue('B', 1, followup('b1'), T, T);
      s.claimReady(T, 10, none);
      s.buryJob(b1, 'GLPI_PERMANENT b', T);
      s.buryJob(a1, 'GLPI_PERMANENT a', T);
      const a2 = s.enqueue('A', 1, followup('a2'), T + 500, T); // queued behind the dead letter, not run yet
      expect(s.retryDead('all', T + 100)).toBe(2);
      expect(s.jobs('dead')).toEqual([]);
      expect(s.job(a1)).toMatchObject({ status: 'pending', nextAttemptAt: T + 100, lastError: 'GLPI_PERMANENT a' });
      expect(s.claimReady(T + 1000, 10, none).map((j) => j.id)).toEqual([a1, b1]);
      expect(s.claimReady(T + 1000, 10, none)).toEqual([]); // a2 waits for a1 again
      s.completeJob(a1, T + 1000);
      expect(s.claimReady(T + 1000, 10, none).map((j) => j.id)).toEqual([a2]);
    });

    it('retries one dead letter by id, and only a dead one', () => {
      const s = store();
      const a = s.enqueue('A', 1, followup('a'), T, T);
      const b = s.enqueue('B', 1, followup('b'), T, T);
      s.claimReady(T, 10, none);
      s.buryJob(a, 'x', T);
      s.buryJob(b, 'y', T);
      expect(s.retryDead(b, T)).toBe(1);
      expect(s.retryDead(b, T)).toBe(0);
      expect(s.retryDead(9999, T)).toBe(0);
      expect(s.jobs('dead').map((j) => j.id)).toEqual([a]);
      expect(s.jobs('pending').map((j) => j.id)).toEqual([b]);
    });

    it('puts jobs left running by a stop back in the queue, their attempt counted', () => {
      const s = store();
      const a = s.enqueue('A', 1, followup('a'), T, T);
      s.enqueue('B', 1, followup('b'), T + 5_000, T);
      s.claimReady(T, 10, none);
      expect(s.requeueRunning(T + 1)).toBe(1);
      expect(s.requeueRunning(T + 1)).toBe(0);
      expect(s.job(a)).toMatchObject({ status: 'pending', attempts: 1 });
      expect(s.claimReady(T + 1, 10, none)[0]).toMatchObject({ id: a, attempts: 2 });
    });
  });

  describe('cancelCycle', () => {
    it('cancels the pending GLPI jobs of one cycle (a held-back create and what queued behind it), not other cycles nor write-backs', () => {
      const s = store();
      const held = s.enqueue('A', 1, create(30_000), T + 30_000, T);
      const behind = s.enqueue('A', 1, followup('acknowledged'), T, T);
      const ack = s.enqueue('A', 1, zabbixAck(), T + 60_000, T);
      const next = s.enqueue('A', 2, followup('other cycle'), T, T);
      const other = s.enqueue('B', 1, followup('other incident'), T + 60_000, T);
      expect(s.cancelCycle('A', 1, T + 1)).toBe(2);
      expect([held, behind, ack, next, other].map((id) => s.job(id)?.status)).toEqual(['cancelled', 'cancelled', 'pending', 'pending', 'pending']);
      // Cancelled jobs hold no lane back.
      expect(s.claimReady(T + 60_000, 10, none).map((j) => j.id)).toEqual([next, ack, other]);
    });

    it('leaves a job that already started alone', () => {
      const s = store();
      const c = s.enqueue('B', 1, create(), T, T);
      s.claimReady(T, 10, none);
      expect(s.cancelCycle('B', 1, T + 1)).toBe(0);
      expect(s.job(c)?.status).toBe('running');
    });
  });

  describe('storm control (lastQueued, replaceJobSpec)', () => {
    it('tells the newest job of a lane still pending or running, per lane', () => {
      const s = store();
      expect(s.lastQueued('A', 'glpi')).toBeUndefined();
      s.enqueue('A', 1, followup('1'), T, T);
      const a2 = s.enqueue('A', 3, followup('2'), T, T);
      const ack = s.enqueue('A', 3, zabbixAck(), T, T);
      expect(s.lastQueued('A', 'glpi')).toEqual({ id: a2, cycle: 3, spec: followup('2'), status: 'pending', attempts: 0 });
      expect(s.lastQueued('A', 'zabbix')).toMatchObject({ id: ack });
      expect(s.lastQueued('B', 'glpi')).toBeUndefined();
      for (const j of s.claimReady(T, 10, none)) s.completeJob(j.id, T);
      const [running] = s.claimReady(T, 10, none);
      expect(running?.id).toBe(a2);
      expect(s.lastQueued('A', 'glpi')).toMatchObject({ id: a2, status: 'running', attempts: 1 });
      s.completeJob(a2, T);
      expect(s.lastQueued('A', 'glpi')).toBeUndefined();
    });

    it('replaces a job payload in place: same id, same place in its lane', () => {
      const s = store();
      const a1 = s.enqueue('A', 1, followup('1'), T, T);
      const a2 = s.enqueue('A', 1, followup('2'), T, T);
      s.replaceJobSpec(a1, { type: 'update_ticket', urgency: 5, impact: 5, lines: ['1', 'raised'], isPrivate: false }, T + 1);
      expect(s.job(a1)).toMatchObject({ type: 'update_ticket', spec: { type: 'update_ticket', urgency: 5 } });
      expect(s.claimReady(T, 10, none).map((j) => j.id)).toEqual([a1]);
      expect(s.job(a2)?.status).toBe('pending');
    });

    it('with queueJob: a storm merges into the untried job of its lane, never into one already claimed', () => {
      const s = store();
      const first = queueJob(s, 'A', 1, followup('one'), T, T);
      expect(queueJob(s, 'A', 1, followup('two'), T, T)).toBe(first);
      expect(s.job(first)?.spec).toEqual({ type: 'followup', lines: ['one', 'two'], isPrivate: false });
      s.claimReady(T, 1, none);
      const third = queueJob(s, 'A', 1, followup('three'), T, T);
      expect(third).not.toBe(first);
      expect(s.jobs('pending').map((j) => j.id)).toEqual([third]);
    });
  });

  describe('reading and pruning', () => {
    it('tells the earliest time a pending job is due, none when nothing is pending', () => {
      const s = store();
      expect(s.nextDueAt()).toBeUndefined();
      s.enqueue('A', 1, followup('a'), T + 5, T);
      s.enqueue('B', 1, followup('b'), T + 3, T);
      expect(s.nextDueAt()).toBe(T + 3);
      const claimed = s.claimReady(T + 10, 10, none);
      expect(s.nextDueAt()).toBeUndefined(); // running jobs are not due
      s.buryJob(claimed[0]!.id, 'x', T + 10);
      s.completeJob(claimed[1]!.id, T + 10);
      expect(s.nextDueAt()).toBeUndefined(); // nor dead or done ones
    });

    it('lists jobs of one status in queue order, up to a limit', () => {
      const s = store();
      const ids = [1, 2, 3].map((i) => s.enqueue(`F${i}`, 1, followup(String(i)), T, T));
      expect(s.jobs('pending').map((j) => j.id)).toEqual(ids);
      expect(s.jobs('pending', 2).map((j) => j.id)).toEqual(ids.slice(0, 2));
      expect(s.jobs('running')).toEqual([]);
      expect(s.job(9999)).toBeUndefined();
    });

    it('counts pending, running and dead jobs and the oldest unfinished one', () => {
      const s = store();
      expect(s.stats()).toMatchObject({ pending: 0, running: 0, dead: 0 });
      expect(s.stats()).not.toHaveProperty('oldestPendingAt');
      s.enqueue('A', 1, followup('a'), T, T - 50);
      s.enqueue('B', 1, followup('b'), T + 9_000, T - 10);
      const c = s.enqueue('C', 1, followup('c'), T, T - 100);
      s.claimReady(T, 1, none); // A (due with C, queued first)
      s.enqueue('D', 1, followup('d'), T, T);
      expect(s.stats()).toMatchObject({ pending: 3, running: 1, dead: 0, oldestPendingAt: T - 100 });
      s.claimReady(T, 10, none);
      s.buryJob(c, 'x', T);
      expect(s.stats()).toMatchObject({ pending: 1, running: 2, dead: 1, oldestPendingAt: T - 50 });
    });

    it('prunes finished and cancelled jobs older than `before`, never pending, running or dead ones', () => {
      const s = store();
      const done = s.enqueue('A', 1, followup('a'), T, T);
      const dead = s.enqueue('B', 1, followup('b'), T, T);
      const running = s.enqueue('C', 1, followup('c'), T, T);
      const pending = s.enqueue('D', 1, followup('d'), T + 99_000, T);
      const cancelled = s.enqueue('E', 1, create(), T + 99_000, T);
      s.claimReady(T, 10, none);
      s.completeJob(done, T + 1);
      s.buryJob(dead, 'x', T + 1);
      s.cancelCycle('E', 1, T + 1);
      const recent = s.enqueue('F', 1, followup('f'), T, T);
      s.claimReady(T + 2, 10, none);
      s.completeJob(recent, T + 50_000);
      expect(s.pruneFinished(T + 10_000)).toBe(2);
      expect([done, dead, running, pending, cancelled, recent].map((id) => s.job(id)?.status)).toEqual([undefined, 'dead', 'running', 'pending', undefined, 'done']);
    });
  });
});
