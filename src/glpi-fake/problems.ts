/**
 * Problems in the fake (issue 14 item 1): `Problem`, its `Problem_Ticket` links and `Ticket_Ticket`
 * links, as the legacy API creates and lists them. Only what the bridge uses, as strict as GLPI:
 *
 * - `Problem` is a CommonITILObject like Ticket: name, content (mandatory in the default template, as for
 *   tickets), status (1 incoming … 5 solved, 6 closed; CommonITILObject also has 7 accepted and 8 observed, which Problem and Change use — still open to the bridge),
 *   urgency/impact, entities_id, users_id_recipient (the writer, search option 22), date_mod (option 19).
 *   The same CommonITILObject search options 1, 2, 12, 19, 21, 22, 80 apply.
 *   (glpi-project/glpi src/Problem.php, src/CommonITILObject.php @ 0042059c82075d3223c145cb3609a83019fc0cd2)
 * - `Problem_Ticket` / `Ticket_Ticket` extend CommonITILObject_CommonITILObject (GLPI 11; CommonDBRelation
 *   before): prepareInputForAdd() refuses a link without both ids, a self-link (Ticket_Ticket), and a link
 *   that exists already ("no multiple links": the add answers false → the API's ERROR_GLPI_ADD); `link`
 *   defaults to LINK_TO (1). Adding a link touches both items' date_mod (updateParentItems()).
 * - Removing a Ticket_Ticket (DELETE Ticket_Ticket/:id) purges it: a relation has no is_deleted, so
 *   CommonDBTM::delete() purges; the form's "purge" and the "delete" massive action do the same
 *   (front/ticket_ticket.form.php, CommonITILObject_CommonITILObject::processMassiveActionsForOneItemtype()).
 *   (src/Problem_Ticket.php, src/CommonITILObject_CommonITILObject.php @ 0042059c82075d3223c145cb3609a83019fc0cd2)
 */
import type { SearchableTicket } from './search.js';

export const PROBLEM_STATUS = { INCOMING: 1, ASSIGNED: 2, PLANNED: 3, WAITING: 4, SOLVED: 5, CLOSED: 6, ACCEPTED: 7, OBSERVED: 8 } as const;

/** A Problem has a ticket's searchable columns (search.ts reads both the same way), without the external id. Problems have no type: 0 keeps the search rows' shape. */
export interface FakeProblem extends Omit<SearchableTicket, 'externalid'> {
  is_deleted: number;
  /** Not columns: Problem_User rows by role, as the high-level API's TeamMember route adds them (the writer is the requester). */
  users?: { requester: number[]; assign: number[]; observer: number[] };
}

export interface FakeLink {
  id: number;
  /** Problem_Ticket: problems_id, tickets_id; Ticket_Ticket: tickets_id_1, tickets_id_2. */
  a: number;
  b: number;
  link: number;
}

export const LINK_TO = 1;

export class FakeProblemStore {
  readonly problems = new Map<number, FakeProblem>();
  readonly problemTickets: FakeLink[] = [];
  readonly ticketTickets: FakeLink[] = [];
  #next = { problem: 1, link: 1 };

  add(p: Omit<FakeProblem, 'id'>): FakeProblem {
    const row = { ...p, id: this.#next.problem++ };
    this.problems.set(row.id, row);
    return row;
  }

  /** CommonITILObject_CommonITILObject::prepareInputForAdd(): false for a missing id, a self-link, or a link that exists. */
  addLink(kind: 'Problem_Ticket' | 'Ticket_Ticket', a: number, b: number, link: number): FakeLink | false {
    if (a <= 0 || b <= 0) return false;
    const list = kind === 'Problem_Ticket' ? this.problemTickets : this.ticketTickets;
    if (kind === 'Ticket_Ticket') {
      if (a === b) return false;
      if (list.some((l) => (l.a === a && l.b === b) || (l.a === b && l.b === a))) return false;
    } else if (list.some((l) => l.a === a && l.b === b)) {
      return false;
    }
    const row = { id: this.#next.link++, a, b, link };
    list.push(row);
    return row;
  }

  /** A relation purged (CommonITILObject_CommonITILObject has no trash); false when there is none. */
  removeLink(kind: 'Problem_Ticket' | 'Ticket_Ticket', id: number): boolean {
    const list = kind === 'Problem_Ticket' ? this.problemTickets : this.ticketTickets;
    const at = list.findIndex((l) => l.id === id);
    if (at < 0) return false;
    list.splice(at, 1);
    return true;
  }

  ticketsOfProblem(problemId: number): number[] {
    return this.problemTickets.filter((l) => l.a === problemId).map((l) => l.b);
  }

  /** Tickets linked to this one (either side of Ticket_Ticket). */
  linkedTickets(ticketId: number): { id: number; link: number }[] {
    return this.ticketTickets.filter((l) => l.a === ticketId || l.b === ticketId).map((l) => ({ id: l.a === ticketId ? l.b : l.a, link: l.link }));
  }
}
