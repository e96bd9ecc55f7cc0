import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Language } from '../messages.js';
import type { FakeProblem } from '../problems.js';
import type { FakeAccount, FakeFollowup, FakeSession, FakeSolution, FakeTicket } from '../server.js';
import type { V2Host } from './host.js';
import { compile, RsqlError, type Lookup } from './rsql.js';

/**
 * GLPI 11's high-level API ("v2") for the fake, over the legacy fake's store (host.ts): the OAuth2 token
 * endpoint (password and refresh_token grants), tickets, their timeline (follow-ups, solutions), team
 * members, the session, a few dropdowns. What it reproduces, with the GLPI source of each rule, is in
 * docs/glpi-api-v2.md; the answers are pinned by test/contract/glpi-v2-api.contract.test.ts against
 * test/fixtures/glpi/recorded-v2.ts. The traps are GLPI's: a refused create answers 500, a bad or expired
 * token 400, a create 200, unknown body properties are dropped without a word, an unknown RSQL property
 * is ignored (the search then returns everything), a body is read as JSON only when `Content-Type` is
 * exactly `application/json`.
 */

export interface OAuthClient {
  id: string;
  secret: string;
  /** Grants this client may use (GLPI: the client's "Grants" field; refresh_token is always allowed); default password. */
  grants?: readonly string[];
}

export interface V2Answer {
  status: number;
  /** undefined: no body. */
  body: unknown;
  headers?: Record<string, string>;
  /** A create was committed (the fault `dropAfterCommitNext` drops the answer of such a POST). */
  committed?: boolean;
}

interface Grant {
  access: string;
  refresh: string;
  account: FakeAccount;
  clientId: string;
  /** ms since the epoch. */
  expiresAt: number;
  scopes: string[];
}

/** Router::getAPIVersions() (src/Glpi/Api/HL/Router.php @ 01e8e4e28b9f4ed3d98dcb00041e99c10d610299). */
const API_VERSIONS = ['2.0.0', '2.1.0', '2.2.0'];
/** Server::getAllowedScopes() (src/Glpi/OAuth/Server.php @ 063186c687bd6c71d0ae553d982ac22db0ab9761). */
const SCOPES = new Set(['email', 'user', 'api', 'inventory', 'status', 'graphql']);
/** Ticket::getAllStatusArray() (en_GB). */
const STATUS_NAMES: Record<number, string> = { 1: 'New', 2: 'Processing (assigned)', 3: 'Processing (planned)', 4: 'Pending', 5: 'Solved', 6: 'Closed' };
/** Problem::getAllStatusArray() (en_GB): CommonITILObject's, with 7 and 8. */
const PROBLEM_STATUS_NAMES: Record<number, string> = { ...STATUS_NAMES, 7: 'Accepted', 8: 'Under observation' };
/** CommonITILActor: the numeric roles addTeamMember() stores (Team::ROLE_*), and getCleanTeam()'s names for them. */
const ROLES: Record<number, { actor: 'requester' | 'assign' | 'observer'; name: string }> = { 1: { actor: 'requester', name: 'requester' }, 2: { actor: 'assign', name: 'assigned' }, 3: { actor: 'observer', name: 'observer' } };
const CLOSED = 6;

/** AbstractController::getErrorResponseBody(). */
function error(status: number, code: string, title: string, detail: unknown = null, additional?: { priority: string; message: string }[]): V2Answer {
  const body: Record<string, unknown> = { status: code, title, detail };
  if (additional && additional.length > 0) body.additional_messages = additional;
  return { status, body };
}

const notFound = () => error(404, 'ERROR_ITEM_NOT_FOUND', 'Not found');
const forbidden = () => error(403, 'ERROR_RIGHT_MISSING', "You don't have permission to perform this action.");
/** getCRUDErrorResponse(): GLPI's own messages (MESSAGE_AFTER_REDIRECT, translated) as additional messages. */
const failed = (action: 'create' | 'update', message: string) => error(500, 'ERROR', `Failed to ${action} item(s)`, null, message ? [{ priority: 'error', message }] : []);

/** OAuthServerException::generateHttpResponse() (league/oauth2-server 8/9: error_description, message kept for BC). */
function oauthError(status: number, code: string, description: string, hint?: string): V2Answer {
  const body: Record<string, unknown> = { error: code, error_description: description };
  if (hint !== undefined) body.hint = hint;
  body.message = description;
  return { status, body, headers: code === 'invalid_client' ? { 'WWW-Authenticate': 'Basic realm="OAuth"' } : {} };
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

function rfc3339(date: string | null): string | null {
  return date === null ? null : `${date.replace(' ', 'T')}+00:00`;
}

function bool(v: unknown): boolean {
  return v === true || v === 1 || v === '1' || v === 'true';
}

/** getInputParamsBySchema(): an object carrying `id` stands for that id (a dropdown written as {"id": N}). */
function flatten(body: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) out[k] = v !== null && typeof v === 'object' && !Array.isArray(v) && 'id' in v ? (v as { id: unknown }).id : v;
  return out;
}

