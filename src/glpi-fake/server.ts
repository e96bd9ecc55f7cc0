import { randomBytes } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tr, type Language } from './messages.js';
import { intval, isset, parseStr, phpBool, phpEmpty, phpKeyedList, type PhpArray } from './php.js';
import { checkCriteria, DEFAULT_DISPLAY, evaluate, fieldsOf, likeMatch, row, sortKey, ticketOptions, toCriteria, type SearchableTicket, type SearchContext } from './search.js';
import { FakeProblemStore, LINK_TO, PROBLEM_STATUS } from './problems.js';
import { decodeHtml, decodeRow, encodeHtml, storeText, storeVarchar } from './sanitizer.js';
import { FakeGlpiV2, type OAuthClient } from './v2/api.js';
import { ASSET_TYPES, FakeDirectory, type FakeAsset, type FakeDirectorySeed } from './directory.js';
import type { V2Host } from './v2/host.js';

export { decodeHtml, encodeHtml } from './sanitizer.js';
export type { Language } from './messages.js';

/**
 * A GLPI legacy REST API (apirest.php) as strict as GLPI for what the bridge uses: sessions (App-Token,
 * user_token or Basic auth, expiry, getFullSession), tickets, follow-ups, solutions, search, the
 * ["ERROR_…", message] bodies and status codes, ticket status transitions, entity-scoped visibility,
 * GLPI 10's HTML-encoded storage and 255-character titles, translated messages. `version: '11'` gives
 * GLPI 11's differences (no encoding, the ticket `externalid` column and search option 87, the legacy API
 * also at `/api.php/v1`). `stripAuthorization` plays a web server that drops the `Authorization` header.
 * Faults can be injected (latency, 5xx rate, down, 429 + Retry-After, session expiry, hangs, dropped
 * answers after commit). Used by the tests, the demo and the benchmark; runnable alone
 * (`npm run fake-glpi`). `test/contract/` pins its answers against recorded GLPI answers; each rule
 * below names the GLPI source it comes from.
 */

export type GlpiVersion = '10' | '11';

/** A ticket row as GLPI stores it (strings HTML-encoded with version 10). */
export interface FakeTicket {
  id: number;
  name: string;
  content: string;
  status: number;
  urgency: number;
  impact: number;
  priority: number;
  type: number;
  itilcategories_id: number;
  entities_id: number;
  requesttypes_id: number;
  /** Not a column: the assigned groups (Group_Ticket rows, type 2). */
  groups_id_assign: number[];
  users_id_recipient: number;
  users_id_lastupdater: number;
  date: string;
  date_creation: string;
  date_mod: string;
  solvedate: string | null;
  closedate: string | null;
  begin_waiting_date: string | null;
  is_deleted: number;
  /** GLPI 11 only (no such column in GLPI 10.0's glpi_tickets). */
  externalid?: string | null;
  /** Not columns: Ticket_User rows by role (requester, assign, observer), from the create's actor inputs. */
  users?: { requester: number[]; assign: number[]; observer: number[] };
  /** Not a column: Item_Ticket rows (the assets linked), from the create's `items_id` input. */
  items?: { itemtype: string; items_id: number }[];
}

export interface FakeFollowup {
  id: number;
  itemtype: string;
  items_id: number;
  content: string;
  is_private: number;
  date: string;
  users_id: number;
  requesttypes_id: number;
}

export interface FakeSolution {
  id: number;
  itemtype: string;
  items_id: number;
  content: string;
  /** 2 waiting for approval, 3 accepted, 4 refused. */
  status: number;
  solutiontypes_id: number;
  users_id: number;
}

/** A GLPI user the fake knows; sessions opened with its token or password act as it. */
export interface FakeAccount {
  id: number;
  /** Login (`glpiname`, also what search option 22 displays). */
  name: string;
  userToken?: string;
  password?: string;
  /** Entities this user's profile can see; default: the fake's `visibleEntities`. */
  entities?: readonly number[] | 'all';
  language?: Language;
}

export interface Faults {
  /** Added to every answer. */
  latencyMs: number;
  /** Share of requests (0..1) answered 500 with an HTML body. */
  errorRate: number;
  /** 'up'; 'unavailable': 503 HTML from the web server; 'refuse': connections closed at once. */
  mode: 'up' | 'unavailable' | 'refuse';
  /** Answer this many next requests 429 with Retry-After: retryAfterSeconds. */
  rateLimitNext: number;
  retryAfterSeconds: number;
  /** Never answer this many next requests (client timeout). */
  hangNext: number;
  /** Commit this many next creates/follow-ups, then drop the connection without answering. */
  dropAfterCommitNext: number;
}

export interface FakeGlpiOptions {
  /** GLPI behaviour to reproduce (default '10'). */
  version?: GlpiVersion;
  /** GLPI's default language and that of every account without its own (default 'en_GB'). */
  language?: Language;
  appToken?: string;
  /** Each token is a user (ids 7, 8, … in order, logins `api-user-1`, …) unless `accounts` names it. */
  userTokens?: readonly string[];
  /** login → password, for Basic auth (ids follow the token users). */
  users?: Readonly<Record<string, string>>;
  accounts?: readonly FakeAccount[];
  /** ITIL category ids that exist; others get 400 on create (a fake rule). Undefined: any id exists. */
  categories?: readonly number[];
  /** Group ids that exist; undefined: any. */
  groups?: readonly number[];
  /** Entity ids that exist (default: only the root entity 0, as on a fresh GLPI). */
  entities?: readonly number[];
  /** Entities the users' profile can see, for accounts without their own (default 'all'). */
  visibleEntities?: readonly number[] | 'all';
  /** 0: solved tickets close at once (autoclose_delay 0); -10: never (GLPI 10 default). */
  autocloseDelay?: number;
  /** Whether the API user may reopen closed tickets (and so add follow-ups to them). Default false. */
  canReopenClosed?: boolean;
  /** `glpilist_limit` (default 20). */
  listLimit?: number;
  /** What getGlpiConfig says in `cfg_glpi.version` (default 10.0.18, or 11.0.4 with version '11'). */
  fullVersion?: string;
  /**
   * Drop the `Authorization` request header before GLPI sees it, as Apache in front of PHP-FPM/CGI does
   * without `CGIPassAuth On` (or `SetEnvIf Authorization …`): initSession with `Authorization: user_token …`
   * or Basic then answers ERROR_LOGIN_PARAMETERS_MISSING; `?user_token=…` in the query still works.
   */
  stripAuthorization?: boolean;
  /** GLPI 11's OAuth clients for the high-level API (v2/api.ts; default: one client `bridge-client` / `bridge-secret`). */
  oauthClients?: readonly OAuthClient[];
  /** Categories, groups, entities, request types, users and assets with names (directory.ts); their ids exist. */
  directory?: FakeDirectorySeed;
  /**
   * Workflows that refuse a solution (issue 14 item 4). `solveAllowed: false`: the profile's status matrix
   * (`ticket_status`) lacks the move to Solved, so CommonITILObject::canSolve() is false and the solution is
   * refused with the rights message (ERROR_GLPI_ADD), and a status update to Solved or Closed is dropped
   * without a word (prepareInputForUpdate() unsets a status isAllowedStatus() refuses; both from the 10.0
   * source as remembered, not re-read). `mandatoryOnSolve`: a site whose ticket template (or a rule, or a
   * plugin) refuses the ticket's move to Solved: the solution row is stored (ITILSolution::
   * prepareInputForAdd() @ 0042059c82075d3223c145cb3609a83019fc0cd2 does not look at templates) but the
   * ticket's update to Solved in ITILSolution::post_addItem() is refused with GLPI's template message
   * "Mandatory fields are not filled. Please correct: …", so the ticket keeps its status; a PUT of status
   * 5 or 6 gets that refusal too. Whether stock GLPI checks a template's mandatory fields on that update is
   * not confirmed from its source; the shape (stored solution, status unchanged) is what the bridge handles.
   */
  workflow?: { solveAllowed?: boolean; mandatoryOnSolve?: readonly string[] };
}

export interface RequestLog {
  method: string;
  path: string;
  status: number;
}

export interface FakeSession {
  token: string;
  account: FakeAccount;
  /** The session's active entities (`glpiactiveentities`); 'all' when unrestricted. */
  activeEntities: readonly number[] | 'all';
}

const PRIORITY: readonly (readonly number[])[] = [
  [1, 1, 2, 2, 2],
  [1, 2, 2, 3, 3],
  [2, 2, 3, 4, 4],
  [2, 3, 4, 4, 5],
  [2, 3, 4, 5, 5],
];

function priorityOf(urgency: number, impact: number): number {
  return PRIORITY[urgency - 1]?.[impact - 1] ?? 3;
}

function now(): string {
  return new Date().toISOString().replace('T', ' ').slice(0, 19);
}

class Answer {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {}
}

export const DEFAULT_FAULTS: Faults = {
  latencyMs: 0,
  errorRate: 0,
  mode: 'up',
  rateLimitNext: 0,
  retryAfterSeconds: 1,
  hangNext: 0,
  dropAfterCommitNext: 0,
};

/** CommonITILObject status constants. */
export const STATUS = { INCOMING: 1, ASSIGNED: 2, PLANNED: 3, WAITING: 4, SOLVED: 5, CLOSED: 6 } as const;

/** Itemtypes the fake serves, by lower-case name (PHP class names are case-insensitive). */
const ITEMTYPES: Record<string, string> = {
  ticket: 'Ticket',
  computer: 'Computer',
  networkequipment: 'NetworkEquipment',
  printer: 'Printer',
  phone: 'Phone',
  peripheral: 'Peripheral',
  itilfollowup: 'ITILFollowup',
  itilsolution: 'ITILSolution',
  itilcategory: 'ITILCategory',
  group: 'Group',
  entity: 'Entity',
  requesttype: 'RequestType',
  user: 'User',
  problem: 'Problem',
  problem_ticket: 'Problem_Ticket',
  ticket_ticket: 'Ticket_Ticket',
};

/** Children listed in a Ticket's `links` (API::getHatoasClasses()). */
const TICKET_CHILDREN = [
  'Document_Item', 'Contract_Item', 'TicketTask', 'TicketValidation', 'TicketCost', 'Problem_Ticket', 'Change_Ticket',
  'Item_Ticket', 'ITILSolution', 'ITILFollowup', 'Ticket_User', 'Group_Ticket', 'Supplier_Ticket',
];

/** Foreign keys of the rows the fake returns → itemtype (for `links` and `expand_dropdowns`). */
const FOREIGN_KEYS: Record<string, string> = {
  entities_id: 'Entity',
  users_id_recipient: 'User',
  users_id_lastupdater: 'User',
  users_id: 'User',
  users_id_editor: 'User',
  users_id_approval: 'User',
  requesttypes_id: 'RequestType',
  itilcategories_id: 'ITILCategory',
  solutiontypes_id: 'SolutionType',
  locations_id: 'Location',
  slas_id_ttr: 'SLA',
  slas_id_tto: 'SLA',
  olas_id_ttr: 'OLA',
  olas_id_tto: 'OLA',
};

