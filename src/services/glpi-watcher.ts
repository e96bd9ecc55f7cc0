import cron, { type ScheduledTask } from 'node-cron';
import { decideFollowupsMirrored, decideTicketResolvedInGlpi } from '../core/decide.js';
import type { ActionQueue, Clock, IncidentState, ModifiedTicket, StateTransactions, TicketWatch, WatchCursor } from '../core/ports.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

/*
 * GLPI → Zabbix (issue 14 item 5): the bridge's tickets read back on the
 * poller's schedule, with one GLPI search per sweep (tickets the bridge wrote,
 * modified since the last sweep) — never a request per ticket. A ticket a
 * technician solved or closed while its Zabbix problems are still open gets a
 * message on those events (and their close, with close_problem), queued as a
 * write-back job in the incident's Zabbix lane, so it is retried like any
 * write-back and never holds GLPI work back.
 *
 * Why here, on the processing thread, and not as an alert through the inbox
 * like the poller's notes: the answer names tickets, and only this side's
 * state knows which incident and open events a ticket belongs to (the
 * incidents, the event index, the tickets per cycle). The incident, which
 * remembers what was announced, and the job are written in one state
 * transaction, so a crash never sends the message twice or loses it; the
 * message itself is found on the event before a retry sends it again
 * (job-runner.ts). No loop: the message starts with the write-back prefix, so
 * the update webhook Zabbix sends for it is ignored (core/decide.ts onUpdate),
 * and the bridge's own solves happen after Zabbix recovered the problem — the
 * events are no longer open, so nothing is said.
 *
 * The cursor (GLPI's date_mod of the newest ticket read) is kept in the state
 * (WatchCursor, the meta table), written after the sweep's decisions: a
 * restart, even after a kill -9, resumes where the last sweep stopped, so a
 * ticket solved while the bridge was down is read at the first sweep. Only
 * the very first sweep of a store (no cursor yet) reads the 200 most recent
 * tickets. Reading a ticket twice repeats nothing: what was already said is
 * known from the incidents.
 *
 * A ticket whose follow-ups could not be read holds the cursor at its date_mod
 * (the sweeps' answer is oldest first): the next sweep reads it, and what came
 * after it, again, instead of stepping past a change never seen. One that
 * still fails after UNREAD_SWEEPS sweeps is given up (said in the log with
 * GLPI_WATCH_TICKET_SKIPPED), so a ticket GLPI never lets the bridge read does
 * not hold every later change back. The count is kept in memory: a restart
 * gives such a ticket its sweeps again.
 */

/** Sweeps in a row a ticket may fail to be read, holding the cursor, before it is given up. */
export const UNREAD_SWEEPS = 5;

export type WatchStore = Pick<IncidentState, 'openIncidentEvents' | 'eventInfo' | 'getIncident' | 'putIncident' | 'ticketId'> & Pick<ActionQueue, 'enqueue'> & StateTransactions & WatchCursor;

export interface WatchSettings {
  readonly writeBackPrefix: string;
  readonly closeProblem: boolean;
  /** Technicians' public follow-ups mirrored to the Zabbix event (zabbix.write_back.mirror_followups). */
  readonly mirrorFollowups: boolean;
}