/** Schema property → legacy input field, for the properties the Ticket schema lets a client write (ITILController). */
const TICKET_INPUT: Record<string, string> = {
  name: 'name',
  content: 'content',
  urgency: 'urgency',
  impact: 'impact',
  priority: 'priority',
  type: 'type',
  external_id: 'externalid',
  category: 'itilcategories_id',
  location: 'locations_id',
  request_type: 'requesttypes_id',
  status: 'status',
  entity: 'entities_id',
  is_deleted: 'is_deleted',
};

/** The same for a Problem: the ITIL base schema, status and entity (no type, external_id or request_type). */
const PROBLEM_INPUT: Record<string, string> = {
  name: 'name',
  content: 'content',
  urgency: 'urgency',
  impact: 'impact',
  priority: 'priority',
  category: 'itilcategories_id',
  location: 'locations_id',
  status: 'status',
  entity: 'entities_id',
  is_deleted: 'is_deleted',
};

export class FakeGlpiV2 {
  /** Token requests answered with a token (each writes a glpi_oauth_access_tokens row in GLPI). */
  tokensIssued = 0;
  /** Password-grant logins among them. */
  passwordLogins = 0;
  /** Access-token lifetime in seconds (GLPI: PT1H). */
  lifetimeSeconds = 3600;
  readonly #host: V2Host;
  readonly #clients: readonly OAuthClient[];
  readonly #byAccess = new Map<string, Grant>();
  readonly #byRefresh = new Map<string, Grant>();

  constructor(host: V2Host, clients?: readonly OAuthClient[]) {
    this.#host = host;
    this.#clients = clients ?? [{ id: 'bridge-client', secret: 'bridge-secret' }];
  }

  /** `api.php/…` except the legacy `api.php/v1/…` (Glpi\Controller\ApiController). */
  serves(pathname: string): boolean {
    return /^\/api\.php(\/|$)/.test(pathname) && !/^\/api\.php\/v1(\/|$)/.test(pathname);
  }

