/**
 * The GLPI read-back's cursor (issue 14 item 5) when a ticket cannot be read: the watcher on the in-memory
 * store, GLPI's answers from a stub that keeps tickets (date_mod, status) and technicians' follow-ups and can
 * fail one ticket's follow-up list. A ticket whose follow-ups could not be read is read again next sweep (the
 * cursor does not step past it), and one that keeps failing is given up after UNREAD_SWEEPS sweeps, so it does
 * not hold later changes back for ever. Through the built daemon: test/integration/glpi-read-back.test.ts.
 */
import { beforeEach, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { MemoryStore } from '../../src/adapters/store/memory/memory-store.js';
import type { Incident } from '../../src/core/decide.js';
import type { ModifiedTicket, TicketWatch } from '../../src/core/ports.js';
import { RemoteError } from '../../src/core/remote-error.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { GlpiWatcher, UNREAD_SWEEPS } from '../../src/services/glpi-watcher.js';

const PREFIX = '[glpi-bridge]';

/** The bridge's tickets in GLPI as the watcher reads them: its search (date_mod strictly after `since`, oldest first) and each one's follow-ups. */
class Glpi implements TicketWatch {
  readonly tickets = new Map<number, { status: number; dateMod: string; followups: { id: number; content: string }[] }>();
  /** Tickets whose follow-up list GLPI fails to give (a 500, an answer not understood). */
  readonly failing = new Set<number>();
  readonly searches: (string | undefined)[] = [];
  #nextFollowup = 1;

  /** A technician's follow-up: the ticket's date_mod moves. */
  followup(ticketId: number, content: string, at: string): void {
    const t = this.tickets.get(ticketId)!;
    t.followups.push({ id: this.#nextFollowup++, content });
    t.dateMod = at;
  }

  async ticketsModifiedSince(since: string | undefined): Promise<ModifiedTicket[]> {
    this.searches.push(since);
    return [...this.tickets]
      .filter(([, t]) => since === undefined || t.dateMod > since)
      .map(([id, t]) => ({ id, status: t.status, dateMod: t.dateMod }))
      .sort((a, b) => (a.dateMod < b.dateMod ? -1 : a.dateMod > b.dateMod ? 1 : a.id - b.id));
  }

  async othersPublicFollowups(ticketId: number): Promise<{ id: number; content: string }[]> {
    if (this.failing.has(ticketId)) throw new RemoteError('retryable', 'HTTP_500', 'GLPI answered 500: Internal Server Error', 500);
    return [...(this.tickets.get(ticketId)?.followups ?? [])];
  }
}

let store: MemoryStore;
let glpi: Glpi;
let watcher: GlpiWatcher;
let logs: { level: number; msg: string; code?: string; ticket_id?: number }[];
const now = 1_800_000_000_000;

beforeEach(() => {
  store = new MemoryStore();
  glpi = new Glpi();
  logs = [];
  const logger = pino({ level: 'debug' }, { write: (l: string) => void logs.push(JSON.parse(l) as (typeof logs)[number]) });
  watcher = new GlpiWatcher(glpi, store, { now: () => now }, logger, createMetrics({ processMetrics: false }), () => ({ writeBackPrefix: PREFIX, closeProblem: false, mirrorFollowups: true }), () => undefined);
});

/** An open incident on host `host` with its ticket `ticketId` in GLPI (modified at `dateMod`) and its open Zabbix event. */
function openIncident(host: string, ticketId: number, eventId: string, dateMod: string): void {
  const fingerprint = `host=${host}|trigger=#1`;
  const incident: Incident = { fingerprint, cycle: 1, status: 'open', ticketId, marker: `[zbx:${host}]`, category: 'cpu', severity: 'high', urgency: 4, impact: 3, openCount: 1, occurrences: 1, openedAt: now };
  store.putIncident(incident, now);
  store.putEvents(fingerprint, [{ eventId, cycle: 1, open: true }]);
  store.putTicket(fingerprint, 1, ticketId, incident.marker, now);
  glpi.tickets.set(ticketId, { status: 2, dateMod, followups: [] });
}

/** The messages queued for Zabbix (write-back jobs), in order. */
const messages = () => store.jobs('pending', 1_000).flatMap((j) => (j.spec.type === 'zabbix_ack' ? [`${j.spec.eventIds.join(',')}: ${j.spec.message}`] : []));

describe('the read-back cursor and a ticket that cannot be read', () => {
  it('does not step past a ticket whose follow-ups could not be read: the next sweep reads it, once, and what came after it is not repeated', async () => {
    openIncident('a', 1, '801', '2026-12-02 08:00:00');
    openIncident('b', 2, '802', '2026-12-02 08:00:00');
    await watcher.sweep();
    expect(store.glpiWatchCursor()).toBe('2026-12-02 08:00:00');

    // Two technicians write; GLPI fails the first ticket's follow-up list this sweep.
    glpi.followup(1, 'looking at the disk', '2026-12-02 08:05:00');
    glpi.followup(2, 'rebooting', '2026-12-02 08:06:00');
    glpi.failing.add(1);
    await watcher.sweep();
    expect(messages()).toEqual([`802: ${PREFIX} GLPI ticket #2, follow-up: rebooting`]);
    // Held at the unread ticket's date_mod, not at the newest one read.
    expect(store.glpiWatchCursor()).toBe('2026-12-02 08:05:00');
    expect(logs.filter((l) => l.ticket_id === 1 && /read again next sweep \(1 of/.test(l.msg))).toHaveLength(1);

    glpi.failing.delete(1);
    await watcher.sweep();
    expect(glpi.searches.at(-1)).toBe('2026-12-02 08:04:59');
    expect(messages()).toEqual([`802: ${PREFIX} GLPI ticket #2, follow-up: rebooting`, `801: ${PREFIX} GLPI ticket #1, follow-up: looking at the disk`]);
    expect(store.glpiWatchCursor()).toBe('2026-12-02 08:06:00');
    // Later sweeps say nothing more.
    await watcher.sweep();
    expect(messages()).toHaveLength(2);
  });

  it('a ticket solved while its follow-ups cannot be read is decided after them, in order, once they are read', async () => {
    openIncident('a', 1, '801', '2026-12-02 08:00:00');
    await watcher.sweep();
    glpi.followup(1, 'replaced the fan', '2026-12-02 08:05:00');
    glpi.tickets.get(1)!.status = 5;
    glpi.failing.add(1);
    await watcher.sweep();
    expect(messages()).toEqual([]);
    glpi.failing.delete(1);
    await watcher.sweep();
    expect(messages()).toEqual([`801: ${PREFIX} GLPI ticket #1, follow-up: replaced the fan`, `801: ${PREFIX} GLPI ticket #1 was solved in GLPI while the problem is still open in Zabbix.`]);
  });

  it(`a ticket that still cannot be read after ${UNREAD_SWEEPS} sweeps is given up, said once, and stops holding the others back`, async () => {
    openIncident('a', 1, '801', '2026-12-02 08:00:00');
    openIncident('b', 2, '802', '2026-12-02 08:00:00');
    await watcher.sweep();
    glpi.followup(1, 'looking', '2026-12-02 08:05:00');
    glpi.followup(2, 'rebooting', '2026-12-02 08:06:00');
    glpi.failing.add(1);
    for (let i = 1; i < UNREAD_SWEEPS; i++) {
      await watcher.sweep();
      expect(store.glpiWatchCursor()).toBe('2026-12-02 08:05:00');
    }
    await watcher.sweep();
    const skipped = logs.filter((l) => l.code === 'GLPI_WATCH_TICKET_SKIPPED');
    expect(skipped).toHaveLength(1);
    expect(skipped[0]).toMatchObject({ ticket_id: 1, level: 50 });
    expect(store.glpiWatchCursor()).toBe('2026-12-02 08:06:00');
    // The other ticket's follow-up was said once, though it was read on every sweep meanwhile.
    expect(messages()).toEqual([`802: ${PREFIX} GLPI ticket #2, follow-up: rebooting`]);

    // A later change of the skipped ticket is read again (GLPI answers by then).
    glpi.failing.delete(1);
    glpi.followup(1, 'fixed', '2026-12-02 08:10:00');
    await watcher.sweep();
    expect(messages()).toEqual([`802: ${PREFIX} GLPI ticket #2, follow-up: rebooting`, `801: ${PREFIX} GLPI ticket #1, follow-up: looking`, `801: ${PREFIX} GLPI ticket #1, follow-up: fixed`]);
  });
});
