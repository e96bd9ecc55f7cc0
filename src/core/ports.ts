import type { TicketDraft } from './decide.js';

/** What the dispatcher needs from a ticketing system (GLPI). Errors carry a `kind`: retryable, permanent, session or login. */
export interface TicketDesk {
  findTicketByMarker(marker: string): Promise<number | undefined>;
  createTicket(t: TicketDraft): Promise<number>;
  addFollowup(ticketId: number, content: string, options: { isPrivate: boolean; reopen?: boolean }): Promise<number>;
  followupContents(ticketId: number): Promise<string[]>;
  addSolution(ticketId: number, content: string, solutionTypeId: number): Promise<'added' | 'already_solved'>;
  updateTicket(ticketId: number, fields: Readonly<Record<string, unknown>>): Promise<void>;
  ticketUrl(id: number): string;
}

/** What the dispatcher needs from Zabbix to write the ticket link back to the event. */
export interface EventAcknowledger {
  acknowledge(eventIds: readonly string[], message: string, acknowledge: boolean): Promise<void>;
  /** Whether the event already carries this message (a retry after an unknown outcome). */
  hasMessage(eventId: string, message: string): Promise<boolean>;
}