  /** Every access token expires now (what an hour does); refresh tokens stay valid. */
  expireTokens(): void {
    for (const g of this.#byAccess.values()) g.expiresAt = 0;
  }

  /** Access tokens issued and still valid. */
  get validTokens(): number {
    return [...this.#byAccess.values()].filter((g) => g.expiresAt > Date.now()).length;
  }

  handle(method: string, url: URL, headers: IncomingHttpHeaders, raw: string): V2Answer {
    // ApiController: PATH_INFO trimmed of slashes; a `/v<version>/` prefix is the API version, then removed.
    let path = '/' + url.pathname.replace(/^\/api\.php/, '').replace(/^\/+|\/+$/g, '');
    path = path.replace(/^\/v\d+(?:\.\d+)*\//, '/');
    // Router::handleRequest(): a JSON body only with exactly `Content-Type: application/json`; a form body through $_REQUEST.
    const contentType = headers['content-type'] ?? '';
    let params: Record<string, unknown> = Object.fromEntries(url.searchParams);
    let bodyError: V2Answer | undefined;
    if (contentType === 'application/json') {
      try {
        const parsed: unknown = JSON.parse(raw);
        if (parsed === null || typeof parsed !== 'object') throw new Error('not an array');
        params = { ...params, ...(parsed as Record<string, unknown>) };
      } catch {
        bodyError = error(400, 'ERROR', 'Invalid JSON body');
      }
    } else if (contentType.startsWith('application/x-www-form-urlencoded') && method === 'POST') {
      params = { ...params, ...Object.fromEntries(new URLSearchParams(raw)) };
    }
    // handleAuth(): a Bearer token opens a temporary session; a bad one is a 400 before any routing.
    const auth = typeof headers.authorization === 'string' ? headers.authorization : undefined;
    let grant: Grant | undefined;
    if (auth !== undefined && !auth.startsWith('Basic ')) {
      const checked = this.#validate(auth);
      if ('status' in checked) return checked;
      grant = checked;
    }
    if (path === '/token' && method === 'POST') return bodyError ?? this.#token(params, auth);
    if (path === '/' && method === 'GET') return { status: 200, body: { message: 'Welcome to GLPI API', api_versions: this.#versions(`http://${headers.host ?? '127.0.0.1'}`) } };
    // Every other route needs a user (the catch-all route too).
    if (!grant) {
      return { status: 401, body: { title: 'You are not authenticated', detail: 'The Authorization header is missing or invalid', status: 'ERROR_UNAUTHENTICATED' } };
    }
    if (bodyError) return bodyError;
    const session = this.#host.sessionFor(grant.account);
    const language = this.#language(headers['accept-language'], grant.account);
    return this.#route(method, path, params, session, language) ?? notFound();
  }

  // ---- OAuth ---------------------------------------------------------------------------------------

  /** BearerTokenValidator::validateAuthorization() → Router: 400 "Invalid OAuth token" with league's hint. */
  #validate(auth: string): Grant | V2Answer {
    const jwt = auth.replace(/^\s*Bearer\s/, '').trim();
    const invalid = (hint: string) => error(400, 'ERROR_INVALID_PARAMETER', 'Invalid OAuth token', hint);
    if (jwt.split('.').length !== 3) return invalid('The JWT string must have two dots');
    const g = this.#byAccess.get(jwt);
    // An unknown token fails the signature check; an expired one the time constraint: the same hint.
    if (!g || g.expiresAt <= Date.now()) return invalid('Access token could not be verified');
    return g;
  }

  #token(p: Record<string, unknown>, auth: string | undefined): V2Answer {
    const str = (k: string) => (typeof p[k] === 'string' ? (p[k] as string) : undefined);
    const grantType = str('grant_type');
    if (grantType !== 'password' && grantType !== 'refresh_token') {
      return oauthError(400, 'unsupported_grant_type', 'The authorization grant type is not supported by the authorization server.', 'Check the `grant_type` parameter');
    }
    // AbstractGrant::getClientCredentials(): Basic auth, else the body.
    let clientId = str('client_id');
    let secret = str('client_secret');
    if (auth?.startsWith('Basic ')) {
      const [id, ...rest] = Buffer.from(auth.slice(6), 'base64').toString('utf8').split(':');
      clientId = id;
      secret = rest.join(':');
    }
    if (!clientId) return oauthError(400, 'invalid_request', 'The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed.', 'Check the `client_id` parameter');
    const client = this.#clients.find((c) => c.id === clientId);
    if (!client || client.secret !== secret) return oauthError(401, 'invalid_client', 'Client authentication failed');
    // ClientRepository::validateClient(): the client's grants, plus refresh_token for every client.
    if (![...(client.grants ?? ['password']), 'refresh_token'].includes(grantType)) {
      return oauthError(400, 'unauthorized_client', 'The authenticated client is not authorized to use this authorization grant type.');
    }
    let scopes = (str('scope') ?? '').split(' ').filter((s) => s !== '');
    const badScope = scopes.find((s) => !SCOPES.has(s));
    const invalidScope = (scope: string | undefined) =>
      oauthError(400, 'invalid_scope', 'The requested scope is invalid, unknown, or malformed', scope === undefined ? 'Specify a scope in the request or set a default scope' : `Check the \`${scope}\` scope`);
    if (badScope !== undefined) return invalidScope(badScope);
    // The password grant needs a scope (no default scope assumed: not confirmed in GLPI's ScopeRepository).
    if (scopes.length === 0 && grantType === 'password') return invalidScope(undefined);
    let account: FakeAccount | undefined;
    if (grantType === 'password') {
      const username = str('username');
      const password = str('password');
      const missing = (k: string) => oauthError(400, 'invalid_request', 'The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed.', `Check the \`${k}\` parameter`);
      if (!username) return missing('username');
      if (!password) return missing('password');
      // UserRepository: Auth::validateLogin().
      account = this.#host.accounts.find((a) => a.name === username && a.password !== undefined && a.password === password);
      if (!account) return oauthError(400, 'invalid_grant', 'The user credentials were incorrect.');
      this.passwordLogins++;
    } else {
      const refresh = str('refresh_token');
      if (!refresh) return oauthError(400, 'invalid_request', 'The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed.', 'Check the `refresh_token` parameter');
      const old = this.#byRefresh.get(refresh);
      if (!old) return oauthError(401, 'invalid_request', 'The refresh token is invalid.', 'Token has been revoked');
      if (old.clientId !== client.id) return oauthError(401, 'invalid_request', 'The refresh token is invalid.', 'Token is not linked to client');
      // RefreshTokenGrant: the scopes of the original grant, or fewer; never more.
      if (scopes.length === 0) scopes = old.scopes;
      const wider = scopes.find((x) => !old.scopes.includes(x));
      if (wider !== undefined) return invalidScope(wider);
      // The old access and refresh tokens are revoked.
      this.#byRefresh.delete(refresh);
      this.#byAccess.delete(old.access);
      account = old.account;
    }
    const jti = randomBytes(20).toString('hex');
    const expiresAt = Date.now() + this.lifetimeSeconds * 1000;
    const access = `${b64({ typ: 'JWT', alg: 'RS256' })}.${b64({ aud: client.id, jti, sub: String(account.id), scopes, exp: Math.floor(expiresAt / 1000) })}.${randomBytes(32).toString('base64url')}`;
    const g: Grant = { access, refresh: randomBytes(48).toString('hex'), account, clientId: client.id, expiresAt, scopes };
    this.#byAccess.set(g.access, g);
    this.#byRefresh.set(g.refresh, g);
    this.tokensIssued++;
    return {
      status: 200,
      body: { token_type: 'Bearer', expires_in: this.lifetimeSeconds, access_token: g.access, refresh_token: g.refresh },
      headers: { 'Cache-Control': 'no-store', Pragma: 'no-cache' },
    };
  }

  /** `$CFG_GLPI['url_base']` is the site's address: here, the one the client called. */
  #versions(base: string): { api_version: string; version: string; description?: string; endpoint: string }[] {
    return [
      {
        api_version: '1',
        version: '1.0.0',
        description: 'The low-level API which is closely tied to the GLPI source code. While not as user friendly as the high-level API, it is more powerful and allows to do some things that are not possible with the high-level API. It has no promise of stability between versions so it may change without warning.',
        endpoint: `${base}/api.php/v1`,
      },
      ...API_VERSIONS.map((v) => ({ api_version: '2', version: v, endpoint: `${base}/api.php/v${v.split('.').slice(0, 2).join('.')}` })),
    ];
  }

  /** Accept-Language sets the session's language (Router::startTemporarySession), else the user's, else GLPI's. */
  #language(header: string | undefined, account: FakeAccount): Language {
    if (header?.toLowerCase().startsWith('fr')) return 'fr_FR';
    if (header?.toLowerCase().startsWith('en')) return 'en_GB';
    return account.language ?? this.#host.language;
  }

  // ---- routes --------------------------------------------------------------------------------------

  #route(method: string, path: string, p: Record<string, unknown>, s: FakeSession, lang: Language): V2Answer | undefined {
    if (path === '/session' && method === 'GET') return { status: 200, body: this.#session(s) };
    const dropdown = /^\/(Dropdowns|Administration)\/(\w+)\/(\d+)$/.exec(path);
    if (dropdown && method === 'GET') return this.#dropdown(dropdown[1]!, dropdown[2]!, Number(dropdown[3]), s);
    const listed = /^\/(Dropdowns|Administration)\/(\w+)$/.exec(path);
    if (listed && method === 'GET') return this.#listDropdown(listed[1]!, listed[2]!, p, s);
    if (path === '/Assistance/Ticket') {
      if (method === 'GET') return this.#search(p, s);
      if (method === 'POST') return this.#createTicket(p, s, lang);
      return undefined;
    }
    if (path === '/Assistance/Problem') {
      if (method === 'GET') return this.#searchProblems(p, s);
      if (method === 'POST') return this.#createProblem(p, s, lang);
      return undefined;
    }
    const problem = /^\/Assistance\/Problem\/(\d+)(?:\/(Timeline\/Followup|TeamMember))?$/.exec(path);
    if (problem) {
      const pr = this.#host.problems.get(Number(problem[1]));
      // CRUDRequestMiddleware: the parent item must exist.
      if (!pr) return notFound();
      const sub = problem[2];
      if (sub === undefined) return method === 'GET' ? (this.#host.canSeeEntity(s, pr.entities_id) ? { status: 200, body: this.#problem(pr) } : notFound()) : undefined;
      if (sub === 'TeamMember') {
        if (method === 'GET') return { status: 200, body: this.#team(pr) };
        if (method === 'POST') return this.#addTeamMember(pr, p, s);
        return undefined;
      }
      if (method === 'GET') return { status: 200, body: this.#host.followups.filter((f) => f.itemtype === 'Problem' && f.items_id === pr.id).map((f) => ({ type: 'Followup', item: this.#followup(f) })) };
      if (method === 'POST') return this.#addProblemFollowup(pr, p, s, lang);
      return undefined;
    }
    const one = /^\/Assistance\/Ticket\/(\d+)(?:\/(Timeline\/Followup|Timeline\/Solution|TeamMember))?$/.exec(path);
    if (!one) return undefined;
    // CRUDRequestMiddleware: the parent item must exist (whatever the rights).
    const t = this.#host.tickets.get(Number(one[1]));
    if (!t) return notFound();
    const sub = one[2];
    if (sub === undefined) {
      if (method === 'GET') return this.#host.canSeeEntity(s, t.entities_id) ? { status: 200, body: this.#ticket(t) } : notFound();
      if (method === 'PATCH') return this.#updateTicket(t, p, s, lang);
      return undefined;
    }
    if (sub === 'TeamMember') {
      if (method === 'GET') return { status: 200, body: this.#team(t) };
      if (method === 'POST') return this.#addTeamMember(t, p, s);
      return undefined;
    }
    const kind = sub === 'Timeline/Followup' ? 'Followup' : 'Solution';
    if (method === 'GET') return this.#timeline(t, kind);
    if (method === 'POST') return kind === 'Followup' ? this.#addFollowup(t, p, s, lang) : this.#addSolution(t, p, s, lang);
    return undefined;
  }

  /** CoreController::getSession(). */
  #session(s: FakeSession): Record<string, unknown> {
    const active = this.#host.activeEntity(s);
    const entities = s.activeEntities === 'all' ? [active] : [...s.activeEntities];
    return {
      current_time: new Date().toISOString().replace(/\.\d+Z$/, '+00:00'),
      user_id: s.account.id,
      use_mode: 0,
      friendly_name: s.account.name,
      name: s.account.name,
      real_name: '',
      first_name: '',
      default_entity: active,
      profiles: [4],
      active_entities: entities,
      active_profile: { id: 4, name: 'Super-Admin', interface: 'central' },
      active_entity: { id: active, short_name: this.#host.entityName(active), complete_name: this.#host.entityName(active), recursive: 0 },
    };
  }

  #dropdown(controller: string, itemtype: string, id: number, s: FakeSession): V2Answer | undefined {
    const types = controller === 'Dropdowns' ? ['ITILCategory', 'RequestType', 'SolutionType'] : ['Group', 'Entity'];
    if (!types.includes(itemtype)) return undefined;
    if (!this.#host.itemExists(itemtype, id)) return notFound();
    if (itemtype === 'Entity' && !this.#host.canSeeEntity(s, id)) return notFound();
    const name = itemtype === 'Entity' ? this.#host.entityName(id) : `${itemtype} ${id}`;
    return { status: 200, body: { id, name, completename: name } };
  }

  /**
   * `GET /Dropdowns/{itemtype}` and `/Administration/{itemtype}`: the search of CRUDControllerTrait with an
   * RSQL `filter`, `start` and `limit`, rows in the item's schema — ITILCategory [DROP], Group, Entity
   * (`name`, `completename`, `level`) and User (`username` = the login, `realname`, `firstname`) from
   * AdministrationController::getRawKnownSchemas() @ 08a60b83e83a59cf27311a161e307074405ad60a; RequestType
   * (`name`). An unknown property in the filter is ignored, as GLPI's RSQL parser does.
   */
  #listDropdown(controller: string, itemtype: string, p: Record<string, unknown>, s: FakeSession): V2Answer | undefined {
    const types = controller === 'Dropdowns' ? ['ITILCategory', 'RequestType'] : ['Group', 'Entity', 'User'];
    if (!types.includes(itemtype)) return undefined;
    const schema = (r: Record<string, unknown>): Record<string, unknown> => {
      if (itemtype === 'User') return { id: r.id, username: r.name, realname: r.realname ?? null, firstname: r.firstname ?? null, is_active: true };
      if (itemtype === 'RequestType') return { id: r.id, name: r.name };
      return { id: r.id, name: r.name, completename: r.completename, level: String(r.completename ?? '').split(' > ').length };
    };
    let rows = (this.#host.directoryRows(itemtype) ?? []).map(schema);
    if (itemtype === 'Entity') rows = rows.filter((r) => this.#host.canSeeEntity(s, Number(r.id)));
    const known = new Set(Object.keys(rows[0] ?? schema({})));
    let predicate: (row: Lookup) => boolean;
    try {
      predicate = compile(typeof p.filter === 'string' ? p.filter : '', (prop) => known.has(prop));
    } catch (e) {
      if (e instanceof RsqlError) return error(400, 'ERROR_INVALID_PARAMETER', e.message);
      throw e;
    }
    const start = Math.max(0, Number(p.start ?? 0) || 0);
    const limit = Math.max(1, Number(p.limit ?? 100) || 100);
    const matched = rows.filter((r) => predicate((prop) => r[prop] as string | number | null | undefined)).sort((a, b) => Number(a.id) - Number(b.id));
    const total = matched.length;
    let end = Math.max(0, start + limit - 1);
    if (end > total) end = total - 1;
    return { status: start + limit < total ? 206 : 200, body: matched.slice(start, start + limit), headers: { 'Content-Range': `${start}-${end}/${total}` } };
  }

  /** The Ticket schema as a search row (ITILController::getRawKnownSchemas()). */
  #ticket(t: FakeTicket): Record<string, unknown> {
    const ref = (id: number, name: string) => (id > 0 ? { id, name } : null);
    return {
      id: t.id,
      name: t.name,
      content: t.content,
      is_deleted: t.is_deleted === 1,
      category: ref(t.itilcategories_id, `ITILCategory ${t.itilcategories_id}`),
      location: null,
      urgency: t.urgency,
      impact: t.impact,
      priority: t.priority,
      actiontime: 0,
      date_creation: rfc3339(t.date_creation),
      date_mod: rfc3339(t.date_mod),
      date: rfc3339(t.date),
      type: t.type,
      external_id: t.externalid ?? null,
      request_type: ref(t.requesttypes_id, `RequestType ${t.requesttypes_id}`),
      status: { id: t.status, name: STATUS_NAMES[t.status] ?? String(t.status) },
      entity: { id: t.entities_id, name: this.#host.entityName(t.entities_id), completename: this.#host.entityName(t.entities_id) },
      team: this.#team(t),
    };
  }

  /**
   * ITILController::getCleanTeam(): role (as text), name, realname, firstname, display_name, href. The requester
   * is the writer: GLPI makes the logged-in user the requester of an item created without one; then the users
   * the TeamMember route added, by role, then the assigned groups. (The order of CommonITILObject::getTeam() is
   * not confirmed; the bridge never relies on it.)
   */
  #team(t: FakeTicket | FakeProblem): Record<string, unknown>[] {
    const team: Record<string, unknown>[] = [];
    const member = (role: string, id: number) => {
      const u = this.#host.user(id);
      if (!u) return;
      const display = u.realname !== null ? [u.realname, u.firstname].filter((x) => x !== null && x !== '').join(' ') : u.name;
      team.push({ role, name: u.name, realname: u.realname, firstname: u.firstname, display_name: display, href: `/front/user.form.php?id=${id}` });
    };
    member('requester', t.users_id_recipient);
    for (const role of [1, 2, 3] as const) for (const id of t.users?.[ROLES[role]!.actor] ?? []) member(ROLES[role]!.name, id);
    if ('groups_id_assign' in t) for (const g of t.groups_id_assign) team.push({ role: 'assigned', name: `Group ${g}`, href: `/front/group.form.php?id=${g}` });
    return team;
  }

  /** Search::searchBySchema(): RSQL filter, start/limit, 200 or 206 and Content-Range (with GLPI's arithmetic). */
  #search(p: Record<string, unknown>, s: FakeSession): V2Answer {
    const start = Math.max(0, Number(p.start ?? 0) || 0);
    const limit = Math.max(1, Number(p.limit ?? 100) || 100);
    let predicate: (row: Lookup) => boolean;
    try {
      predicate = compile(typeof p.filter === 'string' ? p.filter : '', (prop) => prop in TICKET_FILTERS, (prop) => prop === 'is_deleted');
    } catch (e) {
      if (e instanceof RsqlError) return error(400, 'ERROR_INVALID_PARAMETER', e.message);
      throw e;
    }
    const sorter = sortBy(p.sort, TICKET_FILTERS);
    if (typeof sorter === 'string') return error(400, 'ERROR', sorter);
    const rows = [...this.#host.tickets.values()]
      .filter((t) => this.#host.canSeeEntity(s, t.entities_id))
      .filter((t) => predicate((prop) => TICKET_FILTERS[prop]?.(t)))
      .sort((a, b) => sorter(a, b) || a.id - b.id);
    const total = rows.length;
    const page = rows.slice(start, start + limit).map((t) => this.#ticket(t));
    let end = Math.max(0, start + limit - 1);
    if (end > total) end = total - 1;
    return { status: start + limit < total ? 206 : 200, body: page, headers: { 'Content-Range': `${start}-${end}/${total}` } };
  }

  /** Search::createBySchema() for a ticket. */
  #createTicket(p: Record<string, unknown>, s: FakeSession, lang: Language): V2Answer {
    const input = this.#input(p, TICKET_INPUT);
    // The entity defaults to the session's active entity; can(-1, CREATE) needs it among the active ones.
    input.entities_id ??= this.#host.activeEntity(s);
    if (!this.#host.canSeeEntity(s, Number(input.entities_id))) return forbidden();
    const r = this.#host.add(s, lang, 'Ticket', input);
    if (r.id === false) return failed('create', r.message);
    const href = `/Assistance/Ticket/${r.id}`;
    return { status: 200, body: { id: r.id, href }, headers: { Location: href }, committed: true };
  }

  /** Search::updateBySchema(): the answer is the ticket as stored. */
  #updateTicket(t: FakeTicket, p: Record<string, unknown>, s: FakeSession, lang: Language): V2Answer {
    if (!this.#host.canSeeEntity(s, t.entities_id)) return forbidden();
    const input = this.#input(p, TICKET_INPUT);
    delete input.entities_id;
    const r = this.#host.update(s, lang, t, input);
    if (!r.ok) return failed('update', r.message);
    return { status: 200, body: this.#ticket(t) };
  }

  /** Only the schema's properties reach GLPI, under their field names; the rest is dropped silently. */
  #input(p: Record<string, unknown>, map: Record<string, string>): Record<string, unknown> {
    const flat = flatten(p);
    const input: Record<string, unknown> = {};
    for (const [prop, field] of Object.entries(map)) if (prop in flat) input[field] = flat[prop];
    return input;
  }

  #timeline(t: FakeTicket, kind: 'Followup' | 'Solution'): V2Answer {
    const items =
      kind === 'Followup'
        ? this.#host.followups.filter((f) => f.itemtype === 'Ticket' && f.items_id === t.id).map((f) => this.#followup(f))
        : this.#host.solutions.filter((x) => x.itemtype === 'Ticket' && x.items_id === t.id).map((x) => this.#solution(x));
    // getITILTimelineItems(): each item wrapped with its type.
    return { status: 200, body: items.map((item) => ({ type: kind, item })) };
  }

  /** The Followup schema of the newest 2.x read (ITILController @ e934661d: `user` the writer, `user_editor` the last editor; empty: null). */
  #followup(f: FakeFollowup): Record<string, unknown> {
    return {
      id: f.id,
      itemtype: f.itemtype,
      items_id: f.items_id,
      content: f.content,
      is_private: f.is_private === 1,
      user: this.#userRef(f.users_id),
      user_editor: null,
      request_type: f.requesttypes_id > 0 ? { id: f.requesttypes_id, name: `RequestType ${f.requesttypes_id}` } : null,
      date_creation: rfc3339(f.date),
      date_mod: rfc3339(f.date),
    };
  }

  #solution(x: FakeSolution): Record<string, unknown> {
    return { id: x.id, itemtype: x.itemtype, items_id: x.items_id, content: x.content, user: this.#userRef(x.users_id), user_editor: null };
  }

  /** A User dropdown as the search gives it: {id, name} (the login), or null when empty. */
  #userRef(id: number): { id: number; name: string } | null {
    const u = id > 0 ? this.#host.user(id) : undefined;
    return u ? { id, name: u.name } : null;
  }

  /** createTimelineItem(): the Followup schema (content, is_private, request_type); the parent from the URL. */
  #addFollowup(t: FakeTicket, p: Record<string, unknown>, s: FakeSession, lang: Language): V2Answer {
    // ITILFollowup::canCreateItem(): the parent readable; a closed one only for a user who may reopen it.
    if (!this.#host.canSeeEntity(s, t.entities_id) || (t.status === CLOSED && !this.#host.canReopenClosed())) return forbidden();
    const flat = flatten(p);
    const input: Record<string, unknown> = { itemtype: 'Ticket', items_id: t.id };
    if ('content' in flat) input.content = flat.content;
    if ('is_private' in flat) input.is_private = bool(flat.is_private) ? 1 : 0;
    if ('request_type' in flat) input.requesttypes_id = flat.request_type;
    const r = this.#host.add(s, lang, 'ITILFollowup', input);
    if (r.id === false) return failed('create', r.message);
    const href = `/Assistance/Ticket/${t.id}/Timeline/Followup/${r.id}`;
    return { status: 200, body: { id: r.id, href }, headers: { Location: href }, committed: true };
  }

  /** createTimelineItem() with the Solution schema (content only: no solution type). */
  #addSolution(t: FakeTicket, p: Record<string, unknown>, s: FakeSession, lang: Language): V2Answer {
    // ITILSolution::canCreateItem() → canSolve(): readable and not closed.
    if (!this.#host.canSeeEntity(s, t.entities_id) || t.status === CLOSED) return forbidden();
    const flat = flatten(p);
    const input: Record<string, unknown> = { itemtype: 'Ticket', items_id: t.id };
    if ('content' in flat) input.content = flat.content;
    const r = this.#host.add(s, lang, 'ITILSolution', input);
    if (r.id === false) return failed('create', r.message);
    const href = `/Assistance/Ticket/${t.id}/Timeline/Solution/${r.id}`;
    return { status: 200, body: { id: r.id, href }, headers: { Location: href }, committed: true };
  }

  /**
   * addTeamMember(): `type`, `id` and `role` handed to CommonITILObject::addTeamMember() as sent; `role` must be
   * CommonITILActor's number (1 requester, 2 assigned, 3 observer: the route does not translate "assigned");
   * 201 without a body, or 400 "One or more parameters are invalid" when GLPI adds nothing.
   */
  #addTeamMember(t: FakeTicket | FakeProblem, p: Record<string, unknown>, s: FakeSession): V2Answer {
    const invalid = () => error(400, 'ERROR_INVALID_PARAMETER', 'One or more parameters are invalid');
    const role = typeof p.role === 'number' || (typeof p.role === 'string' && /^\d+$/.test(p.role)) ? Number(p.role) : NaN;
    const id = Number(p.id);
    const known = ROLES[role];
    if (!known || !Number.isInteger(id) || id <= 0) return invalid();
    if (!this.#host.canSeeEntity(s, t.entities_id)) return forbidden();
    if (p.type === 'User') return this.#host.addTeamUser(s, t, id, known.actor) ? { status: 201, body: null } : invalid();
    // Groups: the fake models assigned groups of tickets only (what the bridge adds).
    if (p.type === 'Group' && role === 2 && 'groups_id_assign' in t) return this.#host.assignGroup(s, t, id) ? { status: 201, body: null } : invalid();
    return invalid();
  }

  /** The Problem schema as a search row (ITILController: the ITIL base schema, status, entity, team). */
  #problem(x: FakeProblem): Record<string, unknown> {
    return {
      id: x.id,
      name: x.name,
      content: x.content,
      is_deleted: x.is_deleted === 1,
      category: x.itilcategories_id > 0 ? { id: x.itilcategories_id, name: `ITILCategory ${x.itilcategories_id}` } : null,
      location: null,
      urgency: x.urgency,
      impact: x.impact,
      priority: x.priority,
      actiontime: 0,
      date_creation: rfc3339(x.date),
      date_mod: rfc3339(x.date_mod),
      date: rfc3339(x.date),
      status: { id: x.status, name: PROBLEM_STATUS_NAMES[x.status] ?? String(x.status) },
      entity: { id: x.entities_id, name: this.#host.entityName(x.entities_id), completename: this.#host.entityName(x.entities_id) },
      team: this.#team(x),
    };
  }

  /** `GET /Assistance/Problem`: the same search as tickets' over the Problem schema. */
  #searchProblems(p: Record<string, unknown>, s: FakeSession): V2Answer {
    let predicate: (row: Lookup) => boolean;
    try {
      predicate = compile(typeof p.filter === 'string' ? p.filter : '', (prop) => prop in PROBLEM_FILTERS, (prop) => prop === 'is_deleted');
    } catch (e) {
      if (e instanceof RsqlError) return error(400, 'ERROR_INVALID_PARAMETER', e.message);
      throw e;
    }
    const sorter = sortBy(p.sort, PROBLEM_FILTERS);
    if (typeof sorter === 'string') return error(400, 'ERROR', sorter);
    const rows = [...this.#host.problems.values()]
      .filter((x) => this.#host.canSeeEntity(s, x.entities_id))
      .filter((x) => predicate((prop) => PROBLEM_FILTERS[prop]?.(x)))
      .sort((a, b) => sorter(a, b) || a.id - b.id);
    return page(rows.map((x) => this.#problem(x)), p);
  }

  /** createItem() for a Problem: only its schema's properties, the entity defaulting to the active one. */
  #createProblem(p: Record<string, unknown>, s: FakeSession, lang: Language): V2Answer {
    const input = this.#input(p, PROBLEM_INPUT);
    input.entities_id ??= this.#host.activeEntity(s);
    if (!this.#host.canSeeEntity(s, Number(input.entities_id))) return forbidden();
    const r = this.#host.add(s, lang, 'Problem', input);
    if (r.id === false) return failed('create', r.message);
    const href = `/Assistance/Problem/${r.id}`;
    return { status: 200, body: { id: r.id, href }, headers: { Location: href }, committed: true };
  }

  /** createTimelineItem() for a Problem's follow-up (ITILFollowup with itemtype Problem). */
  #addProblemFollowup(x: FakeProblem, p: Record<string, unknown>, s: FakeSession, lang: Language): V2Answer {
    if (!this.#host.canSeeEntity(s, x.entities_id)) return forbidden();
    const flat = flatten(p);
    const input: Record<string, unknown> = { itemtype: 'Problem', items_id: x.id };
    if ('content' in flat) input.content = flat.content;
    if ('is_private' in flat) input.is_private = bool(flat.is_private) ? 1 : 0;
    const r = this.#host.add(s, lang, 'ITILFollowup', input);
    // A closed problem: ITILFollowup::canCreateItem() is false (the fake's user may not reopen it).
    if (r.id === false) return x.status === CLOSED ? forbidden() : failed('create', r.message);
    const href = `/Assistance/Problem/${x.id}/Timeline/Followup/${r.id}`;
    return { status: 200, body: { id: r.id, href }, headers: { Location: href }, committed: true };
  }
}

/** searchBySchema()'s paging: `start`/`limit`, 200 or 206 when more remain, Content-Range with GLPI's arithmetic. */
function page(rows: readonly Record<string, unknown>[], p: Record<string, unknown>): V2Answer {
  const start = Math.max(0, Number(p.start ?? 0) || 0);
  const limit = Math.max(1, Number(p.limit ?? 100) || 100);
  const total = rows.length;
  let end = Math.max(0, start + limit - 1);
  if (end > total) end = total - 1;
  return { status: start + limit < total ? 206 : 200, body: rows.slice(start, start + limit), headers: { 'Content-Range': `${start}-${end}/${total}` } };
}

/** Problem properties a filter may name (the flattened schema), and their values in a row. */
const PROBLEM_FILTERS: Record<string, (x: FakeProblem) => string | number | null> = {
  id: (x) => x.id,
  name: (x) => x.name,
  content: (x) => x.content,
  is_deleted: (x) => x.is_deleted,
  urgency: (x) => x.urgency,
  impact: (x) => x.impact,
  priority: (x) => x.priority,
  'status.id': (x) => x.status,
  'category.id': (x) => x.itilcategories_id,
  'entity.id': (x) => x.entities_id,
  date: (x) => x.date,
  date_mod: (x) => x.date_mod,
};

/** Ticket properties a filter may name (the flattened schema), and their values in a row. */
const TICKET_FILTERS: Record<string, (t: FakeTicket) => string | number | null> = {
  id: (t) => t.id,
  name: (t) => t.name,
  content: (t) => t.content,
  is_deleted: (t) => t.is_deleted,
  urgency: (t) => t.urgency,
  impact: (t) => t.impact,
  priority: (t) => t.priority,
  type: (t) => t.type,
  external_id: (t) => t.externalid ?? null,
  'status.id': (t) => t.status,
  'category.id': (t) => t.itilcategories_id,
  'request_type.id': (t) => t.requesttypes_id,
  'entity.id': (t) => t.entities_id,
  // Dates as the column holds them ('YYYY-MM-DD HH:MM:SS'): RSQL compares the SQL column (Parser: the value as sent).
  date: (t) => t.date,
  date_creation: (t) => t.date_creation,
  date_mod: (t) => t.date_mod,
};

/**
 * Search::getSearchCriteria()'s `sort`: `property[:asc|desc]`, comma-separated, properties of the flattened
 * schema; an unknown one fails the request with 400 "Invalid property for sorting: …" (an APIException; the
 * body's `status` is not confirmed). (src/Glpi/Api/HL/Search.php @ 0042059c82075d3223c145cb3609a83019fc0cd2)
 */
function sortBy<T>(raw: unknown, props: Record<string, (row: T) => string | number | null>): ((a: T, b: T) => number) | string {
  if (typeof raw !== 'string') return () => 0;
  const keys: { get: (row: T) => string | number | null; dir: number }[] = [];
  for (const part of raw.split(',').map((x) => x.trim()).filter((x) => x !== '')) {
    const [prop = '', dir = 'asc'] = part.split(':');
    const get = props[prop];
    if (!get) return `Invalid property for sorting: ${prop}`;
    keys.push({ get, dir: dir.toUpperCase() === 'DESC' ? -1 : 1 });
  }
  return (a, b) => {
    for (const k of keys) {
      const x = k.get(a);
      const y = k.get(b);
      if (x === y) continue;
      if (x === null) return -k.dir;
      if (y === null) return k.dir;
      return (x < y ? -1 : 1) * k.dir;
    }
    return 0;
  };
}

