import type { ProblemSpec, TicketDraft } from '../core/decide.js';
import type { ProblemDesk, TicketDesk } from '../core/ports.js';

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

/**
 * The same for GLPI Problems (issue 14 item 1): the problem's draft completed (its names resolved) before its
 * create; the marker search and everything else pass through.
 */
export function withProblemDraftStep(desk: ProblemDesk, step: (draft: ProblemSpec) => Promise<ProblemSpec>): ProblemDesk {
  return {
    findProblemsByMarker: (marker) => desk.findProblemsByMarker(marker),
    createProblem: async (p) => desk.createProblem(await step(p)),
    problemTickets: (problemId) => desk.problemTickets(problemId),
    linkProblemTicket: (problemId, ticketId) => desk.linkProblemTicket(problemId, ticketId),
    addProblemFollowup: (problemId, content) => desk.addProblemFollowup(problemId, content),
    problemFollowupContents: (problemId) => desk.problemFollowupContents(problemId),
    linkedTickets: (ticketId) => desk.linkedTickets(ticketId),
    linkTickets: (ticketId, otherId) => desk.linkTickets(ticketId, otherId),
    ...(desk.unlinkTickets ? { unlinkTickets: (ticketId: number, otherId: number) => desk.unlinkTickets!(ticketId, otherId) } : {}),
  };
}
