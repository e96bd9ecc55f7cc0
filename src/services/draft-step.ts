import type { TicketDraft } from '../core/decide.js';
import type { TicketDesk } from '../core/ports.js';

/**
 * The desk with one more step before every ticket creation (names resolved, the asset found, the value
 * history added): the draft is completed, then created as it was; everything else passes through. The
 * marker is never touched, so the create's idempotence (search by marker before sending again) is the desk's.
 */
export function withDraftStep(desk: TicketDesk, step: (draft: TicketDraft) => Promise<TicketDraft>): TicketDesk {
  return {
    findTicketByMarker: (marker) => desk.findTicketByMarker(marker),
    createTicket: async (t) => desk.createTicket(await step(t)),
    addFollowup: (ticketId, content, options) => desk.addFollowup(ticketId, content, options),
    followupContents: (ticketId) => desk.followupContents(ticketId),
    addSolution: (ticketId, content, solutionTypeId) => desk.addSolution(ticketId, content, solutionTypeId),
    updateTicket: (ticketId, fields) => desk.updateTicket(ticketId, fields),
    ticketStatus: (ticketId) => desk.ticketStatus(ticketId),
    ticketUrl: (id) => desk.ticketUrl(id),
  };
}
