// Incidents, the event index (which incident cycle each problem event belongs to) and the tickets of each
// cycle, in the state file. Written by the processing thread only.

import type Database from 'better-sqlite3';
import type { EventChange, EventInfo, Incident } from '../../../core/decide.js';
import { fingerprintKey } from '../../../core/fingerprint.js';
import type { IncidentRef, IncidentState, StateTransactions } from '../../../core/ports.js';
import { nodeDigests } from '../../digests.js';
import { announcedByEvent, type AnnouncedRow } from '../announced-rows.js';

/** Keys of the fingerprints seen lately: one decision looks its incident up five or six times (a SHA-256 each). */
const recentKeys = new Map<string, string>();
const RECENT_KEYS_MAX = 4096;

/** The key an incident's rows are filed under (fingerprintKey of its readable fingerprint). */
export function keyOf(ref: IncidentRef): string {
  if (typeof ref !== 'string') return ref.key;
  let key = recentKeys.get(ref);
  if (key === undefined) {
    if (recentKeys.size >= RECENT_KEYS_MAX) recentKeys.clear();
    key = fingerprintKey(ref, nodeDigests);
    recentKeys.set(ref, key);
  }
  return key;
}

export class SqliteIncidents implements IncidentState {
  readonly #tx: StateTransactions;
  readonly #stmt;

