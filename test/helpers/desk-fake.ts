/**
 * GLPI as the dispatcher's unit tests on the in-memory store see it (TicketDesk and ProblemDesk): tickets by
 * marker, ticket links (a link twice is refused, as GLPI does), a create a test can hold until it lets it
 * answer, and every call worth asserting on in `calls`. Tests override what their case needs.
 */
import type { JobSpec, ProblemSpec, TicketDraft } from '../../src/core/decide.js';
import type { ProblemDesk, ProblemRef, TicketDesk } from '../../src/core/ports.js';
import { RemoteError } from '../../src/core/remote-error.js';

export class DeskFake implements TicketDesk, ProblemDesk {
  readonly tickets = new Map<number, string>();
  readonly links: [number, number][] = [];
  readonly calls: string[] = [];
  #next = 100;
  #held = new Map<string, Promise<void>>();

  /** The create of this marker waits until the returned function is called. */
  hold(marker: string): () => void {
    let release!: () => void;
    this.#held.set(marker, new Promise<void>((r) => (release = r)));
    return release;
  }

  add(marker: string): number {
    const id = this.#next++;
    this.tickets.set(id, marker);
    return id;
  }

  async findTicketByMarker(marker: string): Promise<number | undefined> {
    this.calls.push(`search ${marker}`);
    return [...this.tickets].find(([, m]) => m === marker)?.[0];
  }
  async createTicket(t: TicketDraft): Promise<number> {
    this.calls.push(`create ${t.marker}`);
    await this.#held.get(t.marker);
    return this.add(t.marker);
  }
  async addFollowup(_ticketId: number): Promise<number> {
    return 1;
  }
  followupContents = async (): Promise<string[]> => [];
  addSolution = async (): Promise<'added'> => 'added';
  updateTicket = async (): Promise<void> => undefined;
  ticketStatus = async (): Promise<number> => 2;
  ticketUrl(id: number): string {
    return `http://glpi.test/front/ticket.form.php?id=${id}`;
  }

  async findProblemsByMarker(_marker: string): Promise<ProblemRef[]> {
    return [];
  }
  async createProblem(_p: ProblemSpec): Promise<number> {
    return 1;
  }
  async problemTickets(_problemId: number): Promise<number[]> {
    return [];
  }
  async linkProblemTicket(_problemId: number, _ticketId: number): Promise<void> {
    return undefined;
  }
  addProblemFollowup = async (): Promise<void> => undefined;
  problemFollowupContents = async (): Promise<string[]> => [];
  async linkedTickets(ticketId: number): Promise<number[]> {
    this.calls.push(`links of ${ticketId}`);
    return this.links.flatMap(([a, b]) => (a === ticketId ? [b] : b === ticketId ? [a] : []));
  }
  async linkTickets(ticketId: number, otherId: number): Promise<void> {
    this.calls.push(`link ${ticketId} ${otherId}`);
    if ((await this.linkedTickets(ticketId)).includes(otherId)) throw new RemoteError('permanent', 'ERROR_GLPI_ADD', 'GLPI answered 400 ERROR_GLPI_ADD: link exists', 400);
    this.links.push([ticketId, otherId]);
  }
}

export function draft(marker: string): TicketDraft {
  return { name: `${marker} High CPU`, content: 'body', marker, urgency: 3, impact: 3, type: 1, itilcategories_id: 0, entities_id: 0, requesttypes_id: 0, groups_id_assign: 0 };
}

export const createJob = (marker: string): JobSpec => ({ type: 'create_ticket', ticket: draft(marker), delayMs: 0 });
