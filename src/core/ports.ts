import type { TicketDraft } from './decide.js';

/** What the dispatcher needs from a ticketing system (GLPI). Errors carry a `kind`: retryable, permanent, session or login. */
export interface TicketDesk {
  /** The ticket the bridge itself created with this marker, if any (one carrying it but created by someone else is not returned). */
  findTicketByMarker(marker: string): Promise<number | undefined>;
  createTicket(t: TicketDraft): Promise<number>;
  addFollowup(ticketId: number, content: string, options: { isPrivate: boolean; reopen?: boolean }): Promise<number>;
  followupContents(ticketId: number): Promise<string[]>;
  /** Add a solution; a ticket already solved or closed (read from its status, not from a translated message) counts as done. */
  addSolution(ticketId: number, content: string, solutionTypeId: number): Promise<'added' | 'already_solved' | 'already_closed'>;
  updateTicket(ticketId: number, fields: Readonly<Record<string, unknown>>): Promise<void>;
  /** The ticket's status (1 new, 2 assigned, 3 planned, 4 pending, 5 solved, 6 closed); undefined when it does not exist. */
  ticketStatus(ticketId: number): Promise<number | undefined>;
  ticketUrl(id: number): string;
}

/** What the dispatcher needs from Zabbix to write the ticket link back to the event. */
export interface EventAcknowledger {
  acknowledge(eventIds: readonly string[], message: string, acknowledge: boolean): Promise<void>;
  /** Whether the event already carries this message (a retry after an unknown outcome). */
  hasMessage(eventId: string, message: string): Promise<boolean>;
}