  constructor(db: Database.Database, tx: StateTransactions) {
    this.#tx = tx;
    this.#stmt = {
      openEvents: db.prepare<[], { event_id: string }>('SELECT event_id FROM incident_events WHERE open = 1'),
      // The incident's announced entries on each open event (json_each keeps the array's order in its key).
      announcedOnOpen: db.prepare<{ prefix: string }, AnnouncedRow>(
        `SELECT e.event_id, a.value AS entry FROM incident_events e JOIN incidents i ON i.fp_key = e.fp_key, json_each(i.state, '$.announced') a
          WHERE e.open = 1 AND a.type = 'text' AND substr(a.value, 1, length(e.event_id) + 1 + length(@prefix)) = e.event_id || ':' || @prefix
          ORDER BY e.event_id, a.key`,
      ),
      openDefinitions: db.prepare<[], { fields: string | null }>("SELECT DISTINCT json_extract(state, '$.fields') AS fields FROM incidents WHERE status = 'open'"),
      // An event is filed with its incident and forgotten with it: the readable fingerprint comes from the incident row.
      eventInfo: db.prepare<[string], { fingerprint: string; seq: number; open: number }>(
        "SELECT json_extract(i.state, '$.fingerprint') AS fingerprint, e.seq, e.open FROM incident_events e JOIN incidents i ON i.fp_key = e.fp_key WHERE e.event_id = ?",
      ),
      putEvent: db.prepare('INSERT INTO incident_events (event_id, fp_key, seq, open) VALUES (?, ?, ?, ?) ON CONFLICT(event_id) DO UPDATE SET fp_key = excluded.fp_key, seq = excluded.seq, open = excluded.open'),
      moveOpenEvents: db.prepare('UPDATE incident_events SET seq = ? WHERE fp_key = ? AND seq = ? AND open = 1'),
      latestOpenEvent: db.prepare<[string, number], { event_id: string }>('SELECT event_id FROM incident_events WHERE fp_key = ? AND seq = ? AND open = 1 ORDER BY rowid DESC LIMIT 1'),
      endedIncidents: db.prepare<[number, number], { fp_key: string; fingerprint: string }>(
        `SELECT i.fp_key, json_extract(i.state, '$.fingerprint') AS fingerprint FROM incidents i INDEXED BY incidents_ended WHERE i.status <> 'open' AND i.updated_at < ?
           AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.fp_key = i.fp_key AND j.status IN ('pending', 'running', 'dead'))
           LIMIT ?`,
      ),
      deleteIncident: db.prepare('DELETE FROM incidents WHERE fp_key = ?'),
      deleteTickets: db.prepare('DELETE FROM tickets WHERE fp_key = ?'),
      deleteEvents: db.prepare('DELETE FROM incident_events WHERE fp_key = ?'),
      getIncident: db.prepare<[string], { state: string }>('SELECT state FROM incidents WHERE fp_key = ?'),
      putIncident: db.prepare(
        'INSERT INTO incidents (fp_key, status, state, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT(fp_key) DO UPDATE SET status = excluded.status, state = excluded.state, updated_at = excluded.updated_at',
      ),
      putTicket: db.prepare('INSERT OR REPLACE INTO tickets (fp_key, seq, ticket_id, marker, created_at) VALUES (?, ?, ?, ?, ?)'),
      getTicket: db.prepare<[string, number], { ticket_id: number }>('SELECT ticket_id FROM tickets WHERE fp_key = ? AND seq = ?'),
      cycleCreate: db.prepare<[string, number], { id: number }>(
        "SELECT id FROM jobs WHERE fp_key = ? AND seq = ? AND type = 'create_ticket' AND status IN ('pending', 'running', 'dead') LIMIT 1",
      ),
    };
  }

  getIncident(incident: IncidentRef): Incident | undefined {
    const r = this.#stmt.getIncident.get(keyOf(incident));
    return r ? (JSON.parse(r.state) as Incident) : undefined;
  }

  /** The incident's row, filed under its key; its state (JSON) is the one place its readable fingerprint is kept. */
  putIncident(incident: Incident, now: number): void {
    this.#tx.transaction(() => this.#stmt.putIncident.run(keyOf(incident.fingerprint), incident.status, JSON.stringify(incident), now), 'crash-safe');
  }

  /** Which incident cycle a problem event belongs to (by its readable fingerprint), and whether it is still open. */
  eventInfo(eventId: string): EventInfo | undefined {
    const r = this.#stmt.eventInfo.get(eventId);
    return r ? { fingerprint: r.fingerprint, cycle: r.seq, open: r.open === 1 } : undefined;
  }

  /** Record events of an incident; written with the incident itself (putIncident), in the same transaction. */
  putEvents(incident: IncidentRef, changes: readonly EventChange[]): void {
    const key = keyOf(incident);
    this.#tx.transaction(() => {
      for (const c of changes) this.#stmt.putEvent.run(c.eventId, key, c.cycle, c.open ? 1 : 0);
    }, 'crash-safe');
  }

  /** A new cycle takes over the open events of an old one (its ticket was closed in GLPI). */
  moveOpenEvents(incident: IncidentRef, fromCycle: number, toCycle: number): void {
    this.#tx.transaction(() => this.#stmt.moveOpenEvents.run(toCycle, keyOf(incident), fromCycle), 'crash-safe');
  }

  /** The most recent open problem event of an incident cycle. */
  latestOpenEvent(incident: IncidentRef, cycle: number): string | undefined {
    return this.#stmt.latestOpenEvent.get(keyOf(incident), cycle)?.event_id;
  }

  /** Problem event ids the bridge holds open (in every incident). */
  openIncidentEvents(): string[] {
    return this.#stmt.openEvents.all().map((r) => r.event_id);
  }

  announcedOnOpenEvents(prefix: string): Map<string, string[]> {
    return announcedByEvent(this.#stmt.announcedOnOpen.all({ prefix }));
  }

  /** The distinct fingerprint definitions (field lists) of open incidents that recorded theirs. */
  openIncidentDefinitions(): string[][] {
    return this.#stmt.openDefinitions
      .all()
      .flatMap((r) => (r.fields ? [JSON.parse(r.fields) as string[]] : []));
  }

  /**
   * Forget incidents whose cycle ended before `before` (the reopen window)
   * and that have no job left, with their ticket ids and events: the state
   * file does not grow with history. Safe because markers never repeat
   * across cycles (see ticketMarker). Returns the (readable) fingerprints forgotten.
   */
  pruneIncidents(before: number, limit = 5000): string[] {
    return this.#tx.transaction(() => {
      const ended = this.#stmt.endedIncidents.all(before, limit);
      for (const { fp_key: key } of ended) {
        this.#stmt.deleteIncident.run(key);
        this.#stmt.deleteTickets.run(key);
        this.#stmt.deleteEvents.run(key);
      }
      return ended.map((r) => r.fingerprint);
    }, 'crash-safe');
  }

  putTicket(incident: IncidentRef, cycle: number, ticketId: number, marker: string, now: number): void {
    this.#tx.transaction(() => this.#stmt.putTicket.run(keyOf(incident), cycle, ticketId, marker, now), 'crash-safe');
  }

  ticketId(incident: IncidentRef, cycle: number): number | undefined {
    return this.#stmt.getTicket.get(keyOf(incident), cycle)?.ticket_id;
  }

  /** Whether a ticket cycle has its ticket, or a create that may still make it. */
  cycleHasTicket(incident: IncidentRef, cycle: number): boolean {
    const key = keyOf(incident);
    return this.#stmt.getTicket.get(key, cycle) !== undefined || this.#stmt.cycleCreate.get(key, cycle) !== undefined;
  }
}
