import type { Language } from '../messages.js';
import type { FakeProblem } from '../problems.js';
import type { FakeAccount, FakeFollowup, FakeSession, FakeSolution, FakeTicket, GlpiVersion } from '../server.js';

/**
 * What the high-level API (v2) part of the fake needs from the fake GLPI (`FakeGlpi` in ../server.ts):
 * the one ticket/follow-up/solution store both APIs share, and GLPI's business rules (the same
 * `CommonDBTM::add()` / `update()` code runs behind both APIs in GLPI, so the fake runs the same code
 * too: a ticket created through v2 is seen by v1, a status set by a technician applies to both).
 */
export interface V2Host {
  readonly version: GlpiVersion;
  /** GLPI's default language (the language before login). */
  readonly language: Language;
  readonly accounts: readonly FakeAccount[];
  readonly tickets: ReadonlyMap<number, FakeTicket>;
  readonly followups: readonly FakeFollowup[];
  readonly solutions: readonly FakeSolution[];
  /** Problems (../problems.ts), the same rows the legacy API shows. */
  readonly problems: ReadonlyMap<number, FakeProblem>;
  /** A session for a token's user (its visible entities), as `Session::init()` gives the temporary v2 session. */
  sessionFor(account: FakeAccount): FakeSession;
  /** `Session::haveAccessToEntity()` for this session. */
  canSeeEntity(session: FakeSession, entityId: number): boolean;
  /** Whether the user may reopen a closed ticket (and so add a follow-up to it). */
  canReopenClosed(): boolean;
  /** The active entity (where a create without an entity goes). */
  activeEntity(session: FakeSession): number;
  /** `CommonDBTM::add()` of the legacy fake, messages in `language`: the id, or false and GLPI's message. */
  add(session: FakeSession, language: Language, itemtype: 'Ticket' | 'Problem' | 'ITILFollowup' | 'ITILSolution', input: Record<string, unknown>): { id: number | false; message: string };
  /** `CommonDBTM::update()` of a ticket. */
  update(session: FakeSession, language: Language, ticket: FakeTicket, input: Record<string, unknown>): { ok: boolean; message: string };
  /** Assign a group to a ticket (a Group_Ticket row of type assign; an incoming ticket becomes assigned). */
  assignGroup(session: FakeSession, ticket: FakeTicket, groupId: number): boolean;
  /**
   * `CommonITILObject::addTeamMember('User', id, ['role' => role])`: a Ticket_User / Problem_User row of that
   * type; false for a user GLPI does not have or one already in that role. Assigning a user makes a new item assigned.
   */
  addTeamUser(session: FakeSession, item: FakeTicket | FakeProblem, userId: number, role: 'requester' | 'assign' | 'observer'): boolean;
  /** Whether a dropdown / group / entity id exists (the fake's configured ids; undefined lists: any). */
  itemExists(itemtype: string, id: number): boolean;
  userName(id: number): string | null;
  /** A user's login, real name and first name (an account or a directory user); undefined when GLPI has no such user. */
  user(id: number): { name: string; realname: string | null; firstname: string | null } | undefined;
  entityName(id: number): string;
  /** Named categories, groups, entities, request types and users as stored (../directory.ts; undefined: no such table). */
  directoryRows(itemtype: string): Record<string, unknown>[] | undefined;
}
