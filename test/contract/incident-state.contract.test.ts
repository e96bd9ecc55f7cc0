/**
 * The IncidentState contract: incidents, the event index and the tickets of each cycle. What the
 * processor and the dispatcher rely on: an incident is found by its readable fingerprint and by its key
 * (what a Job carries), the same one; an event knows its incident cycle; a cycle "has a ticket" while a
 * create may still make it; pruning forgets only ended incidents with no job left, with everything
 * filed under them.
 */
import { describe, expect, it } from '@jest/globals';
import { backends, freshStore } from './backends.js';
import { T, create, followup, incident, keyOf } from './store-samples.js';

const none = new Set<string>();

describe.each(backends)('IncidentState ($name)', (backend) => {
  const store = freshStore(backend);

  describe('incidents', () => {
    it('keeps an incident as given, found by its readable fingerprint and by its key', () => {
      const s = store();
      const fp = 'host=srv|trigger=#100|tag:service=db,web';
      const inc = incident(fp, 'open', { ticketId: 41, holdUntil: T + 60_000, fields: ['host', 'trigger', 'tag:service'] });
      s.putIncident(inc, T);
      expect(s.getIncident(fp)).toEqual(inc);
      expect(s.getIncident({ key: keyOf(fp) })).toEqual(inc);
      expect(s.getIncident('host=srv|trigger=#101')).toBeUndefined();
    });

    it('files the incident under the same key a Job carries', () => {
      const s = store();
      s.putIncident(incident('A'), T);
      const job = s.job(s.enqueue('A', 1, followup('x'), T, T))!;
      expect(job.key).toBe(keyOf('A'));
      expect(s.getIncident(job)?.fingerprint).toBe('A');
    });

    it('replaces the incident on every put (a field left out is gone)', () => {
      const s = store();
      s.putIncident(incident('A', 'open', { holdUntil: T + 1 }), T);
      const solved = incident('A', 'solved', { solvedAt: T + 5, cycle: 2 });
      s.putIncident(solved, T + 5);
      expect(s.getIncident('A')).toEqual(solved);
    });

    it('hands out copies: changing a returned incident changes nothing stored', () => {
      const s = store();
      s.putIncident(incident('A', 'open', { fields: ['host'] }), T);
      const got = s.getIncident('A');
      (got?.fields as string[]).push('trigger');
      expect(s.getIncident('A')?.fields).toEqual(['host']);
    });

    it('lists the fingerprint definitions of open incidents, once each, those that recorded one', () => {
      const s = store();
      s.putIncident(incident('A', 'open', { fields: ['host', 'trigger'] }), T);
      s.putIncident(incident('B', 'open', { fields: ['host', 'trigger'] }), T);
      s.putIncident(incident('C', 'open', { fields: ['host', 'trigger_name'] }), T);
      s.putIncident(incident('D', 'solved', { fields: ['host', 'item_key'] }), T);
      s.putIncident(incident('E', 'open'), T);
      expect(s.openIncidentDefinitions().map((d) => d.join(',')).sort()).toEqual(['host,trigger', 'host,trigger_name']);
    });
  });

  describe('events', () => {
    it('indexes each event under its incident cycle; an event recorded again changes its cycle or state', () => {
      const s = store();
      s.putIncident(incident('A'), T);
      s.putEvents('A', [{ eventId: '1', cycle: 1, open: true }, { eventId: '2', cycle: 1, open: true }]);
      expect(s.eventInfo('1')).toEqual({ fingerprint: 'A', cycle: 1, open: true });
      s.putEvents('A', [{ eventId: '1', cycle: 1, open: false }]);
      expect(s.eventInfo('1')).toEqual({ fingerprint: 'A', cycle: 1, open: false });
      expect(s.eventInfo('3')).toBeUndefined();
      expect(s.openIncidentEvents()).toEqual(['2']);
    });

    it('lists the open events of every incident (what the poller checks against Zabbix)', () => {
      const s = store();
      s.putIncident(incident('A'), T);
      s.putIncident(incident('B'), T);
      s.putEvents('A', [{ eventId: '1', cycle: 1, open: true }, { eventId: '3', cycle: 1, open: false }]);
      s.putEvents('B', [{ eventId: '2', cycle: 4, open: true }]);
      expect(s.openIncidentEvents().sort()).toEqual(['1', '2']);
    });

    it('tells the latest open event of a cycle (the one recorded last), and none when all recovered', () => {
      const s = store();
      s.putIncident(incident('A'), T);
      s.putEvents('A', [{ eventId: '10', cycle: 1, open: true }, { eventId: '9', cycle: 1, open: true }, { eventId: '11', cycle: 2, open: true }]);
      expect(s.latestOpenEvent('A', 1)).toBe('9');
      s.putEvents('A', [{ eventId: '9', cycle: 1, open: false }]);
      expect(s.latestOpenEvent('A', 1)).toBe('10');
      s.putEvents('A', [{ eventId: '10', cycle: 1, open: false }]);
      expect(s.latestOpenEvent('A', 1)).toBeUndefined();
      expect(s.latestOpenEvent('B', 1)).toBeUndefined();
    });

    it('moves the open events of a cycle to a new one (its ticket was closed in GLPI), not the recovered ones', () => {
      const s = store();
      s.putIncident(incident('A'), T);
      s.putIncident(incident('B'), T);
      s.putEvents('A', [{ eventId: '1', cycle: 1, open: true }, { eventId: '2', cycle: 1, open: false }, { eventId: '3', cycle: 3, open: true }]);
      s.putEvents('B', [{ eventId: '4', cycle: 1, open: true }]);
      s.moveOpenEvents('A', 1, 2);
      expect(['1', '2', '3', '4'].map((e) => s.eventInfo(e)?.cycle)).toEqual([2, 1, 3, 1]);
      expect(s.latestOpenEvent('A', 2)).toBe('1');
    });
  });

  describe('tickets', () => {
    it('records the ticket of each cycle', () => {
      const s = store();
      s.putTicket('A', 1, 41, '[zbx:1]', T);
      s.putTicket({ key: keyOf('A') }, 2, 42, '[zbx:2]', T);
      s.putTicket('A', 1, 43, '[zbx:1]', T + 1); // found again (adopted by its marker)
      expect([s.ticketId('A', 1), s.ticketId('A', 2), s.ticketId('A', 3), s.ticketId('B', 1)]).toEqual([43, 42, undefined, undefined]);
    });

    it('says a cycle has a ticket when it has one, or a create queued, running or dead; not once the create is cancelled or done without one', () => {
      const s = store();
      expect(s.cycleHasTicket('A', 1)).toBe(false);
      s.putTicket('A', 1, 41, 'm', T);
      expect(s.cycleHasTicket('A', 1)).toBe(true);
      const c = s.enqueue('B', 1, create(), T, T);
      expect(s.cycleHasTicket('B', 1)).toBe(true);
      expect(s.cycleHasTicket('B', 2)).toBe(false);
      s.claimReady(T, 10, none);
      expect(s.cycleHasTicket('B', 1)).toBe(true);
      s.buryJob(c, 'GLPI_PERMANENT', T);
      expect(s.cycleHasTicket('B', 1)).toBe(true);
      s.enqueue('C', 1, create(), T + 60_000, T);
      s.enqueue('C', 1, followup('behind'), T, T);
      s.cancelCycle('C', 1, T);
      expect(s.cycleHasTicket('C', 1)).toBe(false);
      const d = s.enqueue('D', 1, create(), T, T);
      s.claimReady(T, 10, none);
      s.completeJob(d, T);
      expect(s.cycleHasTicket('D', 1)).toBe(false);
    });
  });

  describe('pruneIncidents', () => {
    it('forgets ended incidents last written before `before`, with their tickets and events, and returns their fingerprints', () => {
      const s = store();
      s.putIncident(incident('old-solved', 'solved'), T - 100_000);
      s.putIncident(incident('old-suppressed', 'suppressed'), T - 100_000);
      s.putIncident(incident('old-open', 'open'), T - 100_000);
      s.putIncident(incident('recent-solved', 'solved'), T);
      s.putTicket('old-solved', 1, 41, 'm', T - 100_000);
      s.putEvents('old-solved', [{ eventId: '500', cycle: 1, open: false }]);
      s.putEvents('old-open', [{ eventId: '501', cycle: 1, open: true }]);
      expect(s.pruneIncidents(T - 50_000).sort()).toEqual(['old-solved', 'old-suppressed']);
      expect(s.getIncident('old-solved')).toBeUndefined();
      expect(s.ticketId('old-solved', 1)).toBeUndefined();
      expect(s.eventInfo('500')).toBeUndefined();
      expect(s.eventInfo('501')).toEqual({ fingerprint: 'old-open', cycle: 1, open: true });
      expect(['old-open', 'recent-solved'].map((f) => s.getIncident(f)?.status)).toEqual(['open', 'solved']);
      expect(s.pruneIncidents(T - 50_000)).toEqual([]);
      // The fingerprint comes back (a new problem, long after): nothing of the forgotten incident comes with it.
      s.putIncident(incident('old-solved'), T);
      expect(s.eventInfo('500')).toBeUndefined();
      expect(s.ticketId('old-solved', 1)).toBeUndefined();
    });

    it('keeps an ended incident while it has a job pending, running or dead; finished and cancelled jobs do not keep it', () => {
      const s = store();
      for (const f of ['pending', 'running', 'dead', 'done', 'cancelled']) s.putIncident(incident(f, 'solved'), T - 100_000);
      s.enqueue('pending', 1, followup('x'), T + 60_000, T);
      const running = s.enqueue('running', 1, followup('x'), T, T);
      const dead = s.enqueue('dead', 1, followup('x'), T, T);
      const done = s.enqueue('done', 1, followup('x'), T, T);
      s.enqueue('cancelled', 1, followup('x'), T + 60_000, T);
      s.claimReady(T, 10, none);
      s.buryJob(dead, 'GLPI_PERMANENT', T);
      s.completeJob(done, T);
      s.cancelCycle('cancelled', 1, T);
      expect(s.pruneIncidents(T - 50_000).sort()).toEqual(['cancelled', 'done']);
      expect(s.job(running)?.status).toBe('running');
    });

    it('forgets at most `limit` at a time', () => {
      const s = store();
      for (let i = 0; i < 5; i++) s.putIncident(incident(`fp${i}`, 'solved'), T - 100_000 + i);
      expect(s.pruneIncidents(T, 3)).toHaveLength(3);
      expect(s.pruneIncidents(T, 3)).toHaveLength(2);
    });
  });
});