/** One request's view of the world: the session (if any), its language, the API base URL. */
interface Ctx {
  session: FakeSession | undefined;
  language: Language;
  /** `X-GLPI-Sanitized-Content` (GLPI 10: false decodes getItem/getItems output and create messages). */
  sanitized: boolean;
  params: PhpArray;
  body: Record<string, unknown>;
}

export class FakeGlpi {
  readonly tickets = new Map<number, FakeTicket>();
  readonly followups: FakeFollowup[] = [];
  readonly solutions: FakeSolution[] = [];
  readonly requests: RequestLog[] = [];
  readonly sessions = new Map<string, FakeSession>();
  readonly accounts: FakeAccount[] = [];
  sessionsOpened = 0;
  faults: Faults = { ...DEFAULT_FAULTS };
  readonly version: GlpiVersion;
  readonly language: Language;
  #nextId = { ticket: 1, followup: 1, solution: 1 };
  #server: http.Server | undefined;
  readonly #hung = new Set<ServerResponse>();
  #opt: FakeGlpiOptions;
  /** GLPI 11's high-level API (`/api.php/v2/…`, `/api.php/token`), over this same store. */
  readonly v2: FakeGlpiV2;
  /** Named categories, groups, entities, request types, users, assets (directory.ts). */
  readonly directory: FakeDirectory;
  /** Problems and ITIL links (problems.ts). */
  readonly itil = new FakeProblemStore();

  constructor(opt: FakeGlpiOptions = {}) {
    this.#opt = { userTokens: ['user-token'], users: {}, autocloseDelay: -10, listLimit: 20, ...opt };
    this.directory = new FakeDirectory(opt.directory, (opt.version ?? '10') === '10');
    // Named items exist: their ids join the lists of ids that exist.
    const d = this.directory;
    if (d.entityIds().length > 0) this.#opt.entities = [...new Set([...(this.#opt.entities ?? [0]), ...d.entityIds()])];
    if (this.#opt.categories && d.categories.length > 0) this.#opt.categories = [...this.#opt.categories, ...d.categories.map((c) => c.id)];
    if (this.#opt.groups && d.groups.length > 0) this.#opt.groups = [...this.#opt.groups, ...d.groups.map((g) => g.id)];
    this.version = opt.version ?? '10';
    this.language = opt.language ?? 'en_GB';
    for (const a of opt.accounts ?? []) this.accounts.push({ ...a });
    let next = Math.max(6, ...this.accounts.map((a) => a.id)) + 1;
    (this.#opt.userTokens ?? []).forEach((token, i) => {
      if (!this.accounts.some((a) => a.userToken === token)) this.accounts.push({ id: next++, name: `api-user-${i + 1}`, userToken: token });
    });
    for (const [login, password] of Object.entries(this.#opt.users ?? {})) {
      if (!this.accounts.some((a) => a.name === login)) this.accounts.push({ id: next++, name: login, password });
    }
    this.v2 = new FakeGlpiV2(this.#v2Host(), opt.oauthClients);
  }

  /** The store and the rules the v2 API shares with the legacy one (v2/host.ts). */
  #v2Host(): V2Host {
    const ctx = (session: FakeSession, language: Language): Ctx => ({ session, language, sanitized: true, params: {}, body: {} });
    const known: Record<string, () => readonly number[] | undefined> = {
      ITILCategory: () => this.#opt.categories,
      Group: () => this.#opt.groups,
      Entity: () => this.#opt.entities ?? [0],
    };
    return {
      version: this.version,
      language: this.language,
      accounts: this.accounts,
      tickets: this.tickets,
      followups: this.followups,
      solutions: this.solutions,
      problems: this.itil.problems,
      sessionFor: (account) => ({ token: '', account, activeEntities: this.#visible(account) }),
      canSeeEntity: (session, id) => this.#canSeeEntity(ctx(session, this.language), id),
      canReopenClosed: () => this.#opt.canReopenClosed === true,
      activeEntity: (session) => this.#activeEntity(session),
      add: (session, language, itemtype, input) => this.#addOne(ctx(session, language), itemtype, input),
      update: (session, language, ticket, input) => this.#updateTicket(ctx(session, language), ticket, input),
      assignGroup: (session, t, groupId) => {
        if (this.#opt.groups && !this.#opt.groups.includes(groupId)) return false;
        if (!t.groups_id_assign.includes(groupId)) t.groups_id_assign.push(groupId);
        if (t.status === STATUS.INCOMING) this.#applyStatus(t, STATUS.ASSIGNED);
        t.date_mod = now();
        t.users_id_lastupdater = session.account.id;
        return true;
      },
      addTeamUser: (session, item, userId, role) => {
        const user = this.#userName(userId) !== null || this.directory.row('User', userId) !== undefined;
        if (!user) return false;
        const users = (item.users ??= { requester: [], assign: [], observer: [] });
        // The writer is the requester of what it created (see the create): adding it again is a duplicate.
        if (users[role].includes(userId) || (role === 'requester' && item.users_id_recipient === userId)) return false;
        users[role].push(userId);
        if (role === 'assign' && item.status === STATUS.INCOMING) item.status = STATUS.ASSIGNED;
        item.date_mod = now();
        if ('users_id_lastupdater' in item) item.users_id_lastupdater = session.account.id;
        return true;
      },
      itemExists: (itemtype, id) => known[itemtype]?.()?.includes(id) ?? true,
      userName: (id) => this.#userName(id),
      user: (id) => {
        const row = this.directory.row('User', id);
        if (row) return { name: String(row.name), realname: typeof row.realname === 'string' ? row.realname : null, firstname: typeof row.firstname === 'string' ? row.firstname : null };
        const name = this.#userName(id);
        return name === null ? undefined : { name, realname: null, firstname: null };
      },
      entityName: (id) => this.#entityName(id),
      directoryRows: (itemtype) => this.directory.rows(itemtype),
    };
  }

  /** Listen on 127.0.0.1 (port 0 = any); resolves with the apirest.php base URL. */
  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    this.#server = http.createServer((req, res) => void this.#handle(req, res));
    this.#server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve) => this.#server!.listen(port, host, resolve));
    return this.url;
  }

  get url(): string {
    const a = this.#server?.address() as AddressInfo | null;
    if (!a) throw new Error('fake GLPI is not listening');
    return `http://127.0.0.1:${a.port}/apirest.php`;
  }

  /** GLPI 11's other address of the legacy API (`ApiController`: `/api.php/v1/…` runs `APIRest::call()`). */
  get urlV1(): string {
    return this.url.replace(/\/apirest\.php$/, '/api.php/v1');
  }

  /**
   * The legacy API's resource path. `apirest.php/…` on every version; GLPI 11 also routes `api.php/v1/…` to
   * it (`Glpi\Controller\ApiController`), and its `APIRest::call()` removes `v1/` from PATH_INFO.
   */
  #apiPath(pathname: string): string {
    return pathname.replace(this.version === '11' ? /^\/(?:apirest\.php|api\.php\/v1)\/?/ : /^\/apirest\.php\/?/, '');
  }

  /** Whether the path reaches the legacy API at all (GLPI 10 has no `api.php`). */
  #served(pathname: string): boolean {
    return /^\/apirest\.php(\/|$)/.test(pathname) || (this.version === '11' && /^\/api\.php\/v1(\/|$)/.test(pathname));
  }

  /** `$CFG_GLPI['url_base_api']`, used in Location headers, links and "view documentation" suffixes. */
  get #apiUrl(): string {
    try {
      return this.url;
    } catch {
      return 'http://127.0.0.1/apirest.php';
    }
  }

  async close(): Promise<void> {
    for (const res of this.#hung) res.destroy();
    this.#hung.clear();
    if (!this.#server) return;
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server!.close(() => resolve()));
    this.#server = undefined;
  }

  // ---- controls for tests, the demo and the benchmark -------------------------------------------

  /** Make more ITIL category ids exist (an admin creating the missing category). */
  allowCategories(...ids: number[]): void {
    if (this.#opt.categories) this.#opt.categories = [...this.#opt.categories, ...ids];
  }

  setFaults(f: Partial<Faults>): void {
    this.faults = { ...this.faults, ...f };
  }

  /** Forget every session (what PHP's session GC does). */
  expireSessions(): void {
    this.sessions.clear();
  }

  /** Change a ticket's status as a technician would in the UI (dates follow; solutions accepted/refused). */
  /** A follow-up a technician (another GLPI user) adds through the UI: the ticket's date_mod moves (tests of issue 14 item 5). */
  addTechnicianFollowup(ticketId: number, usersId: number, content: string, isPrivate = false): FakeFollowup {
    const t = this.tickets.get(ticketId);
    if (!t) throw new Error(`no ticket ${ticketId}`);
    const f: FakeFollowup = { id: this.#nextId.followup++, itemtype: 'Ticket', items_id: ticketId, content: storeText(content, this.#encodes()), is_private: isPrivate ? 1 : 0, date: now(), users_id: usersId, requesttypes_id: 1 };
    this.followups.push(f);
    t.date_mod = now();
    return f;
  }

  setTicketStatus(id: number, status: number): void {
    const t = this.tickets.get(id);
    if (!t) throw new Error(`no ticket ${id}`);
    this.#applyStatus(t, status);
    t.date_mod = now();
  }

  /** Restrict what an account's profile sees (all accounts when `accountId` is omitted); open sessions follow. */
  setVisibleEntities(entities: readonly number[] | 'all', accountId?: number): void {
    for (const a of this.accounts) if (accountId === undefined || a.id === accountId) a.entities = entities;
    for (const s of this.sessions.values()) if (accountId === undefined || s.account.id === accountId) s.activeEntities = this.#visible(s.account);
  }

  /** The account a user token logs in as. */
  accountOf(userToken: string): FakeAccount | undefined {
    return this.accounts.find((a) => a.userToken === userToken);
  }

  count(method: string, pathPrefix: string, status?: number): number {
    return this.requests.filter((r) => r.method === method && r.path.startsWith(pathPrefix) && (status === undefined || r.status === status)).length;
  }

  followupsOf(ticketId: number): FakeFollowup[] {
    return this.followups.filter((f) => f.itemtype === 'Ticket' && f.items_id === ticketId);
  }

  snapshot(): { version: GlpiVersion; tickets: FakeTicket[]; followups: FakeFollowup[]; solutions: FakeSolution[]; requests: number; sessionsOpened: number } {
    return { version: this.version, tickets: [...this.tickets.values()], followups: this.followups, solutions: this.solutions, requests: this.requests.length, sessionsOpened: this.sessionsOpened };
  }

  // ---- HTTP ---------------------------------------------------------------------------------------

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    if (url.pathname.startsWith('/_fake/')) return this.#control(req, res, url, raw);
    const f = this.faults;
    if (f.mode === 'refuse') {
      req.socket.destroy();
      return;
    }
    if (f.hangNext > 0) {
      f.hangNext--;
      this.#hung.add(res);
      return;
    }
    if (f.latencyMs > 0) await new Promise((r) => setTimeout(r, f.latencyMs));
    let answer: Answer;
    let drop = false;
    let committed = false;
    if (f.mode === 'unavailable') {
      answer = new Answer(503, '<html><body><h1>503 Service Unavailable</h1></body></html>');
    } else if (f.rateLimitNext > 0) {
      f.rateLimitNext--;
      answer = new Answer(429, '<html><body>Too Many Requests</body></html>', { 'Retry-After': String(f.retryAfterSeconds) });
    } else if (f.errorRate > 0 && Math.random() < f.errorRate) {
      answer = new Answer(500, '<html><body>Internal Server Error</body></html>');
    } else if (this.version === '11' && this.v2.serves(url.pathname)) {
      const headers = { ...req.headers };
      if (this.#opt.stripAuthorization) delete headers.authorization;
      const r = this.v2.handle(req.method ?? 'GET', url, headers, raw);
      answer = new Answer(r.status, r.body, r.headers);
      committed = r.committed === true;
    } else if (!this.#served(url.pathname)) {
      answer = new Answer(404, '<html><body><h1>Not Found</h1></body></html>');
    } else {
      const headers = { ...req.headers };
      if (this.#opt.stripAuthorization) delete headers.authorization;
      answer = this.#api(req.method ?? 'GET', url, headers, raw);
      committed = answer.status === 201;
    }
    // A create committed (legacy: 201; v2: 200 with the new id), then the connection dropped.
    if (committed && f.dropAfterCommitNext > 0 && req.method === 'POST') {
      f.dropAfterCommitNext--;
      drop = true;
    }
    const path = this.#apiPath(url.pathname);
    this.requests.push({ method: req.method ?? 'GET', path, status: drop ? 0 : answer.status });
    if (drop) {
      req.socket.destroy();
      return;
    }
    const isJson = typeof answer.body !== 'string';
    res.writeHead(answer.status, {
      'Content-Type': isJson ? 'application/json; charset=UTF-8' : 'text/html',
      ...answer.headers,
    });
    res.end(isJson ? JSON.stringify(answer.body) : answer.body);
  }

  #control(req: IncomingMessage, res: ServerResponse, url: URL, raw: string): void {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(raw || '{}') as Record<string, unknown>;
    } catch {
      return send(400, { error: 'body must be JSON' });
    }
    if (url.pathname === '/_fake/state') return send(200, this.snapshot());
    if (url.pathname === '/_fake/faults' && req.method === 'POST') {
      this.setFaults(body as Partial<Faults>);
      return send(200, this.faults);
    }
    if (url.pathname === '/_fake/expire-tokens' && req.method === 'POST') {
      this.v2.expireTokens();
      return send(200, { ok: true });
    }
    if (url.pathname === '/_fake/expire-sessions' && req.method === 'POST') {
      this.expireSessions();
      return send(200, { ok: true });
    }
    const status = /^\/_fake\/tickets\/(\d+)\/status$/.exec(url.pathname);
    if (status && req.method === 'POST') {
      const id = Number(status[1]);
      if (!this.tickets.has(id) || typeof body.status !== 'number') return send(400, { error: 'unknown ticket or body without a numeric status' });
      this.setTicketStatus(id, body.status);
      return send(200, this.tickets.get(id));
    }
    if (url.pathname === '/_fake/visible-entities' && req.method === 'POST') {
      const entities = body.entities === 'all' ? 'all' : Array.isArray(body.entities) ? body.entities.map(Number) : undefined;
      if (!entities) return send(400, { error: 'body: {"entities": [ids] | "all", "account"?: id}' });
      this.setVisibleEntities(entities, typeof body.account === 'number' ? body.account : undefined);
      return send(200, { ok: true });
    }
    send(404, { error: 'unknown control path' });
  }

  // ---- helpers ------------------------------------------------------------------------------------

  #t(ctx: Ctx | Language, msgid: string, ...args: (string | number)[]): string {
    return tr(typeof ctx === 'string' ? ctx : ctx.language, msgid, ...args);
  }

  /** API::returnError(): `["CODE", message]`, with the translated documentation suffix when `doc`. */
  #err(ctx: Ctx | Language, status: number, code: string, message: string | null | unknown[], doc = false): Answer {
    if (typeof message === 'string' && doc) message = `${message}; ${this.#t(ctx, 'view documentation in your browser at %s', `${this.#apiUrl}/#${code}`)}`;
    return new Answer(status, [code, message]);
  }

  #rights(ctx: Ctx): string {
    return this.#t(ctx, "You don't have permission to perform this action.");
  }

  #encodes(): boolean {
    return this.version === '10';
  }