/** A follow-up's HTML as plain text for a Zabbix message (tags dropped, the common entities decoded). */
export function plainText(html: string): string {
  return html
    .replace(/<br\s*\/?>|<\/p>|<\/div>|<\/li>/gi, ' ')
    .replace(/<[^>]*>/g, '')
    .replace(/&nbsp;/g, ' ')
    .replace(/&lt;|&#60;/g, '<')
    .replace(/&gt;|&#62;/g, '>')
    .replace(/&quot;|&#34;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;|&#38;/g, '&')
    .replace(/\s+/g, ' ')
    .trim();
}

/** "YYYY-MM-DD HH:MM:SS" one second earlier (wall-clock arithmetic: GLPI's timezone does not matter). */
export function secondBefore(dateMod: string): string {
  const t = Date.parse(`${dateMod.replace(' ', 'T')}Z`);
  if (Number.isNaN(t)) return dateMod;
  return new Date(t - 1000).toISOString().slice(0, 19).replace('T', ' ');
}

export class GlpiWatcher {
  #task: ScheduledTask | undefined;
  #lastError: string | undefined;
  /** Tickets whose read failed: sweeps in a row (cleared once read, or given up). */
  readonly #unread = new Map<number, number>();

  constructor(
    private readonly glpi: TicketWatch,
    private readonly store: WatchStore,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    private readonly settings: () => WatchSettings,
    private readonly wake: () => void,
  ) {}

  start(schedule: string): void {
    this.#task = cron.schedule(schedule, () => this.sweep(), { noOverlap: true, name: 'glpi-watch' });
  }

  async stop(): Promise<void> {
    await this.#task?.stop();
    this.#task = undefined;
  }

  /** One sweep: returns how many write-backs it queued. Failures are logged (once per distinct error) and retried next sweep. */
  async sweep(): Promise<number> {
    const cursor = this.store.glpiWatchCursor();
    let rows: ModifiedTicket[];
    try {
      rows = await this.glpi.ticketsModifiedSince(cursor === undefined ? undefined : secondBefore(cursor));
      this.#lastError = undefined;
    } catch (e) {
      const message = (e as Error).message;
      if (this.#lastError !== message) this.logger.warn({ err: message }, 'GLPI watch: reading the bridge\'s recently modified tickets failed; next sweep on schedule');
      this.#lastError = message;
      return 0;
    }
    const unread: ModifiedTicket[] = [];
    const queued = await this.#readBack(rows, unread);
    // After the decisions (each committed with its incident): a crash before this line reads the same tickets again, which repeats nothing.
    let next = cursor;
    for (const r of rows) if (next === undefined || r.dateMod > next) next = r.dateMod;
    // Not past a ticket that could not be read: the next sweep asks from its date_mod again (never behind the cursor).
    for (const r of unread) if (next !== undefined && r.dateMod < next && (cursor === undefined || r.dateMod >= cursor)) next = r.dateMod;
    if (next !== undefined && next !== cursor) this.store.putGlpiWatchCursor(next);
    if (queued > 0) this.wake();
    return queued;
  }

  /**
   * A ticket's read failed this sweep: whether it holds the cursor (false once it has failed UNREAD_SWEEPS sweeps
   * in a row: given up, logged).
   */
  #failedRead(r: ModifiedTicket, err: string): boolean {
    const sweeps = (this.#unread.get(r.id) ?? 0) + 1;
    if (sweeps >= UNREAD_SWEEPS) {
      this.#unread.delete(r.id);
      this.logger.error(
        { code: 'GLPI_WATCH_TICKET_SKIPPED', ticket_id: r.id, date_mod: r.dateMod, sweeps, err },
        `GLPI watch: the ticket's follow-ups could not be read in ${sweeps} sweeps in a row; skipped (its technicians' follow-ups until now are not mirrored to Zabbix; a later change of the ticket is read again)`,
      );
      return false;
    }
    this.#unread.set(r.id, sweeps);
    if (this.#unread.size > 10_000) this.#unread.delete(this.#unread.keys().next().value!);
    this.logger.warn({ ticket_id: r.id, date_mod: r.dateMod, sweeps, err }, `GLPI watch: reading the ticket's follow-ups failed; read again next sweep (${sweeps} of ${UNREAD_SWEEPS})`);
    return true;
  }

  /** What the modified tickets say to Zabbix: the write-backs queued (how many); tickets that could not be read go to `unread`. */
  async #readBack(rows: readonly ModifiedTicket[], unread: ModifiedTicket[]): Promise<number> {
    const s = this.settings();
    const resolved = rows.filter((r) => r.status === 5 || r.status === 6);
    if (resolved.length === 0 && !(s.mirrorFollowups && rows.length > 0)) return 0;
    // The open events of each ticket of an open cycle (the state is read only when GLPI has something to say).
    const byTicket = new Map<number, { fingerprint: string; cycle: number; events: string[] }>();
    for (const eventId of this.store.openIncidentEvents()) {
      const info = this.store.eventInfo(eventId);
      if (!info?.open) continue;
      const ticketId = this.store.ticketId(info.fingerprint, info.cycle);
      if (ticketId === undefined) continue;
      const entry = byTicket.get(ticketId) ?? { fingerprint: info.fingerprint, cycle: info.cycle, events: [] };
      entry.events.push(eventId);
      byTicket.set(ticketId, entry);
    }
    let queued = 0;
    // Follow-ups first: a technician's last word before solving reaches Zabbix before the solve's message.
    if (s.mirrorFollowups) {
      for (const r of rows) {
        const t = byTicket.get(r.id);
        if (!t) continue;
        let followups;
        try {
          followups = (await this.glpi.othersPublicFollowups(r.id)).map((f) => ({ id: f.id, text: plainText(f.content) }));
          this.#unread.delete(r.id);
        } catch (e) {
          if (this.#failedRead(r, (e as Error).message)) unread.push(r);
          continue;
        }
        const now = this.clock.now();
        const jobs = this.store.transaction(() => {
          const d = decideFollowupsMirrored(this.store.getIncident(t.fingerprint), t.cycle, r.id, followups, t.events, { writeBackPrefix: s.writeBackPrefix });
          if (!d) return 0;
          this.store.putIncident(d.incident, now);
          for (const job of d.jobs) this.store.enqueue(t.fingerprint, t.cycle, job, now, now);
          return d.jobs.length;
        });
        if (jobs > 0) this.metrics.glpiReadBack.inc({ status: 'followup', close: 'no' }, jobs);
        queued += jobs;
      }
    }
    for (const r of resolved) {
      const t = byTicket.get(r.id);
      // A ticket whose follow-ups are read again next sweep is decided then, after them, in order.
      if (!t || unread.some((u) => u.id === r.id)) continue;
      const now = this.clock.now();
      const done = this.store.transaction(() => {
        const d = decideTicketResolvedInGlpi(this.store.getIncident(t.fingerprint), t.cycle, r.id, r.status, t.events, { writeBackPrefix: s.writeBackPrefix }, s.closeProblem);
        if (!d) return false;
        this.store.putIncident(d.incident, now);
        this.store.enqueue(t.fingerprint, t.cycle, d.job, now, now);
        return true;
      });
      if (!done) continue;
      queued++;
      this.metrics.glpiReadBack.inc({ status: r.status === 5 ? 'solved' : 'closed', close: s.closeProblem ? 'yes' : 'no' });
      this.logger.info({ ticket_id: r.id, incident: t.fingerprint, events: t.events, status: r.status }, 'GLPI ticket solved or closed by a technician while the Zabbix problem is open: message queued for the Zabbix event');
    }
    return queued;
  }
}