  #visible(account: FakeAccount): readonly number[] | 'all' {
    return account.entities ?? this.#opt.visibleEntities ?? 'all';
  }

  #entityExists(id: number): boolean {
    return (this.#opt.entities ?? [0]).includes(id);
  }

  /** Session::haveAccessToEntity() against the session's active entities. */
  #canSeeEntity(ctx: Ctx, id: number): boolean {
    const active = ctx.session?.activeEntities ?? 'all';
    return this.#entityExists(id) && (active === 'all' || active.includes(id));
  }

  #activeEntity(s: FakeSession): number {
    return s.activeEntities === 'all' ? (this.#opt.entities?.[0] ?? 0) : (s.activeEntities[0] ?? 0);
  }

  #activeEntityList(s: FakeSession): number[] {
    return s.activeEntities === 'all' ? [...(this.#opt.entities ?? [0])] : [...s.activeEntities];
  }

  #checkAppToken(params: PhpArray, language: Language): Answer | undefined {
    const given = typeof params.app_token === 'string' ? params.app_token : '';
    const expected = this.#opt.appToken ?? '';
    if (given === expected) return undefined;
    if (given === '') return this.#err(language, 400, 'ERROR_APP_TOKEN_PARAMETERS_MISSING', this.#t(language, 'missing parameter app_token'), true);
    return this.#err(language, 400, 'ERROR_WRONG_APP_TOKEN_PARAMETER', this.#t(language, 'parameter app_token seems wrong'), true);
  }

  // ---- routing (APIRest::call()) ------------------------------------------------------------------

  #api(method: string, url: URL, headers: http.IncomingHttpHeaders, raw: string): Answer {
    const path = this.#apiPath(url.pathname).replace(/^api\//, '').replace(/^\/+|\/+$/g, '');
    const parts = path.split('/');
    const resource = parts[0] ?? '';
    const lang0 = this.language;
    // Parameters: query string (parse_str), then the body's top-level keys, then headers.
    const params = parseStr(url.searchParams);
    if (raw.trim().length > 0 && method === 'GET') return this.#err(lang0, 400, 'ERROR_JSON_PAYLOAD_FORBIDDEN', 'GET Request should not have json payload (http body)', true);
    let body: Record<string, unknown> = {};
    const contentType = headers['content-type'] ?? 'application/json';
    if (contentType.includes('application/json') && raw.trim().length > 0) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw);
      } catch {
        parsed = null;
      }
      // json_decode()'s result is tested for truthiness: [], 0, "", null and false are "not valid".
      if (phpEmpty(parsed)) {
        return this.#err(lang0, 400, 'ERROR_JSON_PAYLOAD_INVALID', 'JSON payload seems not valid');
      }
      if (typeof parsed === 'object' && parsed !== null) body = parsed as Record<string, unknown>;
    } else if (contentType.includes('application/x-www-form-urlencoded')) {
      body = parseStr(new URLSearchParams(raw)) as Record<string, unknown>;
    }
    for (const [k, v] of Object.entries(body)) if (typeof v === 'string') params[k] = v;
    const auth = headers.authorization ?? '';
    if (auth.includes('user_token')) params.user_token = auth.split(' ')[1] ?? '';
    if (auth.startsWith('Basic ')) {
      const [login, ...pw] = Buffer.from(auth.slice(6), 'base64').toString('utf8').split(':');
      params.login = login ?? '';
      params.password = pw.join(':');
    }
    if (typeof headers['session-token'] === 'string') params.session_token = headers['session-token'];
    if (typeof headers['app-token'] === 'string') params.app_token = headers['app-token'];
    const sanitized = phpBool(headers['x-glpi-sanitized-content'] as string | undefined, true);

    // An empty resource (or `api`) is the inline documentation, served without any token check.
    if (resource === '' || resource === 'api') return new Answer(200, '<html><body><h1>GLPI REST API documentation</h1></body></html>');
    if (resource === 'initSession') return this.#initSession(params, body, lang0);
    const appError = this.#checkAppToken(params, lang0);
    if (appError) return appError;
    const token = typeof params.session_token === 'string' ? params.session_token.trim() : '';
    if (token === '') return this.#err(lang0, 400, 'ERROR_SESSION_TOKEN_MISSING', this.#t(lang0, 'parameter session_token is missing or empty'), true);
    const session = this.sessions.get(token);
    if (!session) return this.#err(lang0, 401, 'ERROR_SESSION_TOKEN_INVALID', this.#t(lang0, 'session_token seems invalid'));
    const ctx: Ctx = { session, language: session.account.language ?? this.language, sanitized: this.version === '11' ? true : sanitized, params, body };

    switch (resource) {
      case 'killSession':
        this.sessions.delete(token);
        return new Answer(200, true);
      case 'getFullSession':
        return new Answer(200, { session: this.#sessionData(session, ctx) });
      case 'getActiveEntities':
        return new Answer(200, {
          active_entity: { id: this.#activeEntity(session), active_entity_recursive: false, active_entities: this.#activeEntityList(session).map((id) => ({ id })) },
        });
      case 'getMyEntities':
        return new Answer(200, { myentities: this.#activeEntityList({ ...session, activeEntities: this.#visible(session.account) }).map((id) => ({ id, name: this.#entityName(id) })) });
      case 'changeActiveEntities':
        return this.#changeActiveEntities(ctx, session);
      case 'getGlpiConfig':
        return new Answer(200, { cfg_glpi: this.#safeConfig() });
      case 'search':
        return this.#search(ctx, parts[1] ?? '');
      default:
        break;
    }
    // CommonDBTM manipulation: /itemtype[/id[/child[/childid]]]
    const itemtype = ITEMTYPES[resource.toLowerCase()];
    if (!itemtype) {
      return this.#err(ctx, 400, 'ERROR_RESOURCE_NOT_FOUND_NOR_COMMONDBTM', this.#t(ctx, 'resource not found or not an instance of CommonDBTM'), true);
    }
    const childType = parts[2] !== undefined ? ITEMTYPES[parts[2].toLowerCase()] : undefined;
    if (parts[2] !== undefined && parts[2] !== '' && !childType) {
      return this.#err(ctx, 400, 'ERROR_RESOURCE_NOT_FOUND_NOR_COMMONDBTM', this.#t(ctx, 'resource not found or not an instance of CommonDBTM'), true);
    }
    const num = (s: string | undefined) => (s !== undefined && /^-?\d+(\.\d+)?$/.test(s) ? Math.trunc(Number(s)) : undefined);
    let id = num(parts[1]);
    let parent: { itemtype: string; id: number } | undefined;
    if (childType) {
      parent = { itemtype, id: id ?? 0 };
      id = num(parts[3]);
    }
    const type = childType ?? itemtype;
    switch (method) {
      case 'POST':
        return this.#createItems(ctx, type, body.input);
      case 'PUT':
      case 'PATCH': {
        if (!('input' in body)) return this.#err(ctx, 400, 'ERROR_BAD_ARRAY', this.#t(ctx, 'input parameter must be an array of objects'), true);
        let input = body.input;
        if (id !== undefined && (id > 0 || (id === 0 && type === 'Entity')) && input && typeof input === 'object' && !Array.isArray(input) && !('id' in input)) {
          input = { ...(input as Record<string, unknown>), id };
        }
        return this.#updateItems(ctx, type, input);
      }
      case 'DELETE':
        return this.#deleteItems(ctx, type, id !== undefined ? { id } : body.input, phpBool(typeof params.force_purge === 'string' ? params.force_purge : String(body.force_purge ?? ''), false));
      default:
        if (id !== undefined && (id > 0 || (id === 0 && type === 'Entity'))) return this.#getItem(ctx, type, id);
        return this.#getItems(ctx, type, parent);
    }
  }

  // ---- sessions -----------------------------------------------------------------------------------

  #initSession(params: PhpArray, body: Record<string, unknown>, language: Language): Answer {
    const appError = this.#checkAppToken(params, language);
    if (appError) return appError;
    const str = (k: string) => (typeof params[k] === 'string' ? (params[k] as string) : '');
    const userToken = str('user_token');
    const login = str('login');
    const password = str('password');
    if ((login === '' || password === '') && userToken === '') {
      return this.#err(language, 400, 'ERROR_LOGIN_PARAMETERS_MISSING', this.#t(language, 'parameter(s) login, password or user_token are missing'), true);
    }
    let account: FakeAccount | undefined;
    if (userToken !== '') {
      account = this.accounts.find((a) => a.userToken === userToken);
      if (!account) return this.#err(language, 401, 'ERROR_GLPI_LOGIN_USER_TOKEN', this.#t(language, 'parameter user_token seems invalid'));
    } else {
      account = this.accounts.find((a) => a.name === login && a.password !== undefined && a.password === password);
      if (!account) return this.#err(language, 401, 'ERROR_GLPI_LOGIN', this.#t(language, 'Incorrect username or password'));
    }
    const token = randomBytes(13).toString('hex');
    const session: FakeSession = { token, account, activeEntities: this.#visible(account) };
    this.sessions.set(token, session);
    this.sessionsOpened++;
    const full = params.get_full_session ?? body.get_full_session;
    const data: Record<string, unknown> = { session_token: token };
    if (full === true || full === 'true' || full === '1' || full === 1) {
      data.session = this.#sessionData(session, { session, language: account.language ?? this.language, sanitized: true, params, body });
    }
    return new Answer(200, data);
  }

  /** The parts of `$_SESSION` a client may use (API::getFullSession() returns the whole array). */
  #sessionData(s: FakeSession, ctx: Ctx): Record<string, unknown> {
    const active = this.#activeEntityList(s);
    return {
      valid_id: s.token,
      glpi_currenttime: now(),
      glpi_use_mode: 0,
      glpiID: s.account.id,
      // Session::init() copies the user row as stored (GLPI 10: HTML-encoded).
      glpiname: this.#encodes() ? encodeHtml(s.account.name) : s.account.name,
      glpirealname: null,
      glpifirstname: null,
      glpidefault_entity: this.#activeEntity(s),
      glpiextauth: 0,
      glpiauthtype: 1,
      glpilanguage: ctx.language,
      glpilist_limit: this.#opt.listLimit,
      glpiactiveprofile: { id: 4, name: 'Super-Admin', interface: 'central' },
      glpiactiveentities: phpKeyedList(active),
      glpiactiveentities_string: active.map((e) => `'${e}'`).join(','),
      glpiactive_entity: this.#activeEntity(s),
      glpiactive_entity_name: this.#entityName(this.#activeEntity(s)),
      glpiactive_entity_shortname: this.#entityName(this.#activeEntity(s)),
      glpiactive_entity_recursive: false,
      glpigroups: [],
    };
  }

  /** Config::getSafeConfig(): `$CFG_GLPI` without secrets; `version` is the glpi_configs 'version' row. */
  #safeConfig(): Record<string, unknown> {
    const matrix: Record<string, Record<string, number>> = {};
    PRIORITY.forEach((row, u) => {
      matrix[String(u + 1)] = Object.fromEntries(row.map((p, i) => [String(i + 1), p]));
    });
    return {
      version: this.#opt.fullVersion ?? (this.version === '11' ? '11.0.4' : '10.0.18'),
      language: this.language,
      list_limit: this.#opt.listLimit,
      url_base_api: this.#apiUrl,
      priority_matrix: matrix,
      urgency_mask: 62,
      impact_mask: 62,
      enable_api: 1,
      enable_api_login_credentials: 1,
      enable_api_login_external_token: 1,
      use_notifications: 0,
    };
  }

  #changeActiveEntities(ctx: Ctx, s: FakeSession): Answer {
    const raw = ctx.body.is_recursive ?? ctx.params.is_recursive;
    if (raw !== undefined && typeof raw !== 'boolean' && raw !== 'true' && raw !== 'false') return this.#err(ctx, 400, 'ERROR', 'Bad Request', true);
    const visible = this.#visible(s.account);
    const wanted = ctx.body.entities_id ?? ctx.params.entities_id;
    if (wanted === undefined || wanted === 'all') {
      s.activeEntities = visible;
      return new Answer(200, true);
    }
    const id = intval(wanted, 0);
    if (!this.#entityExists(id) || (visible !== 'all' && !visible.includes(id))) return new Answer(200, false);
    s.activeEntities = [id];
    return new Answer(200, true);
  }

  // ---- names --------------------------------------------------------------------------------------

  #entityName(id: number): string {
    return id === 0 ? 'Root entity' : `Root entity > Entity ${id}`;
  }

  #userName(id: number): string | null {
    return this.accounts.find((a) => a.id === id)?.name ?? null;
  }

  /** The login as the users table holds it (HTML-encoded with GLPI 10). */
  #storedUserName(id: number): string | null {
    const name = this.#userName(id);
    return name !== null && this.#encodes() ? encodeHtml(name) : name;
  }

  // ---- rows ---------------------------------------------------------------------------------------

  #ticketRow(t: FakeTicket): Record<string, unknown> {
    const r: Record<string, unknown> = {
      id: t.id,
      entities_id: t.entities_id,
      name: t.name,
      date: t.date,
      closedate: t.closedate,
      solvedate: t.solvedate,
      takeintoaccountdate: null,
      date_mod: t.date_mod,
      users_id_lastupdater: t.users_id_lastupdater,
      status: t.status,
      users_id_recipient: t.users_id_recipient,
      requesttypes_id: t.requesttypes_id,
      content: t.content,
      urgency: t.urgency,
      impact: t.impact,
      priority: t.priority,
      itilcategories_id: t.itilcategories_id,
      type: t.type,
      global_validation: 1,
      slas_id_ttr: 0,
      slas_id_tto: 0,
      slalevels_id_ttr: 0,
      time_to_resolve: null,
      time_to_own: null,
      begin_waiting_date: t.begin_waiting_date,
      sla_waiting_duration: 0,
      ola_waiting_duration: 0,
      olas_id_tto: 0,
      olas_id_ttr: 0,
      olalevels_id_ttr: 0,
      ola_ttr_begin_date: null,
      internal_time_to_resolve: null,
      internal_time_to_own: null,
      waiting_duration: 0,
      close_delay_stat: 0,
      solve_delay_stat: 0,
      takeintoaccount_delay_stat: 0,
      actiontime: 0,
      is_deleted: t.is_deleted,
      locations_id: 0,
      validation_percent: 0,
      date_creation: t.date_creation,
    };
    if (this.version === '11') r.externalid = t.externalid ?? null;
    return r;
  }

  #followupRow(f: FakeFollowup): Record<string, unknown> {
    return {
      id: f.id,
      itemtype: f.itemtype,
      items_id: f.items_id,
      date: f.date,
      users_id: f.users_id,
      users_id_editor: 0,
      content: f.content,
      is_private: f.is_private,
      requesttypes_id: f.requesttypes_id,
      date_mod: f.date,
      date_creation: f.date,
      timeline_position: 1,
      sourceitems_id: 0,
      sourceof_items_id: 0,
    };
  }

  #solutionRow(s: FakeSolution): Record<string, unknown> {
    return {
      id: s.id,
      itemtype: s.itemtype,
      items_id: s.items_id,
      solutiontypes_id: s.solutiontypes_id,
      solutiontype_name: null,
      content: s.content,
      date_creation: null,
      date_mod: null,
      date_approval: null,
      users_id: s.users_id,
      user_name: null,
      users_id_editor: 0,
      users_id_approval: 0,
      user_name_approval: null,
      status: s.status,
      itilfollowups_id: null,
    };
  }

  /** The table's columns (`getEmpty()`), which `sort` must name. */
  #columns(itemtype: string): string[] {
    const t: FakeTicket = {
      id: 0, name: '', content: '', status: 1, urgency: 3, impact: 3, priority: 3, type: 1, itilcategories_id: 0, entities_id: 0, requesttypes_id: 1,
      groups_id_assign: [], users_id_recipient: 0, users_id_lastupdater: 0, date: '', date_creation: '', date_mod: '', solvedate: null, closedate: null,
      begin_waiting_date: null, is_deleted: 0,
    };
    if (itemtype === 'Ticket') return Object.keys(this.#ticketRow(t));
    if (itemtype === 'ITILFollowup') return Object.keys(this.#followupRow({ id: 0, itemtype: '', items_id: 0, content: '', is_private: 0, date: '', users_id: 0, requesttypes_id: 0 }));
    if (itemtype === 'ITILSolution') return Object.keys(this.#solutionRow({ id: 0, itemtype: '', items_id: 0, content: '', status: 2, solutiontypes_id: 0, users_id: 0 }));
    const named = this.directory.rows(itemtype)?.[0];
    if (named) return Object.keys(named);
    return ['id', 'name', 'completename'];
  }

  /** API::parseDropdowns() (links for foreign keys, expand_dropdowns), hateoas children, decoding. */
  #present(ctx: Ctx, itemtype: string, r: Record<string, unknown>): Record<string, unknown> {
    const hateoas = ctx.params.get_hateoas === undefined ? true : phpBool(String(ctx.params.get_hateoas), true);
    const expand = phpBool(typeof ctx.params.expand_dropdowns === 'string' ? ctx.params.expand_dropdowns : undefined, false);
    const out: Record<string, unknown> = { ...r };
    const links: { rel: string; href: string }[] = [];
    for (const [key, value] of Object.entries(r)) {
      let target = FOREIGN_KEYS[key];
      if (key === 'items_id' && typeof r.itemtype === 'string') target = r.itemtype;
      if (!target || typeof value !== 'number' || (value === 0 && key !== 'entities_id')) continue;
      if (hateoas) links.push({ rel: target, href: `${this.#apiUrl}/${target}/${value}` });
      if (expand) out[key] = target === 'Entity' ? this.#entityName(value) : target === 'User' ? (this.#userName(value) ?? '') : `${target} ${value}`;
    }
    if (hateoas && itemtype === 'Ticket') for (const child of TICKET_CHILDREN) links.push({ rel: child, href: `${this.#apiUrl}/Ticket/${String(r.id)}/${child}/` });
    if (hateoas && links.length > 0) out.links = links;
    return ctx.sanitized ? out : decodeRow(out);
  }

  // ---- GET one ------------------------------------------------------------------------------------

  #getItem(ctx: Ctx, itemtype: string, id: number): Answer {
    const notFound = () => this.#err(ctx, 404, 'ERROR_ITEM_NOT_FOUND', this.#t(ctx, 'Item not found'));
    const forbidden = () => this.#err(ctx, 403, 'ERROR_RIGHT_MISSING', this.#rights(ctx));
    if (itemtype === 'Ticket') {
      const t = this.tickets.get(id);
      if (!t) return notFound();
      if (!this.#canSeeEntity(ctx, t.entities_id)) return forbidden();
      const r = this.#ticketRow(t);
      return new Answer(200, this.#present(ctx, 'Ticket', r), { 'Last-Modified': new Date(`${t.date_mod}Z`).toUTCString() });
    }
    if (itemtype === 'Problem') {
      const p = this.itil.problems.get(id);
      if (!p) return notFound();
      if (!this.#canSeeEntity(ctx, p.entities_id)) return forbidden();
      return new Answer(200, this.#present(ctx, 'Problem', { ...p }));
    }
    if (itemtype === 'ITILFollowup' || itemtype === 'ITILSolution') {
      const item = itemtype === 'ITILFollowup' ? this.followups.find((f) => f.id === id) : this.solutions.find((s) => s.id === id);
      if (!item) return notFound();
      const t = this.tickets.get(item.items_id);
      if (!t || !this.#canSeeEntity(ctx, t.entities_id)) return forbidden();
      const r = itemtype === 'ITILFollowup' ? this.#followupRow(item as FakeFollowup) : this.#solutionRow(item as FakeSolution);
      return new Answer(200, this.#present(ctx, itemtype, r));
    }
    if (ASSET_TYPES.includes(itemtype as (typeof ASSET_TYPES)[number])) {
      const a = this.directory.asset(itemtype, id);
      if (!a) return notFound();
      if (!this.#canSeeEntity(ctx, a.entities_id ?? 0)) return forbidden();
      return new Answer(200, this.#present(ctx, itemtype, { id: a.id, name: this.directory.storedName(a), entities_id: a.entities_id ?? 0, is_deleted: a.is_deleted ?? 0 }));
    }
    const named = this.directory.has(itemtype) || itemtype === 'RequestType' ? this.directory.row(itemtype, id) : undefined;
    if (named && itemtype !== 'Entity') return new Answer(200, this.#present(ctx, itemtype, named));
    if (itemtype === 'Entity') {
      if (!this.#entityExists(id)) return notFound();
      if (named) {
        if (!this.#canSeeEntity(ctx, id)) return forbidden();
        return new Answer(200, this.#present(ctx, 'Entity', named));
      }
      if (!this.#canSeeEntity(ctx, id)) return forbidden();
      return new Answer(200, this.#present(ctx, 'Entity', { id, name: id === 0 ? 'Root entity' : `Entity ${id}`, completename: this.#entityName(id), entities_id: id === 0 ? 0 : 0 }));
    }
    if (itemtype === 'User') {
      const name = this.#userName(id);
      if (name === null) return notFound();
      return new Answer(200, this.#present(ctx, 'User', { id, name, is_active: 1 }));
    }
    const known: Record<string, readonly number[] | undefined> = { ITILCategory: this.#opt.categories, Group: this.#opt.groups, RequestType: undefined };
    const ids = known[itemtype];
    if (ids && !ids.includes(id)) return notFound();
    return new Answer(200, this.#present(ctx, itemtype, { id, name: `${itemtype} ${id}`, completename: `${itemtype} ${id}` }));
  }

  // ---- GET list (API::getItems() + APIRest pagination headers) ---------------------------------------

  #getItems(ctx: Ctx, itemtype: string, parent: { itemtype: string; id: number } | undefined): Answer {
    const listLimit = this.#opt.listLimit ?? 20;
    const rangeParam = typeof ctx.params.range === 'string' ? ctx.params.range : undefined;
    const range = rangeParam ?? `0-${listLimit - 1}`;
    if (!/^[0-9]+-[0-9]+$/.test(range)) return this.#err(ctx, 400, 'ERROR', 'range must be in format : [start-end] with integers', true);
    const [start, end] = range.split('-').map(Number) as [number, number];
    const order = typeof ctx.params.order === 'string' ? ctx.params.order : 'ASC';
    if (!['DESC', 'ASC'].includes(order.toUpperCase())) return this.#err(ctx, 400, 'ERROR', 'order must be DESC or ASC', true);
    const sort = typeof ctx.params.sort === 'string' ? ctx.params.sort : 'id';
    let rows: Record<string, unknown>[];
    if (parent?.itemtype === 'Problem') {
      const p = this.itil.problems.get(parent.id);
      if (!p) return this.#err(ctx, 404, 'ERROR_ITEM_NOT_FOUND', this.#t(ctx, 'Item not found'));
      if (!this.#canSeeEntity(ctx, p.entities_id)) return this.#err(ctx, 403, 'ERROR_RIGHT_MISSING', this.#rights(ctx));
      if (itemtype === 'ITILFollowup') rows = this.followups.filter((f) => f.itemtype === 'Problem' && f.items_id === p.id).map((f) => this.#followupRow(f));
      else if (itemtype === 'Problem_Ticket') rows = this.itil.problemTickets.filter((l) => l.a === p.id).map((l) => ({ id: l.id, problems_id: l.a, tickets_id: l.b, link: l.link }));
      else rows = [];
    } else if (parent) {
      if (parent.itemtype !== 'Ticket') return this.#err(ctx, 400, 'ERROR_ITEMTYPE_NOT_FOUND_NOR_COMMONDBTM', this.#t(ctx, 'parent itemtype not found or not an instance of CommonDBTM'), true);
      const t = this.tickets.get(parent.id);
      if (!t) return this.#err(ctx, 404, 'ERROR_ITEM_NOT_FOUND', this.#t(ctx, 'Item not found'));
      if (!this.#canSeeEntity(ctx, t.entities_id)) return this.#err(ctx, 403, 'ERROR_RIGHT_MISSING', this.#rights(ctx));
      if (itemtype === 'ITILFollowup') rows = this.followupsOf(t.id).map((f) => this.#followupRow(f));
      else if (itemtype === 'ITILSolution') rows = this.solutions.filter((s) => s.itemtype === 'Ticket' && s.items_id === t.id).map((s) => this.#solutionRow(s));
      else if (itemtype === 'Ticket_Ticket') rows = this.itil.ticketTickets.filter((l) => l.a === t.id || l.b === t.id).map((l) => ({ id: l.id, tickets_id_1: l.a, tickets_id_2: l.b, link: l.link }));
      else rows = [];
    } else if (itemtype === 'Ticket') {
      const deleted = phpBool(typeof ctx.params.is_deleted === 'string' ? ctx.params.is_deleted : undefined, false) ? 1 : 0;
      rows = [...this.tickets.values()].filter((t) => t.is_deleted === deleted && this.#canSeeEntity(ctx, t.entities_id)).map((t) => this.#ticketRow(t));
    } else if (itemtype === 'ITILFollowup') {
      rows = this.followups.filter((f) => {
        const t = this.tickets.get(f.items_id);
        return t !== undefined && this.#canSeeEntity(ctx, t.entities_id);
      }).map((f) => this.#followupRow(f));
    } else if (itemtype === 'ITILSolution') {
      rows = this.solutions.map((s) => this.#solutionRow(s));
    } else {
      rows = this.directory.rows(itemtype) ?? [];
      if (itemtype === 'Entity') rows = rows.filter((r) => this.#canSeeEntity(ctx, r.id as number));
    }
    // API::getItems(): each `searchText[field]` is a LIKE filter (Search::makeTextSearch(): `^` and `$` anchor it).
    const searchText = ctx.params.searchText;
    if (searchText !== undefined && typeof searchText === 'object') {
      const filters = Object.fromEntries(Object.entries(searchText).filter((e): e is [string, string] => typeof e[1] === 'string'));
      const filtered = FakeDirectory.filter(rows, filters);
      // Unverified message: GLPI checks the field is a column of the table.
      if (typeof filtered === 'string') return this.#err(ctx, 400, 'ERROR', `Field ${filtered} is not valid for ${itemtype} item.`, true);
      rows = filtered;
    }
    const table = `glpi_${itemtype === 'ITILFollowup' ? 'itilfollowups' : itemtype === 'ITILSolution' ? 'itilsolutions' : `${itemtype.toLowerCase()}s`}`;
    if (!this.#columns(itemtype).includes(sort)) return this.#err(ctx, 400, 'ERROR', `sort param is not a field of ${table}`, true);
    const dir = order.toUpperCase() === 'DESC' ? -1 : 1;
    rows.sort((a, b) => {
      const x = a[sort] as string | number;
      const y = b[sort] as string | number;
      return (x < y ? -1 : x > y ? 1 : 0) * dir || ((a.id as number) - (b.id as number)) * dir;
    });
    const total = rows.length;
    if (start > total) return this.#err(ctx, 400, 'ERROR_RANGE_EXCEED_TOTAL', `Provided range exceed total count of data: ${total}`, true);
    const onlyId = phpBool(typeof ctx.params.only_id === 'string' ? ctx.params.only_id : undefined, false);
    const page = rows.slice(start, end + 1).map((r) => (onlyId ? { id: r.id } : this.#present(ctx, itemtype, r)));
    // Header range: the `range` parameter as given, else [0, glpilist_limit] (not limit-1: a GLPI quirk).
    const hdr = rangeParam ? rangeParam.split('-').map(Number) : [0, listLimit];
    if (hdr[1]! > total - 1) hdr[1] = total - 1;
    const headers: Record<string, string> = { 'Accept-Range': `${itemtype} 1000` };
    if (total > 0) headers['Content-Range'] = `${hdr[0]}-${hdr[1]}/${total}`;
    return new Answer(hdr[1]! - hdr[0]! + 1 < total ? 206 : 200, page, headers);
  }

  // ---- POST (API::createItems()) ------------------------------------------------------------------

  #createItems(ctx: Ctx, itemtype: string, input: unknown): Answer {
    if (input === null || input === undefined || typeof input !== 'object') {
      return this.#err(ctx, 400, 'ERROR_BAD_ARRAY', this.#t(ctx, 'input parameter must be an array of objects'), true);
    }
    const multiple = Array.isArray(input);
    const objects = multiple ? (input as unknown[]) : [input];
    const results: { id: number | false; message: string }[] = [];
    let failed = 0;
    for (const o of objects) {
      const obj = o !== null && typeof o === 'object' && !Array.isArray(o) ? (o as Record<string, unknown>) : {};
      const r = this.#addOne(ctx, itemtype, obj);
      if (r.id === false) failed++;
      const message = ctx.sanitized ? r.message : decodeHtml(r.message);
      results.push({ id: r.id, message });
    }
    if (multiple) {
      if (failed === objects.length) return this.#err(ctx, 400, 'ERROR_GLPI_ADD', results);
      if (failed > 0) return this.#err(ctx, 207, 'ERROR_GLPI_PARTIAL_ADD', results);
      const link = results.map((r) => `${this.#apiUrl}/${itemtype}/${String(r.id)}`).join(',');
      return new Answer(201, results, { Link: link });
    }
    const one = results[0]!;
    if (one.id === false) return this.#err(ctx, 400, 'ERROR_GLPI_ADD', one.message);
    return new Answer(201, one, { Location: `${this.#apiUrl}/${itemtype}/${one.id}` });
  }

  #addOne(ctx: Ctx, itemtype: string, input: Record<string, unknown>): { id: number | false; message: string } {
    if (itemtype === 'Ticket') return this.#addTicket(ctx, input);
    if (itemtype === 'ITILFollowup') return this.#addFollowup(ctx, input);
    if (itemtype === 'ITILSolution') return this.#addSolution(ctx, input);
    if (itemtype === 'Problem') return this.#addProblem(ctx, input);
    if (itemtype === 'Problem_Ticket' || itemtype === 'Ticket_Ticket') return this.#addLink(ctx, itemtype, input);
    return { id: false, message: this.#rights(ctx) };
  }

  /** Problem::prepareInputForAdd() as far as the fake models it (CommonITILObject: entity right, Description mandatory, writer). */
  #addProblem(ctx: Ctx, i: Record<string, unknown>): { id: number | false; message: string } {
    const s = ctx.session!;
    const entity = isset(i.entities_id) ? intval(i.entities_id, 0) : this.#activeEntity(s);
    if (!this.#canSeeEntity(ctx, entity)) return { id: false, message: this.#rights(ctx) };
    const rawContent = typeof i.content === 'string' ? i.content : '';
    if (phpEmpty(rawContent.trim())) return { id: false, message: this.#t(ctx, 'Mandatory fields are not filled. Please correct: %s', this.#t(ctx, 'Description')) };
    const name = storeVarchar(typeof i.name === 'string' ? i.name.trim() : '', this.#encodes());
    if (name === undefined) return { id: false, message: '' };
    const urgency = intval(i.urgency, 3);
    const impact = intval(i.impact, 3);
    const at = now();
    const p = this.itil.add({
      name,
      content: storeText(rawContent, this.#encodes()),
      status: PROBLEM_STATUS.INCOMING,
      urgency,
      impact,
      priority: priorityOf(urgency, impact),
      type: 0,
      itilcategories_id: intval(i.itilcategories_id, 0),
      entities_id: entity,
      users_id_recipient: s.account.id,
      date: at,
      date_mod: at,
      is_deleted: 0,
    });
    return { id: p.id, message: this.#t(ctx, '%1$s: %2$s', this.#t(ctx, 'Item successfully added'), `${p.name} (${p.id})`) };
  }

  /** CommonITILObject_CommonITILObject::prepareInputForAdd(): both items readable, no duplicate (problems.ts). */
  #addLink(ctx: Ctx, itemtype: 'Problem_Ticket' | 'Ticket_Ticket', i: Record<string, unknown>): { id: number | false; message: string } {
    const [ka, kb] = itemtype === 'Problem_Ticket' ? ['problems_id', 'tickets_id'] : ['tickets_id_1', 'tickets_id_2'];
    if (!isset(i[ka]) || !isset(i[kb])) return { id: false, message: '' };
    const a = intval(i[ka], 0);
    const b = intval(i[kb], 0);
    const first = itemtype === 'Problem_Ticket' ? this.itil.problems.get(a) : this.tickets.get(a);
    const second = this.tickets.get(b);
    if (!first || !second || !this.#canSeeEntity(ctx, first.entities_id) || !this.#canSeeEntity(ctx, second.entities_id)) return { id: false, message: this.#rights(ctx) };
    const row = this.itil.addLink(itemtype, a, b, isset(i.link) ? intval(i.link, LINK_TO) : LINK_TO);
    if (row === false) return { id: false, message: '' };
    first.date_mod = now();
    second.date_mod = now();
    return { id: row.id, message: '' };
  }

  /** Ticket::prepareInputForAdd() and friends, reduced to what the fake models. */
  #addTicket(ctx: Ctx, i: Record<string, unknown>): { id: number | false; message: string } {
    const s = ctx.session!;
    const entity = isset(i.entities_id) ? intval(i.entities_id, 0) : this.#activeEntity(s);
    // can(-1, CREATE, $input): the target entity must be one of the session's active entities.
    if (!this.#canSeeEntity(ctx, entity)) return { id: false, message: this.#rights(ctx) };
    const groups = ([] as unknown[]).concat(i._groups_id_assign ?? []).map((g) => intval(g, 0)).filter((g) => g > 0);
    if (this.#opt.groups && groups.some((g) => !this.#opt.groups!.includes(g))) return { id: false, message: this.#rights(ctx) };
    const category = intval(i.itilcategories_id, 0);
    // Not a GLPI rule: the fake refuses unknown categories so the bridge's dead-letter path can be tested.
    if (category > 0 && this.#opt.categories && !this.#opt.categories.includes(category)) return { id: false, message: `ITIL category ${category} does not exist` };
    const rawContent = typeof i.content === 'string' ? i.content : '';
    // The default ticket template makes Description mandatory (unverified message text).
    if (phpEmpty(rawContent.trim())) return { id: false, message: this.#t(ctx, 'Mandatory fields are not filled. Please correct: %s', this.#t(ctx, 'Description')) };
    let rawName = typeof i.name === 'string' ? i.name.trim() : '';
    // CommonITILObject::prepareInputForAdd(): no title → built from the description's text (70 characters).
    if (rawName === '') rawName = Array.from(rawContent.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim()).slice(0, 70).join('');
    const name = storeVarchar(rawName, this.#encodes());
    if (name === undefined) return { id: false, message: '' };
    let externalid: string | null | undefined;
    if (this.version === '11') {
      if (typeof i.externalid === 'string' || typeof i.externalid === 'number') {
        const e = storeVarchar(String(i.externalid), false);
        externalid = e ?? null;
      } else {
        externalid = null;
      }
    }
    const urgency = intval(i.urgency, 3);
    const impact = intval(i.impact, 3);
    const given = intval(i.status, 0);
    const at = now();
    const date = typeof i.date === 'string' && /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/.test(i.date) ? i.date : at;
    const t: FakeTicket = {
      id: this.#nextId.ticket++,
      name,
      content: storeText(rawContent, this.#encodes()),
      status: given >= 1 && given <= 6 && given !== STATUS.INCOMING ? given : groups.length > 0 ? STATUS.ASSIGNED : STATUS.INCOMING,
      urgency,
      impact,
      priority: priorityOf(urgency, impact),
      type: intval(i.type, 1),
      itilcategories_id: category,
      entities_id: entity,
      requesttypes_id: intval(i.requesttypes_id, 1),
      groups_id_assign: groups,
      // Unconfirmed: GLPI keeps a given users_id_recipient, else the logged-in user.
      users_id_recipient: isset(i.users_id_recipient) ? intval(i.users_id_recipient, 0) : s.account.id,
      users_id_lastupdater: s.account.id,
      date,
      date_creation: at,
      date_mod: at,
      solvedate: given === STATUS.SOLVED || given === STATUS.CLOSED ? at : null,
      closedate: given === STATUS.CLOSED ? at : null,
      begin_waiting_date: given === STATUS.WAITING ? at : null,
      is_deleted: 0,
    };
    if (externalid !== undefined) t.externalid = externalid;
    // Ticket_User rows from `_users_id_<role>` (an id or a list); an unknown user adds nothing.
    const users = { requester: [] as number[], assign: [] as number[], observer: [] as number[] };
    for (const role of ['requester', 'assign', 'observer'] as const) {
      for (const u of ([] as unknown[]).concat(i[`_users_id_${role}`] ?? [])) {
        const uid = intval(u, 0);
        if (uid > 0 && (this.#userName(uid) !== null || this.directory.row('User', uid)) && !users[role].includes(uid)) users[role].push(uid);
      }
    }
    if (users.requester.length + users.assign.length + users.observer.length > 0) t.users = users;
    if (users.assign.length > 0 && t.status === STATUS.INCOMING) t.status = STATUS.ASSIGNED;
    // Item_Ticket rows from `items_id: {itemtype: [ids]}` (Ticket::post_addItem()); an unknown asset adds nothing.
    if (i.items_id !== null && typeof i.items_id === 'object' && !Array.isArray(i.items_id)) {
      const items: { itemtype: string; items_id: number }[] = [];
      for (const [type, ids] of Object.entries(i.items_id as Record<string, unknown>)) {
        for (const raw of ([] as unknown[]).concat(ids ?? [])) {
          const aid = intval(raw, 0);
          if (this.directory.asset(type, aid) && !items.some((x) => x.itemtype === type && x.items_id === aid)) items.push({ itemtype: type, items_id: aid });
        }
      }
      if (items.length > 0) t.items = items;
    }
    this.tickets.set(t.id, t);
    // CommonDBTM::addMessageOnAddAction(): "Item successfully added: <name (id)>", tags stripped.
    return { id: t.id, message: this.#t(ctx, '%1$s: %2$s', this.#t(ctx, 'Item successfully added'), `${t.name} (${t.id})`) };
  }

  /** ITILFollowup::canCreateItem() → prepareInputForAdd() → post_addItem() → ParentStatus (GLPI ≥ 10.0.4). */
  #addFollowup(ctx: Ctx, i: Record<string, unknown>): { id: number | false; message: string } {
    const s = ctx.session!;
    if (i.itemtype === 'Problem') return this.#addProblemFollowup(ctx, i);
    const t = i.itemtype === 'Ticket' ? this.tickets.get(intval(i.items_id, 0)) : undefined;
    // canCreateItem(): parent readable, and a closed parent only when the user may reopen it.
    if (!t || !this.#canSeeEntity(ctx, t.entities_id)) return { id: false, message: this.#rights(ctx) };
    if (t.status === STATUS.CLOSED && !this.#opt.canReopenClosed) return { id: false, message: this.#rights(ctx) };
    const content = typeof i.content === 'string' ? i.content : '';
    if (phpEmpty(content) && !isset(i.add_close) && !isset(i.add_reopen)) return { id: false, message: this.#t(ctx, "You can't add a followup without description") };
    const close = isset(i.add_close);
    if (isset(i.add_reopen) && content === '') return { id: false, message: this.#t(ctx, 'If you want to reopen this item, you must specify a reason') };
    const reopenAsked = isset(i.add_reopen);
    const f: FakeFollowup = {
      id: this.#nextId.followup++,
      itemtype: 'Ticket',
      items_id: t.id,
      content: storeText(phpEmpty(content) && close ? 'Solution approved' : content, this.#encodes()),
      is_private: intval(i.is_private, 0) ? 1 : 0,
      date: now(),
      users_id: s.account.id,
      requesttypes_id: intval(i.requesttypes_id, 1),
    };
    this.followups.push(f);
    t.date_mod = now();
    t.users_id_lastupdater = s.account.id;
    // ParentStatus::updateParentStatus()
    const pending = !phpEmpty(i.pending);
    if (close && t.status === STATUS.SOLVED) this.#applyStatus(t, STATUS.CLOSED);
    let reopen = reopenAsked;
    let wanted = isset(i._status) ? intval(i._status, t.status) : undefined;
    if (pending) wanted = STATUS.WAITING;
    // `_no_reopen` (set by the caller) keeps a pending ticket pending.
    else if (!close && !isset(i._no_reopen) && t.status === STATUS.WAITING) reopen = true;
    if (wanted === undefined) wanted = t.status;
    let reopened = false;
    if (reopen && [STATUS.CLOSED, STATUS.SOLVED, STATUS.WAITING].includes(t.status as 4 | 5 | 6) && wanted === t.status && !pending) {
      this.#applyStatus(t, t.groups_id_assign.length > 0 ? STATUS.ASSIGNED : STATUS.INCOMING);
      reopened = true;
    }
    if (!reopened && wanted !== t.status) this.#applyStatus(t, wanted);
    // ITILFollowup::$auto_message_on_action = false: no message.
    return { id: f.id, message: '' };
  }

  /** A follow-up on a Problem: the parent readable, not closed (canReopen() is false for the fake's API user); no status change modelled. */
  #addProblemFollowup(ctx: Ctx, i: Record<string, unknown>): { id: number | false; message: string } {
    const s = ctx.session!;
    const p = this.itil.problems.get(intval(i.items_id, 0));
    if (!p || !this.#canSeeEntity(ctx, p.entities_id) || p.status === PROBLEM_STATUS.CLOSED) return { id: false, message: this.#rights(ctx) };
    const content = typeof i.content === 'string' ? i.content : '';
    if (phpEmpty(content)) return { id: false, message: this.#t(ctx, "You can't add a followup without description") };
    const f: FakeFollowup = {
      id: this.#nextId.followup++,
      itemtype: 'Problem',
      items_id: p.id,
      content: storeText(content, this.#encodes()),
      is_private: intval(i.is_private, 0) ? 1 : 0,
      date: now(),
      users_id: s.account.id,
      requesttypes_id: intval(i.requesttypes_id, 1),
    };
    this.followups.push(f);
    p.date_mod = now();
    return { id: f.id, message: '' };
  }

  /** ITILSolution::canCreateItem() (CommonITILObject::canSolve()) → prepareInputForAdd() → post_addItem(). */
  #addSolution(ctx: Ctx, i: Record<string, unknown>): { id: number | false; message: string } {
    const s = ctx.session!;
    const t = i.itemtype === 'Ticket' ? this.tickets.get(intval(i.items_id, 0)) : undefined;
    // canSolve(): readable, not closed (a closed ticket gives the rights message, not "already solved").
    if (!t || !this.#canSeeEntity(ctx, t.entities_id) || t.status === STATUS.CLOSED) return { id: false, message: this.#rights(ctx) };
    // canSolve(): the profile's status matrix must allow Solved from the ticket's status.
    if (this.#opt.workflow?.solveAllowed === false) return { id: false, message: this.#rights(ctx) };
    const blocked = !phpEmpty(i._do_not_compute_status);
    if (!blocked && t.status === STATUS.SOLVED) return { id: false, message: this.#t(ctx, 'The item is already solved, did anyone pushed a solution before you?') };
    const closeNow = this.#opt.autocloseDelay === 0;
    const sol: FakeSolution = {
      id: this.#nextId.solution++,
      itemtype: 'Ticket',
      items_id: t.id,
      content: storeText(typeof i.content === 'string' ? i.content : '', this.#encodes()),
      status: closeNow ? 3 : 2,
      solutiontypes_id: intval(i.solutiontypes_id, 0),
      users_id: s.account.id,
    };
    this.solutions.push(sol);
    // post_addItem() updates the ticket to Solved (or Closed); a template's mandatory field refuses that update.
    const missing = this.#missingOnSolve(ctx, t);
    if (missing !== undefined) return { id: sol.id, message: missing };
    this.#applyStatus(t, closeNow ? STATUS.CLOSED : STATUS.SOLVED, sol.id);
    t.date_mod = now();
    t.users_id_lastupdater = s.account.id;
    return { id: sol.id, message: this.#t(ctx, '%1$s: %2$s', this.#t(ctx, 'Item successfully added'), String(sol.id)) };
  }

  /** The template's fields mandatory on solving that the ticket lacks, as GLPI's refusal message; undefined: none. */
  #missingOnSolve(ctx: Ctx, t: FakeTicket): string | undefined {
    const fields = this.#opt.workflow?.mandatoryOnSolve ?? [];
    const missing = fields.filter((f) => !(f === 'Category' && t.itilcategories_id > 0));
    if (missing.length === 0) return undefined;
    return this.#t(ctx, 'Mandatory fields are not filled. Please correct: %s', missing.join(', '));
  }

  /** A status change with the side effects GLPI applies on update. */
  #applyStatus(t: FakeTicket, status: number, keepSolution?: number): void {
    if (status < 1 || status > 6 || status === t.status) return;
    const was = t.status;
    t.status = status;
    const at = now();
    if (status === STATUS.SOLVED) t.solvedate = at;
    if (status === STATUS.CLOSED) {
      t.closedate = at;
      t.solvedate ??= at;
      for (const s of this.solutions) if (s.items_id === t.id && s.status === 2 && s.id !== keepSolution) s.status = 3;
    }
    if (status === STATUS.WAITING) t.begin_waiting_date = at;
    if (status < STATUS.SOLVED && (was === STATUS.SOLVED || was === STATUS.CLOSED)) {
      t.solvedate = null;
      t.closedate = null;
      for (const s of this.solutions) if (s.items_id === t.id && s.status === 2) s.status = 4;
    }
  }

  // ---- PUT (API::updateItems()) -------------------------------------------------------------------

  #updateItems(ctx: Ctx, itemtype: string, input: unknown): Answer {
    if (input === null || input === undefined || typeof input !== 'object') {
      return this.#err(ctx, 400, 'ERROR_BAD_ARRAY', this.#t(ctx, 'input parameter must be an array of objects'), true);
    }
    const multiple = Array.isArray(input);
    const objects = (multiple ? (input as unknown[]) : [input]).map((o) => (o !== null && typeof o === 'object' ? (o as Record<string, unknown>) : {}));
    const results: Record<string, unknown>[] = [];
    let failed = 0;
    for (const o of objects) {
      if (!isset(o.id)) continue;
      const id = intval(o.id, 0);
      const t = itemtype === 'Ticket' ? this.tickets.get(id) : undefined;
      if (!t) {
        // A `continue` before the result is appended: missing ids vanish from the answer.
        failed++;
        continue;
      }
      if (!this.#canSeeEntity(ctx, t.entities_id)) {
        failed++;
        results.push({ [String(id)]: false, message: this.#rights(ctx) });
        continue;
      }
      const ok = this.#updateTicket(ctx, t, o);
      if (!ok.ok) failed++;
      results.push({ [String(id)]: ok.ok, message: ok.message });
    }
    if (multiple) {
      if (failed === objects.length) return this.#err(ctx, 400, 'ERROR_GLPI_UPDATE', results);
      if (failed > 0) return this.#err(ctx, 207, 'ERROR_GLPI_PARTIAL_UPDATE', results);
      return new Answer(200, results);
    }
    if (failed > 0) return this.#err(ctx, 400, 'ERROR_GLPI_UPDATE', (results[0]?.message as string | undefined) ?? null);
    return new Answer(200, results);
  }

  #updateTicket(ctx: Ctx, t: FakeTicket, i: Record<string, unknown>): { ok: boolean; message: string } {
    if (typeof i.name === 'string') {
      const name = storeVarchar(i.name, this.#encodes());
      if (name === undefined) return { ok: false, message: '' };
      t.name = name;
    }
    if (typeof i.content === 'string') t.content = storeText(i.content, this.#encodes());
    if (isset(i.urgency)) t.urgency = intval(i.urgency, t.urgency);
    if (isset(i.impact)) t.impact = intval(i.impact, t.impact);
    if (isset(i.urgency) || isset(i.impact)) t.priority = priorityOf(t.urgency, t.impact);
    if (isset(i.itilcategories_id)) t.itilcategories_id = intval(i.itilcategories_id, t.itilcategories_id);
    if (isset(i.type)) t.type = intval(i.type, t.type);
    if (isset(i.requesttypes_id)) t.requesttypes_id = intval(i.requesttypes_id, t.requesttypes_id);
    if (this.version === '11' && (typeof i.externalid === 'string' || typeof i.externalid === 'number')) t.externalid = storeVarchar(String(i.externalid), false) ?? null;
    if (isset(i.status)) {
      const status = intval(i.status, t.status);
      const solving = status === STATUS.SOLVED || status === STATUS.CLOSED;
      const missing = solving ? this.#missingOnSolve(ctx, t) : undefined;
      if (missing !== undefined) return { ok: false, message: missing };
      // A status the profile's matrix does not allow is dropped, the rest of the update applies.
      if (!(solving && this.#opt.workflow?.solveAllowed === false)) this.#applyStatus(t, status);
    }
    t.date_mod = now();
    t.users_id_lastupdater = ctx.session!.account.id;
    return { ok: true, message: '' };
  }

  // ---- DELETE (API::deleteItems()) ----------------------------------------------------------------

  #deleteItems(ctx: Ctx, itemtype: string, input: unknown, force: boolean): Answer {
    if (input === null || input === undefined || typeof input !== 'object') {
      return this.#err(ctx, 400, 'ERROR_BAD_ARRAY', this.#t(ctx, 'input parameter must be an array of objects'), true);
    }
    const multiple = Array.isArray(input);
    const objects = (multiple ? (input as unknown[]) : [input]) as Record<string, unknown>[];
    const results: Record<string, unknown>[] = [];
    let failed = 0;
    for (const o of objects) {
      if (!isset(o.id)) continue;
      const id = intval(o.id, 0);
      if (itemtype === 'Ticket_Ticket') {
        // A relation has no trash: delete() purges it (CommonDBTM::delete(), no is_deleted); its right is
        // the linked tickets' (CommonDBRelation::canPurgeItem()). problems.ts says where this comes from.
        const link = this.itil.ticketTickets.find((l) => l.id === id);
        const first = link ? this.tickets.get(link.a) : undefined;
        const ok = link !== undefined && first !== undefined && this.#canSeeEntity(ctx, first.entities_id);
        if (ok) this.itil.removeLink('Ticket_Ticket', id);
        else failed++;
        results.push({ [String(id)]: ok, message: ok ? '' : link ? this.#rights(ctx) : this.#t(ctx, 'Item not found') });
        continue;
      }
      const t = itemtype === 'Ticket' ? this.tickets.get(id) : undefined;
      if (!t) {
        failed++;
        results.push({ [String(id)]: false, message: this.#t(ctx, 'Item not found') });
        continue;
      }
      if (!this.#canSeeEntity(ctx, t.entities_id)) {
        failed++;
        results.push({ [String(id)]: false, message: this.#rights(ctx) });
        continue;
      }
      if (force) this.tickets.delete(id);
      else t.is_deleted = 1;
      results.push({ [String(id)]: true, message: '' });
    }
    if (multiple) {
      if (failed === objects.length) return this.#err(ctx, 400, 'ERROR_GLPI_DELETE', results);
      if (failed > 0) return this.#err(ctx, 207, 'ERROR_GLPI_PARTIAL_DELETE', results);
      return new Answer(200, results);
    }
    if (failed > 0) return this.#err(ctx, 400, 'ERROR_GLPI_DELETE', (results[0]?.message as string | undefined) ?? null);
    return new Answer(200, results);
  }

  // ---- search (API::searchItems()) ----------------------------------------------------------------

  /**
   * Search on an asset itemtype: options 1 (name), 2 (id), 80 (entity), 126 (IP, any of the asset's
   * addresses; NetworkPort::rawSearchOptionsToAdd()). Trashed assets and entities the session cannot see
   * are left out, as the search engine does. Grouped values are joined with Search::LONGSEP ("$$##$$").
   */
  #searchAssets(ctx: Ctx, itemtype: string): Answer {
    const known = new Set(['1', '2', '80', '126']);
    const criteria = toCriteria(ctx.params.criteria);
    const bad = checkCriteria(criteria, known);
    if (bad) return this.#err(ctx, 400, 'ERROR', this.#t(ctx, bad), true);
    const deleted = phpBool(typeof ctx.params.is_deleted === 'string' ? ctx.params.is_deleted : undefined, false) ? 1 : 0;
    const value = (a: { id: number; name: string; ips?: string[]; entities_id?: number }, field: string): string | number | null => {
      if (field === '1') return this.directory.storedName(a as FakeAsset);
      if (field === '2') return a.id;
      if (field === '80') return this.#entityName(a.entities_id ?? 0);
      if (field === '126') return (a.ips ?? []).join('$$##$$');
      return null;
    };
    const test = (a: { id: number; name: string; ips?: string[]; entities_id?: number }, c: { field?: string; searchtype?: string; value?: string }): boolean => {
      const v = c.value ?? '';
      const values = c.field === '126' ? (a.ips ?? []) : [String(value(a, c.field ?? '') ?? '')];
      if (c.searchtype === 'equals') return c.field === '2' || c.field === '1' ? String(a.id) === v : values.includes(v);
      if (c.searchtype === 'contains') return v === '' || values.some((x) => likeMatch(x, v));
      return false;
    };
    const rows = this.directory.assets
      .filter((a) => a.itemtype === itemtype && (a.is_deleted ?? 0) === deleted && this.#canSeeEntity(ctx, a.entities_id ?? 0))
      .filter((a) => criteria.every((c, i) => (i > 0 && c.link.startsWith('OR') ? true : c.criteria ? true : test(a, c))))
      .sort((x, y) => x.name.localeCompare(y.name) || x.id - y.id);
    const forced = ctx.params.forcedisplay === undefined ? [] : typeof ctx.params.forcedisplay === 'string' ? [ctx.params.forcedisplay] : Object.values(ctx.params.forcedisplay).filter((v): v is string => typeof v === 'string');
    const columns = [...new Set(['1', ...fieldsOf(criteria), ...forced])].filter((c) => known.has(c));
    let start = 0;
    let end = (this.#opt.listLimit ?? 20) - 1;
    if (typeof ctx.params.range === 'string') {
      if (!/^[0-9]+-[0-9]+$/.test(ctx.params.range)) return this.#err(ctx, 400, 'ERROR', 'range must be in format : [start-end] with integers', true);
      [start, end] = ctx.params.range.split('-').map(Number) as [number, number];
    }
    const total = rows.length;
    if (start > total) return this.#err(ctx, 400, 'ERROR_RANGE_EXCEED_TOTAL', `Provided range exceed total count of data: ${total}`, true);
    const page = rows.slice(start, end + 1);
    if (end > total - 1) end = total - 1;
    const data = page.map((a) => Object.fromEntries(columns.map((c) => [c, value(a, c)])));
    const body: Record<string, unknown> = { totalcount: total, count: page.length, sort: ['1'], order: ['ASC'] };
    if (data.length > 0) body.data = data;
    body['content-range'] = `${start}-${end}/${total}`;
    const headers: Record<string, string> = { 'Accept-Range': `${itemtype} 1000` };
    if (total > 0) headers['Content-Range'] = body['content-range'] as string;
    return new Answer(page.length >= total ? 200 : 206, body, headers);
  }

  #search(ctx: Ctx, rawItemtype: string): Answer {
    const itemtype = ITEMTYPES[rawItemtype.toLowerCase()];
    if (!itemtype) return this.#err(ctx, 400, 'ERROR_RESOURCE_NOT_FOUND_NOR_COMMONDBTM', this.#t(ctx, 'resource not found or not an instance of CommonDBTM'), true);
    if (ASSET_TYPES.includes(itemtype as (typeof ASSET_TYPES)[number])) return this.#searchAssets(ctx, itemtype);
    // Problem shares CommonITILObject's options (1, 2, 12, 19, 21, 22, 80…); 87 (externalid) is Ticket's own.
    const known = itemtype === 'Ticket' ? ticketOptions(this.version) : itemtype === 'Problem' ? new Set([...ticketOptions('10')]) : new Set(['1', '2']);
    const criteria = toCriteria(ctx.params.criteria);
    const bad = checkCriteria(criteria, known);
    if (bad) return this.#err(ctx, 400, 'ERROR', this.#t(ctx, bad), true);
    const forced = ctx.params.forcedisplay === undefined ? [] : typeof ctx.params.forcedisplay === 'string' ? [ctx.params.forcedisplay] : Object.values(ctx.params.forcedisplay).filter((v): v is string => typeof v === 'string');
    const listLimit = this.#opt.listLimit ?? 20;
    let start = 0;
    let end = listLimit - 1;
    if (typeof ctx.params.range === 'string') {
      if (!/^[0-9]+-[0-9]+$/.test(ctx.params.range)) return this.#err(ctx, 400, 'ERROR', 'range must be in format : [start-end] with integers', true);
      [start, end] = ctx.params.range.split('-').map(Number) as [number, number];
    }
    const sc: SearchContext = {
      version: this.version,
      // GLPI 10 stores the login sanitized like any input, and search output is never decoded.
      userName: (id) => this.#storedUserName(id),
      categoryName: (id) => `ITILCategory ${id}`,
      entityName: (id) => this.#entityName(id),
    };
    const deleted = phpBool(typeof ctx.params.is_deleted === 'string' ? ctx.params.is_deleted : undefined, false) ? 1 : 0;
    const source: (SearchableTicket & { is_deleted: number })[] = itemtype === 'Ticket' ? [...this.tickets.values()] : itemtype === 'Problem' ? [...this.itil.problems.values()] : [];
    let rows = source.filter((t) => t.is_deleted === deleted && this.#canSeeEntity(ctx, t.entities_id) && evaluate(t, criteria, sc));
    const sort = typeof ctx.params.sort === 'string' && /^\d+$/.test(ctx.params.sort) ? ctx.params.sort : '19';
    const order = typeof ctx.params.order === 'string' && ctx.params.order.toUpperCase() === 'ASC' ? 'ASC' : 'DESC';
    const dir = order === 'ASC' ? 1 : -1;
    rows = rows.sort((a, b) => {
      const x = sortKey(a, sort, sc);
      const y = sortKey(b, sort, sc);
      return (x < y ? -1 : x > y ? 1 : 0) * dir || (a.id - b.id) * dir;
    });
    const total = rows.length;
    if (start > total) return this.#err(ctx, 400, 'ERROR_RANGE_EXCEED_TOTAL', `Provided range exceed total count of data: ${total}`, true);
    const page = rows.slice(start, end + 1);
    if (end > total - 1) end = total - 1;
    const multiEntity = (this.#opt.entities?.length ?? 1) > 1;
    const columns = [...new Set(['1', ...DEFAULT_DISPLAY, ...(multiEntity ? ['80'] : []), ...fieldsOf(criteria), ...forced])].filter((c) => known.has(c));
    const data = page.map((t) => row(t, columns, sc));
    const withIndexes = ctx.params.withindexes !== undefined;
    const body: Record<string, unknown> = {
      totalcount: total,
      count: page.length,
      sort: [sort],
      order: [order],
    };
    // Search::getDatas() leaves `data` out when nothing matched.
    if (data.length > 0) body.data = withIndexes ? Object.fromEntries(page.map((t, n) => [String(t.id), data[n]])) : data;
    body['content-range'] = `${start}-${end}/${total}`;
    const headers: Record<string, string> = { 'Accept-Range': `${itemtype} 1000` };
    if (total > 0) headers['Content-Range'] = body['content-range'] as string;
    return new Answer(page.length >= total ? 200 : 206, body, headers);
  }
}

/**
 * `node dist/src/glpi-fake/server.js [PORT]`: run the fake alone. Environment: GLPI_USER_TOKEN,
 * GLPI_APP_TOKEN, FAKE_GLPI_LATENCY_MS, FAKE_GLPI_VERSION (10|11), FAKE_GLPI_LANGUAGE (en_GB|fr_FR),
 * FAKE_GLPI_STRIP_AUTHORIZATION=1 (a web server that drops the Authorization header).
 */
async function standalone(): Promise<void> {
  const port = Number(process.argv[2] ?? process.env.FAKE_GLPI_PORT ?? 8089);
  const version = process.env.FAKE_GLPI_VERSION === '11' ? '11' : '10';
  const language = process.env.FAKE_GLPI_LANGUAGE === 'fr_FR' ? 'fr_FR' : 'en_GB';
  const stripAuthorization = process.env.FAKE_GLPI_STRIP_AUTHORIZATION === '1';
  const fake = new FakeGlpi({ userTokens: [process.env.GLPI_USER_TOKEN ?? 'demo-user-token'], appToken: process.env.GLPI_APP_TOKEN ?? '', version, language, stripAuthorization });
  const url = await fake.listen(port);
  const latencyMs = Number(process.env.FAKE_GLPI_LATENCY_MS ?? 0);
  if (latencyMs > 0) fake.setFaults({ latencyMs });
  process.stdout.write(`fake GLPI ${version} listening on ${url} (state: http://127.0.0.1:${port}/_fake/state)\n`);
  const stop = () => void fake.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) void standalone();
