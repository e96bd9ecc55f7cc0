import type { AxiosInstance, Method } from '../../axios/index.js';
import * as z from 'zod';
import type { TicketDraft } from '../../../core/decide.js';
import type { Clock, ModifiedTicket, ProblemDesk, ProblemDraft, ProblemRef, TicketWatch } from '../../../core/ports.js';
import type { Secret } from '../../../config/secret.js';
import type { Logger } from '../../../observability/logger.js';
import type { Metrics } from '../../../observability/metrics.js';
import { RemoteError } from '../../../core/remote-error.js';
import { isRedirect, redirectMessage, type TlsSettings } from '../../transport.js';
import { countRequest, GlpiAgents } from '../agents.js';
import { solvedAlready, TICKET_STATUS } from '../outcome.js';
import type { GlpiConnection, SessionState } from '../connection.js';
import { reportRefusedRows, type RefusedRow } from '../refused-rows.js';
import { fromTokenResponse, fromV2Response, strippedBearer, type Action } from './outcome.js';

export interface GlpiV2ClientOptions {
  /**
   * GLPI's root address (`https://glpi.example.com`, or with its sub-folder). A URL ending in `/api.php`,
   * `/api.php/v2[.x]` or `/apirest.php` is cut back to the root. The client calls `<root>/api.php/token`
   * and `<root>/api.php/v2/…`: the major version is pinned, GLPI serves its newest 2.x.
   */
  readonly url: string;
  /** The OAuth client GLPI issued (Setup › OAuth clients), allowed the password grant and the `api` scope. */
  readonly clientId: Secret;
  readonly clientSecret: Secret;
  /** The bridge's GLPI user (password grant). */
  readonly username: string;
  readonly password: Secret;
  readonly timeoutMs: number;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  readonly tls?: TlsSettings;
  /** Idle keep-alive connections are closed after this long (default 4 s, below Apache's 5 s). */
  readonly idleSocketTimeoutMs?: number;
  /**
   * A follow-up on a Pending ticket sets it back to Assigned (GLPI's ParentStatus). `keep` (default): the
   * ticket is set back to Pending after the follow-up (v2 drops `_no_reopen`); `resume`: GLPI's behaviour.
   */
  readonly pendingFollowups?: 'keep' | 'resume';
  /** Renew the access token this long before GLPI says it expires (default 120 s; GLPI's tokens live an hour). */
  readonly renewBeforeMs?: number;
  /** When the token is due (tests pin it); default the system clock. */
  readonly clock?: Clock;
}

/** CommonITILActor::ASSIGN: the role addTeamMember() takes (numeric in 2.x). */
const ROLE_ASSIGNED = 2;
/**
 * The rules' actor roles as addTeamMember() takes them: CommonITILActor's numbers (Team::ROLE_REQUESTER /
 * ROLE_ASSIGNED / ROLE_OBSERVER are CommonITILActor::REQUESTER 1, ASSIGN 2, OBSERVER 3: glpi-project/glpi
 * src/Glpi/Team/Team.php @ ce03b58ee31dc6aca1e40f6a0eeb56b8f16aeb0a). The route hands `role` to
 * CommonITILObject::addTeamMember() as sent ("TODO Handle textual representations of roles", ITILController
 * @ e934661da8fba4cca18135bde029560f38ac7f83), so the number is what works on every 2.x.
 */
const ACTOR_ROLE: Record<'requester' | 'assign' | 'observer', number> = { requester: 1, assign: 2, observer: 3 };

const tokenAnswer = z.object({
  access_token: z.string().min(1),
  token_type: z.string().optional(),
  expires_in: z.coerce.number().positive().optional(),
  refresh_token: z.string().min(1).optional(),
});
const created = z.object({ id: z.coerce.number().int().positive() });
const sessionAnswer = z.object({ user_id: z.coerce.number().int().positive(), name: z.string().optional() });
const member = z.object({ role: z.union([z.string(), z.number()]).optional(), name: z.string().nullable().optional(), href: z.string().nullable().optional() }).passthrough();
/** A dropdown as the search gives it: `{id, name}`, or null when empty (RecordSet::fixupAssembledRecord; `[]` tolerated). */
const ref = z
  .union([z.object({ id: z.coerce.number() }).passthrough(), z.array(z.unknown()), z.null()])
  .optional()
  .transform((v) => (v !== undefined && v !== null && !Array.isArray(v) ? { id: v.id } : undefined));
const ticketAnswer = z
  .object({
    id: z.coerce.number(),
    name: z.string().nullable().optional(),
    status: z.object({ id: z.coerce.number() }),
    urgency: z.coerce.number().nullable().optional(),
    impact: z.coerce.number().nullable().optional(),
    type: z.coerce.number().nullable().optional(),
    external_id: z.string().nullable().optional(),
    is_deleted: z.union([z.boolean(), z.number().transform((n) => n !== 0)]).optional(),
    date_mod: z.string().nullable().optional(),
    category: ref,
    entity: ref,
    request_type: ref,
    team: z.array(member).optional(),
  })
  .passthrough();
type Ticket = z.infer<typeof ticketAnswer>;
const ticketList = z.array(ticketAnswer);
const timeline = z.array(z.object({ type: z.string().optional(), item: z.object({ id: z.coerce.number(), content: z.string().nullable().optional() }).passthrough() }));
/** Follow-ups with who wrote them (`user`: in the Followup schema of ITILController @ e934661d, not of 03cf5b9a) and whether private. */
const followupItems = z.array(
  z.object({
    item: z
      .object({
        id: z.coerce.number(),
        content: z.string().nullable().optional(),
        is_private: z.union([z.boolean(), z.number().transform((n) => n !== 0)]).optional(),
        user: z.union([z.object({ id: z.coerce.number() }).passthrough(), z.array(z.unknown()), z.null()]).optional(),
      })
      .passthrough(),
  }),
);
const teamList = z.array(member);
/** A Problem as the search and the get give it (ITILController: the ITIL base schema, status {id,name}, team). */
const problemAnswer = z
  .object({
    id: z.coerce.number(),
    name: z.string().nullable().optional(),
    status: z.object({ id: z.coerce.number() }),
    is_deleted: z.union([z.boolean(), z.number().transform((n) => n !== 0)]).optional(),
    team: z.array(member).optional(),
  })
  .passthrough();
const problemList = z.array(problemAnswer);

/** The GLPI root from what the operator configured. */
export function glpiRoot(url: string): string {
  return url.replace(/\/+$/, '').replace(/\/(?:api\.php(?:\/v\d+(?:\.\d+)*)?|apirest\.php)$/, '');
}

function parseBody(raw: unknown): unknown {
  if (typeof raw !== 'string') return raw;
  if (raw === '') return undefined;
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

interface SendOptions {
  readonly params?: Record<string, unknown>;
  /** Sent as JSON. */
  readonly data?: unknown;
  /** Sent form-encoded (the token endpoint). */
  readonly form?: Record<string, string>;
  readonly token?: string;
  readonly action: Action | 'token';
}

interface Token {
  readonly access: string;
  readonly refresh: string | undefined;
  /** When to renew it (ms since the epoch). */
  readonly renewAt: number;
  /** When GLPI stops taking it. */
  readonly expiresAt: number;
}

/** Who the bridge is in GLPI (GET /session). */
export interface GlpiV2Identity {
  readonly id: number;
  readonly name: string | undefined;
}

/**
 * GLPI 11's high-level API ("v2", `api.php/v2`) as a ticket desk: the same guarantees to the dispatcher as
 * the legacy client (../client.ts) — the marker search only returns tickets the bridge created, errors are
 * RemoteErrors of the same kinds and codes (a create GLPI refused is permanent, an unknown outcome
 * retryable), retrying stays the dispatcher's job. What GLPI does and how that shapes this class:
 * docs/glpi-api-v2.md.
 *
 * One OAuth2 access token serves every job. It is obtained with the password grant (each token is a row in
 * GLPI's glpi_oauth_access_tokens), renewed shortly before its hour is over with the refresh_token grant
 * (the password grant when that fails), single-flight: N concurrent calls wait for one token request. An
 * answer saying the token is expired or unknown (400 "Invalid OAuth token") gets a new token and the request
 * once more.
 */
export class GlpiV2Client implements GlpiConnection, ProblemDesk, TicketWatch {
  readonly #http: AxiosInstance;
  readonly #agents: GlpiAgents;
  readonly #opt: GlpiV2ClientOptions;
  readonly #root: string;
  #token: Token | undefined;
  /** The refresh token of the last grant: kept when the access token is dropped as refused. */
  #refresh: string | undefined;
  #renewing: Promise<Token> | undefined;
  #state: SessionState = 'none';
  #lastLoginError: string | undefined;
  #identity: Promise<GlpiV2Identity> | undefined;
  #solutionTypeWarned = false;
  #assetWarned = false;
  #linkWarned = false;
  #authorWarned = false;

  constructor(opt: GlpiV2ClientOptions) {
    this.#opt = opt;
    this.#root = glpiRoot(opt.url);
    this.#agents = new GlpiAgents(opt.tls, opt.idleSocketTimeoutMs);
    // A JSON body goes with exactly `application/json` (#send): GLPI's router reads one only with that very value.
    this.#http = this.#agents.client(`${this.#root}/`, opt.timeoutMs, { Accept: 'application/json' });
  }

  get sessionState(): SessionState {
    return this.#state;
  }

  #now(): number {
    return this.#opt.clock?.now() ?? Date.now();
  }

  get lastLoginError(): string | undefined {
    return this.#lastLoginError;
  }

  /** Link to a ticket in the GLPI web interface. */
  ticketUrl(id: number): string {
    return `${this.#root}/front/ticket.form.php?id=${id}`;
  }

  // ---- HTTP ---------------------------------------------------------------------------------------

  async #send(operation: string, method: Method, path: string, o: SendOptions): Promise<{ status: number; body: unknown }> {
    const started = process.hrtime.bigint();
    let status = 'error';
    const headers: Record<string, string> = {};
    if (o.token !== undefined) headers.Authorization = `Bearer ${o.token}`;
    let data: string | undefined;
    if (o.form !== undefined) {
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
      data = new URLSearchParams(o.form).toString();
    } else if (o.data !== undefined) {
      headers['Content-Type'] = 'application/json';
      data = JSON.stringify(o.data);
    }
    try {
      const res = await this.#http.request({ method, url: path, params: o.params, data, headers });
      status = String(res.status);
      const body = parseBody(res.data);
      if (res.status >= 200 && res.status < 300) return { status: res.status, body };
      if (isRedirect(res.status)) throw new RemoteError('login', 'GLPI_REDIRECT', redirectMessage('GLPI', res.status, res.headers.location), res.status, undefined, { mayHaveLanded: false });
      const retryAfter = typeof res.headers['retry-after'] === 'string' ? res.headers['retry-after'] : undefined;
      throw o.action === 'token' ? fromTokenResponse(res.status, body, retryAfter) : fromV2Response(res.status, body, retryAfter, o.action);
    } catch (e) {
      if (e instanceof RemoteError) throw e;
      const unanswered = this.#agents.unanswered(e);
      status = unanswered.status;
      throw unanswered.failure;
    } finally {
      countRequest(this.#opt.metrics, operation, status, started);
    }
  }

  /** A read or an update sent on a connection the server had closed goes again at once; a POST goes back to the dispatcher. */
  async #raw(operation: string, method: Method, path: string, o: SendOptions): Promise<{ status: number; body: unknown }> {
    try {
      return await this.#send(operation, method, path, o);
    } catch (e) {
      if (!(e instanceof RemoteError) || !e.staleConnection || method === 'POST') throw e;
      return this.#send(operation, method, path, o);
    }
  }

  // ---- the access token -----------------------------------------------------------------------------

  /** The token to use now: the one held, renewed first when its hour is nearly over. */
  async #accessToken(): Promise<string> {
    const t = this.#token;
    if (t && this.#now() < t.renewAt) return t.access;
    try {
      return (await this.#renew(t ? 'renew' : 'start')).access;
    } catch (e) {
      // GLPI unreachable while renewing ahead of time: the token held still works until its expiry.
      if (t && e instanceof RemoteError && e.kind === 'retryable' && this.#now() < t.expiresAt) return t.access;
      throw e;
    }
  }

  /** One token request at a time; every caller meanwhile waits for it. */
  #renew(reason: 'start' | 'renew' | 'expired'): Promise<Token> {
    if (this.#renewing) return this.#renewing;
    if (this.#state !== 'open') this.#state = 'opening';
    this.#renewing = (async () => {
      const o = this.#opt;
      try {
        const refresh = this.#refresh;
        let token: Token | undefined;
        if (refresh !== undefined && reason !== 'start') {
          try {
            token = await this.#grant({ grant_type: 'refresh_token', refresh_token: refresh }, 'refreshToken');
          } catch (e) {
            // A refused refresh token (revoked, expired, GLPI restored): log in again. GLPI down: say so.
            if (!(e instanceof RemoteError) || e.kind !== 'login') throw e;
            this.#refresh = undefined;
            o.logger.info({ glpi_code: e.code }, 'GLPI refused the refresh token; logging in again');
          }
        }
        if (!token) {
          token = await this.#grant({ grant_type: 'password', username: o.username, password: o.password.reveal() }, 'passwordLogin');
          // A new login may be another user (glpi.username changed on reload): ask again who we are.
          this.#identity = undefined;
        }
        this.#token = token;
        this.#refresh = token.refresh;
        this.#state = 'open';
        this.#lastLoginError = undefined;
        o.metrics?.glpiSessions.inc({ reason: reason === 'start' ? 'start' : 'expired' });
        o.logger.info({ reason }, 'GLPI access token obtained');
        return token;
      } catch (e) {
        const refused = e instanceof RemoteError && e.kind === 'login';
        // A token renewed ahead of time is kept while it lasts, unless GLPI refused the login outright.
        if (refused || reason !== 'renew') this.#token = undefined;
        this.#state = refused ? 'login_failed' : this.#token ? 'open' : 'none';
        this.#lastLoginError = (e as Error).message;
        throw e;
      } finally {
        this.#renewing = undefined;
      }
    })();
    return this.#renewing;
  }

  async #grant(fields: Record<string, string>, operation: string): Promise<Token> {
    const o = this.#opt;
    const form = { ...fields, client_id: o.clientId.reveal(), client_secret: o.clientSecret.reveal(), scope: 'api' };
    const { body } = await this.#send(operation, 'POST', 'api.php/token', { form, action: 'token' });
    const parsed = tokenAnswer.safeParse(body);
    if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', 'GLPI token answer has no access_token', undefined, undefined, { mayHaveLanded: false });
    const lifetimeMs = (parsed.data.expires_in ?? 3600) * 1000;
    // Renew ahead of the expiry, but never sooner than half-way through the token's life.
    const ahead = Math.min(o.renewBeforeMs ?? 120_000, lifetimeMs / 2);
    const now = this.#now();
    return { access: parsed.data.access_token, refresh: parsed.data.refresh_token, renewAt: now + lifetimeMs - ahead, expiresAt: now + lifetimeMs };
  }

  /**
   * One API call with the shared token. An answer saying the token is no good gets a new token (single-flight:
   * a call that finds another one already renewed it uses that) and the request once more; a fresh token
   * refused as "not authenticated" means the web server strips the Authorization header.
   */
  async #call(operation: string, method: Method, path: string, o: { params?: Record<string, unknown>; data?: unknown; action: Action }): Promise<unknown> {
    const used = await this.#accessToken();
    try {
      return (await this.#raw(operation, method, `api.php/v2/${path}`, { ...o, token: used })).body;
    } catch (e) {
      if (!(e instanceof RemoteError) || e.kind !== 'session') throw e;
      if (this.#token?.access === used) this.#token = undefined;
      this.#opt.logger.info({ operation, glpi_code: e.code }, 'GLPI access token refused; getting a new one');
      const fresh = this.#token?.access ?? (await this.#renew('expired')).access;
      try {
        return (await this.#raw(operation, method, `api.php/v2/${path}`, { ...o, token: fresh })).body;
      } catch (again) {
        if (again instanceof RemoteError && again.kind === 'session' && again.code === 'ERROR_UNAUTHENTICATED') {
          const stripped = strippedBearer(again);
          this.#state = 'login_failed';
          this.#lastLoginError = stripped.message;
          throw stripped;
        }
        throw again;
      }
    }
  }

  async open(): Promise<void> {
    await this.#accessToken();
  }

  /** OAuth has no logout here: the token is forgotten (GLPI expires its row); sockets are freed. */
  async close(): Promise<void> {
    this.#token = undefined;
    this.#refresh = undefined;
    this.#state = 'none';
    this.#agents.destroy();
  }

  /** Who the bridge is (GET /session), asked once per login. */
  identity(): Promise<GlpiV2Identity> {
    this.#identity ??= (async () => {
      const parsed = sessionAnswer.safeParse(await this.#call('getSession', 'GET', 'session', { action: 'read' }));
      if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', 'GLPI session answer has no user_id', undefined, undefined, { mayHaveLanded: false });
      return { id: parsed.data.user_id, name: parsed.data.name };
    })().catch((e: unknown) => {
      this.#identity = undefined;
      throw e;
    });
    return this.#identity;
  }

  /**
   * The high-level API does not tell GLPI's version; it exists from GLPI 11.0 on, so a GLPI that gives
   * this client a token is at least 11 (and stores text as typed, with the ticket's external_id).
   */
  async glpiMajor(): Promise<number | undefined> {
    await this.#accessToken();
    return 11;
  }

  /**
   * Items by name through the high-level API's searches: `GET /Dropdowns/ITILCategory|RequestType` [DROP]
   * and `/Administration/Group|Entity|User` with an RSQL filter on `name` (`username` for a user's login,
   * `realname` for a full name), then compared here exactly, case-insensitively, as typed (GLPI 11 stores
   * text as typed). GLPI ignores a filter on a property it does not know and then lists everything: the
   * comparison here is what decides, never the filter alone. Tree dropdowns are asked by their last
   * level's name and kept when their `completename` is the one wanted (or, without " > ", their name).
   */
  async findByName(itemtype: 'ITILCategory' | 'Entity' | 'Group' | 'RequestType' | 'User', name: string): Promise<number[]> {
    const controller = itemtype === 'ITILCategory' || itemtype === 'RequestType' ? 'Dropdowns' : 'Administration';
    const wanted = name.trim().replace(/\s+/g, ' ').toLowerCase();
    const norm = (v: unknown) => (typeof v === 'string' ? v.trim().replace(/\s+/g, ' ').toLowerCase() : undefined);
    const list = async (property: string, value: string): Promise<Record<string, unknown>[]> => {
      // RSQL quotes: a value holding both kinds cannot be written; it matches nothing then.
      const quote = !value.includes('"') ? '"' : !value.includes("'") ? "'" : undefined;
      if (quote === undefined) return [];
      const body = await this.#call(`find${itemtype}`, 'GET', `${controller}/${itemtype}`, { params: { filter: `${property}==${quote}${value}${quote}`, start: 0, limit: 100 }, action: 'read' });
      if (!Array.isArray(body)) throw new RemoteError('retryable', 'BAD_ANSWER', `GLPI ${itemtype} list not understood`, undefined, undefined, { mayHaveLanded: false });
      return body.filter((r): r is Record<string, unknown> => r !== null && typeof r === 'object');
    };
    const ids = (rows: Record<string, unknown>[], test: (r: Record<string, unknown>) => boolean) => [...new Set(rows.filter((r) => typeof r.id === 'number' && test(r)).map((r) => r.id as number))];
    if (itemtype === 'ITILCategory' || itemtype === 'Group' || itemtype === 'Entity') {
      const levels = name.trim().split(/\s+>\s+/).filter((l) => l !== '');
      const rows = await list('name', levels[levels.length - 1] ?? name.trim());
      const full = ids(rows, (r) => norm(r.completename) === wanted);
      if (full.length > 0 || levels.length > 1) return full;
      return ids(rows, (r) => norm(r.name) === wanted);
    }
    if (itemtype === 'RequestType') return ids(await list('name', name.trim()), (r) => norm(r.name) === wanted);
    const byLogin = ids(await list('username', name.trim()), (r) => norm(r.username) === wanted);
    const words = name.trim().split(/\s+/);
    if (byLogin.length > 0 || words.length < 2) return byLogin;
    const rows = [...(await list('realname', words[words.length - 1] ?? '')), ...(await list('realname', words[0] ?? ''))];
    return ids(rows, (r) => {
      const first = norm(r.firstname) ?? '';
      const last = norm(r.realname) ?? '';
      return `${first} ${last}` === wanted || `${last} ${first}` === wanted;
    });
  }

  /**
   * Not on the high-level API: GLPI_LOOKUP_UNSUPPORTED, which the bridge logs once and counts, then creates
   * the ticket without an asset (never a dead letter). Finding an asset by name would work
   * (`GET /Assets/{itemtype}?filter=name==…`, AssetController), but nothing could be done with it: no 2.x
   * route or Ticket property links an asset to a ticket (Item_Ticket), and an asset's IP addresses are only
   * searchable from API 2.3 (`/Network/IPAddress`, NetworkController @ 2512e7162d91e5f3b4605c7e4af04738c208f373),
   * which no GLPI 11.0 release serves. docs/glpi-api-v2.md says where each fact comes from.
   */
  async findAssets(itemtypes: readonly string[], by: 'name' | 'ip', value: string): Promise<{ itemtype: string; id: number }[]> {
    throw new RemoteError(
      'permanent',
      'GLPI_LOOKUP_UNSUPPORTED',
      `the host's asset (${itemtypes.join(', ')} by ${by} "${value}") cannot be linked to a ticket with glpi.api: v2: GLPI's high-level API has no route for a ticket's items (Item_Ticket); use glpi.api: v1 for assets on tickets`,
      undefined,
      undefined,
      { mayHaveLanded: false },
    );
  }

  async itemStatus(itemtype: string, id: number): Promise<'exists' | 'missing' | 'forbidden'> {
    const controller = itemtype === 'Group' || itemtype === 'Entity' ? 'Administration' : 'Dropdowns';
    try {
      await this.#call(`get${itemtype}`, 'GET', `${controller}/${itemtype}/${id}`, { action: 'read' });
      return 'exists';
    } catch (e) {
      if (e instanceof RemoteError && e.status === 404) return 'missing';
      if (e instanceof RemoteError && e.status === 403) return 'forbidden';
      throw e;
    }
  }

  // ---- tickets ------------------------------------------------------------------------------------

  async #getTicket(ticketId: number): Promise<Ticket | undefined> {
    try {
      const parsed = ticketAnswer.safeParse(await this.#call('getTicket', 'GET', `Assistance/Ticket/${ticketId}`, { action: 'read' }));
      if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', 'GLPI ticket answer not understood', undefined, undefined, { mayHaveLanded: false });
      return parsed.data;
    } catch (e) {
      if (e instanceof RemoteError && e.status === 404) return undefined;
      throw e;
    }
  }

  async ticketStatus(ticketId: number): Promise<number | undefined> {
    return (await this.#getTicket(ticketId))?.status.id;
  }

  /**
   * The ticket this bridge created with this marker, if any. GLPI ignores a filter on a property it does
   * not know (the search then returns every ticket), so only rows whose `external_id` is exactly the marker
   * count; a ticket carrying it whose requesters do not include the bridge's user is never adopted.
   */
  async findTicketByMarker(marker: string): Promise<number | undefined> {
    if (/["'\\]/.test(marker)) throw new Error(`marker ${marker} cannot be quoted in an RSQL filter`);
    // Not in the trash, as the legacy search (is_deleted=0 by default): a ticket a technician deleted is not adopted.
    const body = await this.#call('searchTicket', 'GET', 'Assistance/Ticket', { params: { filter: `external_id=="${marker}";is_deleted==false`, start: 0, limit: 50 }, action: 'read' });
    const parsed = ticketList.safeParse(body);
    if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', `GLPI search answer not understood: ${parsed.error.issues[0]?.message ?? ''}`, undefined, undefined, { mayHaveLanded: false });
    for (const row of parsed.data) {
      if (row.external_id !== marker || row.is_deleted === true) continue;
      const verdict = await this.#createdByMe(row);
      if (verdict === 'mine') return row.id;
      if (verdict === 'unknown') {
        this.#opt.logger.warn({ marker, ticket_id: row.id }, 'GLPI did not say who asked for the ticket carrying this marker: not adopted, a new ticket is created');
        continue;
      }
      this.#opt.logger.warn(
        { code: 'GLPI_MARKER_SPOOFED', marker, ticket_id: row.id, requesters: verdict.requesters },
        'a GLPI ticket carries this incident\'s marker but the bridge\'s GLPI user is not its requester: not adopted, a new ticket is created',
      );
    }
    return undefined;
  }

  /**
   * The high-level API has no writer (users_id_recipient) in the Ticket schema: the bridge's user is the
   * requester of the tickets it creates (GLPI makes the logged-in user the requester of a ticket created
   * without one). The team lists members with their form URL (`…/front/user.form.php?id=N`).
   */
  async #createdByMe(row: Ticket): Promise<'mine' | 'unknown' | { requesters: string[] }> {
    return this.#requestedByMe('Ticket', row.id, row.team);
  }

  async createTicket(t: TicketDraft): Promise<number> {
    const body: Record<string, unknown> = {
      name: t.name,
      content: t.content,
      urgency: t.urgency,
      impact: t.impact,
      type: t.type,
      entity: { id: t.entities_id },
      external_id: t.marker,
    };
    if (t.itilcategories_id > 0) body.category = { id: t.itilcategories_id };
    if (t.requesttypes_id > 0) body.request_type = { id: t.requesttypes_id };
    if (t.asset) {
      // An assets.map entry with an id: no route links it (findAssets() says why); logged once, counted each time.
      if (!this.#assetWarned) {
        this.#assetWarned = true;
        this.#opt.logger.warn({ code: 'GLPI_LOOKUP_UNSUPPORTED', marker: t.marker, asset: t.asset }, 'glpi.api: v2 cannot link the host\'s asset to a ticket (GLPI\'s high-level API has no Item_Ticket route): tickets are created without it (logged once)');
      }
      this.#opt.metrics?.glpiLookups.inc({ itemtype: 'asset', result: 'unsupported' });
    }
    const parsed = created.safeParse(await this.#call('createTicket', 'POST', 'Assistance/Ticket', { data: body, action: 'create' }));
    if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', 'GLPI create answer has no ticket id');
    const id = parsed.data.id;
    // From here on the ticket exists: nothing below throws (a retry would look for the marker, and a
    // ticket whose external_id did not stick would be created twice).
    await this.#checkStored(id, t);
    if (t.groups_id_assign > 0) await this.#assignGroup(id, t.groups_id_assign);
    await this.#addUsers(id, t.users);
    return id;
  }

  /**
   * The rules' users (assign, observer, requester) as team members, added after the create like the group:
   * the Ticket schema has no actor property (an `_users_id_assign` in the body would be dropped). A member
   * is added, never replacing one, so the bridge's user stays a requester (what the marker search checks).
   * A refusal keeps the ticket (a retry must not create a second one) and says so in the log.
   */
  async #addUsers(ticketId: number, users: TicketDraft['users']): Promise<void> {
    for (const role of ['assign', 'observer', 'requester'] as const) {
      for (const userId of new Set(users?.[role] ?? [])) {
        try {
          await this.#call('addTeamUser', 'POST', `Assistance/Ticket/${ticketId}/TeamMember`, { data: { type: 'User', id: userId, role: ACTOR_ROLE[role] }, action: 'create' });
        } catch (e) {
          this.#opt.logger.error({ ticket_id: ticketId, user_id: userId, role, err: (e as Error).message }, 'the GLPI ticket was created but GLPI refused to add this user to its team; add the user in GLPI');
        }
      }
    }
  }

  /** GLPI drops properties it does not know without a word: read the ticket back and say what did not stick. */
  async #checkStored(id: number, t: TicketDraft): Promise<void> {
    const log = this.#opt.logger;
    try {
      let stored = await this.#getTicket(id);
      if (stored && stored.external_id !== t.marker) {
        stored = ticketAnswer.parse(await this.#call('updateTicket', 'PATCH', `Assistance/Ticket/${id}`, { data: { external_id: t.marker }, action: 'update' }));
      }
      if (!stored) return;
      if (stored.external_id !== t.marker) {
        log.error({ code: 'GLPI_MARKER_NOT_STORED', ticket_id: id, marker: t.marker }, 'GLPI did not store the ticket\'s external_id: a retry after a lost answer could not find this ticket');
      }
      const wanted: [string, unknown, unknown][] = [
        ['urgency', t.urgency, stored.urgency],
        ['impact', t.impact, stored.impact],
        ['type', t.type, stored.type],
        ['entity', t.entities_id, stored.entity?.id],
      ];
      if (t.itilcategories_id > 0) wanted.push(['category', t.itilcategories_id, stored.category?.id]);
      if (t.requesttypes_id > 0) wanted.push(['request_type', t.requesttypes_id, stored.request_type?.id]);
      const differ = wanted.filter(([, want, got]) => want !== got).map(([field, want, got]) => ({ field, sent: want, stored: got ?? null }));
      if (differ.length > 0) log.warn({ code: 'GLPI_FIELD_NOT_STORED', ticket_id: id, fields: differ }, 'GLPI stored the new ticket with other values than sent (a rule, a template, or a property it dropped)');
    } catch (e) {
      log.warn({ ticket_id: id, err: (e as Error).message }, 'could not read the new GLPI ticket back to check what was stored');
    }
  }

  /** The assigned group is a team member, added after the create (the Ticket schema has no writable group). */
  async #assignGroup(id: number, groupId: number): Promise<void> {
    try {
      await this.#call('assignGroup', 'POST', `Assistance/Ticket/${id}/TeamMember`, { data: { type: 'Group', id: groupId, role: ROLE_ASSIGNED }, action: 'create' });
    } catch (e) {
      this.#opt.logger.error(
        { code: 'GLPI_GROUP_NOT_ASSIGNED', ticket_id: id, group_id: groupId, err: (e as Error).message },
        'the GLPI ticket was created but its group could not be assigned; assign it in GLPI',
      );
    }
  }

  /**
   * A follow-up. The high-level API drops `_no_reopen` and `add_reopen`, so what they did is done with the
   * ticket's status: a reopen sets it back to assigned/new (before the follow-up on a solved or pending
   * ticket, so that a retry finding the follow-up landed leaves no solved ticket behind; after it on a
   * closed one, so that GLPI's rule on who may reopen a closed ticket still decides), and with
   * pending_followups: keep a pending ticket is set back to pending after the follow-up reopened it.
   */
  async addFollowup(ticketId: number, content: string, options: { isPrivate: boolean; reopen?: boolean }): Promise<number> {
    const keep = (this.#opt.pendingFollowups ?? 'keep') === 'keep';
    const before = options.reopen || keep ? await this.#getTicket(ticketId) : undefined;
    const status = before?.status.id;
    const reopenTo = () => ((before?.team ?? []).some((m) => m.role === 'assigned' || m.role === 2 || m.role === '2') ? TICKET_STATUS.assigned : TICKET_STATUS.incoming);
    const reopenable = options.reopen === true && (status === TICKET_STATUS.pending || status === TICKET_STATUS.solved);
    if (reopenable) await this.#setStatus(ticketId, reopenTo());
    const parsed = created.safeParse(
      await this.#call(options.reopen ? 'reopenTicket' : 'addFollowup', 'POST', `Assistance/Ticket/${ticketId}/Timeline/Followup`, { data: { content, is_private: options.isPrivate }, action: 'create' }),
    );
    if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', 'GLPI follow-up answer has no id');
    // The follow-up landed: nothing below throws, or a retry that believed it had not would add it twice.
    if (options.reopen === true && status === TICKET_STATUS.closed) await this.#setStatusAfter(ticketId, reopenTo(), 'reopen the closed ticket');
    else if (!options.reopen && keep && status === TICKET_STATUS.pending) await this.#setStatusAfter(ticketId, TICKET_STATUS.pending, 'set the ticket back to pending (pending_followups: keep)');
    return parsed.data.id;
  }

  async #setStatusAfter(ticketId: number, status: number, what: string): Promise<void> {
    try {
      await this.#setStatus(ticketId, status);
    } catch (e) {
      this.#opt.logger.error({ code: 'GLPI_STATUS_NOT_SET', ticket_id: ticketId, status, err: (e as Error).message }, `the follow-up was added but GLPI did not let the bridge ${what}`);
    }
  }

  async #setStatus(ticketId: number, status: number): Promise<void> {
    await this.#call('updateTicket', 'PATCH', `Assistance/Ticket/${ticketId}`, { data: { status: { id: status } }, action: 'update' });
  }

  /** Follow-up contents of a ticket, as typed (GLPI 11 stores text unencoded). */
  async followupContents(ticketId: number): Promise<string[]> {
    const parsed = timeline.safeParse(await this.#call('listFollowups', 'GET', `Assistance/Ticket/${ticketId}/Timeline/Followup`, { action: 'read' }));
    if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', 'GLPI follow-up list not understood', undefined, undefined, { mayHaveLanded: false });
    return parsed.data.map((f) => f.item.content ?? '');
  }

  /**
   * Add a solution. A refusal (500 "Failed to create", or 403 on a closed ticket) or an unknown outcome:
   * the ticket's status says whether it is solved or closed already, which counts as done. The Solution
   * schema has no solution type: `solutionTypeId` cannot be sent with this API.
   */
  async addSolution(ticketId: number, content: string, solutionTypeId: number): Promise<'added' | 'already_solved' | 'already_closed'> {
    if (solutionTypeId > 0 && !this.#solutionTypeWarned) {
      this.#solutionTypeWarned = true;
      this.#opt.logger.warn({ solution_type_id: solutionTypeId }, 'GLPI\'s high-level API cannot set a solution type: solutions are added without one');
    }
    try {
      await this.#call('addSolution', 'POST', `Assistance/Ticket/${ticketId}/Timeline/Solution`, { data: { content }, action: 'create' });
      return 'added';
    } catch (e) {
      return solvedAlready(e, () => this.ticketStatus(ticketId));
    }
  }

  /**
   * Update with the legacy field names the dispatcher uses, mapped to the Ticket schema. A name this
   * client does not know is an error here rather than a property GLPI would drop without a word; what GLPI
   * stored is compared with what was sent.
   */
  async updateTicket(ticketId: number, fields: Readonly<Record<string, unknown>>): Promise<void> {
    const body: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(fields)) {
      if (k === 'urgency' || k === 'impact' || k === 'type' || k === 'name' || k === 'content') body[k] = v;
      else if (k === 'status') body.status = { id: v };
      else if (k === 'itilcategories_id') body.category = { id: v };
      else if (k === 'requesttypes_id') body.request_type = { id: v };
      else if (k === 'externalid') body.external_id = v;
      else throw new Error(`updateTicket: ${k} has no counterpart in GLPI's high-level API`);
    }
    const parsed = ticketAnswer.safeParse(await this.#call('updateTicket', 'PATCH', `Assistance/Ticket/${ticketId}`, { data: body, action: 'update' }));
    if (!parsed.success) return;
    const s = parsed.data;
    const got: Record<string, unknown> = { urgency: s.urgency, impact: s.impact, type: s.type, name: s.name, status: s.status.id, itilcategories_id: s.category?.id, requesttypes_id: s.request_type?.id, externalid: s.external_id };
    const differ = Object.entries(fields).filter(([k, v]) => k !== 'content' && got[k] !== v).map(([field, sent]) => ({ field, sent, stored: got[field] ?? null }));
    if (differ.length > 0) this.#opt.logger.warn({ code: 'GLPI_FIELD_NOT_STORED', ticket_id: ticketId, fields: differ }, 'GLPI stored other values than sent in the ticket update');
  }

  // ---- Reading the bridge's tickets back (issue 14 item 5; core/ports.ts TicketWatch) ---------------------

  /**
   * Tickets the bridge wrote modified after `since` (GLPI's "YYYY-MM-DD HH:MM:SS"), oldest first; without
   * `since`, the 200 most recent. One search: `filter=external_id=like="[zbx:*";date_mod=gt="…"` (the Ticket
   * schema has no writer and the team cannot be filtered on — a mapped property, RSQL Parser — so the
   * bridge's markers select its tickets and the rows' team says whose they are) with
   * `sort=date_mod:asc|desc` (Search::getSearchCriteria() @ 0042059c82075d3223c145cb3609a83019fc0cd2:
   * `property:direction`, comma-separated). GLPI answers dates in RFC 3339 written from the column in PHP's
   * timezone (Doc\Schema::castProperties() @ 6e2cc4c861a8e30f920cf124d3efd6a1f9e1f344: date(DATE_RFC3339,
   * strtotime(...))), so the column's own text is its first 19 characters with a space: what the cursor
   * keeps and what the `=gt=` compares the column with (the value goes to SQL as sent, Parser).
   */
  async ticketsModifiedSince(since: string | undefined): Promise<ModifiedTicket[]> {
    if (since !== undefined && !/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/.test(since)) throw new Error(`ticketsModifiedSince: ${since} is not GLPI's YYYY-MM-DD HH:MM:SS`);
    const filter = `external_id=like="[zbx:*";is_deleted==false${since === undefined ? '' : `;date_mod=gt="${since}"`}`;
    const params = { filter, sort: since === undefined ? 'date_mod:desc' : 'date_mod:asc', start: 0, limit: since === undefined ? 200 : 1000 };
    // Rows one by one: a row that cannot be used is left out and said (reportRefusedRows), never the whole sweep.
    const parsed = z.array(z.unknown()).safeParse(await this.#call('searchModifiedTickets', 'GET', 'Assistance/Ticket', { params, action: 'read' }));
    if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', `GLPI search answer not understood: ${parsed.error.issues[0]?.message ?? ''}`, undefined, undefined, { mayHaveLanded: false });
    const me = await this.identity();
    const out: ModifiedTicket[] = [];
    const refused: RefusedRow[] = [];
    for (const raw of parsed.data) {
      const one = ticketAnswer.safeParse(raw);
      if (!one.success) {
        refused.push(refusedTicketRow(raw, one.error.issues[0]?.path ?? []));
        continue;
      }
      const row = one.data;
      if (!(row.external_id ?? '').startsWith('[zbx:') || row.is_deleted === true) continue;
      const dateMod = glpiDate(row.date_mod);
      if (dateMod === undefined) {
        refused.push({ ticketId: row.id, field: 'date_mod', got: row.date_mod });
        continue;
      }
      // Rows carry their team: no request per ticket. A row without one is left out (never a guess), said.
      if (row.team === undefined) {
        refused.push({ ticketId: row.id, field: 'team', got: undefined });
        continue;
      }
      if (!row.team.some((m) => isRequester(m) && memberUserId(m) === me.id)) continue;
      if (since !== undefined && dateMod <= since) continue;
      out.push({ id: row.id, status: row.status.id, dateMod });
    }
    reportRefusedRows(this.#opt.logger, this.#opt.metrics, 'searchModifiedTickets', refused, 'GLPI read-back of the bridge\'s modified tickets; a ticket left out is not read back this sweep');
    return out.sort((a, b) => (a.dateMod < b.dateMod ? -1 : a.dateMod > b.dateMod ? 1 : a.id - b.id));
  }

  /**
   * Public follow-ups someone else than the bridge's user wrote, oldest first, as typed. Who wrote one is the
   * Followup schema's `user` (ITILController @ e934661da8fba4cca18135bde029560f38ac7f83); a GLPI whose
   * schema lacks it (the copy @ 03cf5b9a) cannot tell them apart: nothing is mirrored, said once.
   */
  async othersPublicFollowups(ticketId: number): Promise<{ id: number; content: string }[]> {
    const parsed = followupItems.safeParse(await this.#call('listFollowups', 'GET', `Assistance/Ticket/${ticketId}/Timeline/Followup`, { action: 'read' }));
    if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', 'GLPI follow-up list not understood', undefined, undefined, { mayHaveLanded: false });
    const items = parsed.data.map((f) => f.item);
    if (items.some((f) => f.user === undefined)) {
      if (!this.#authorWarned) {
        this.#authorWarned = true;
        this.#opt.logger.warn({ ticket_id: ticketId }, 'this GLPI\'s high-level API does not say who wrote a follow-up (no `user` in its Followup schema): technicians\' follow-ups are not mirrored to Zabbix with glpi.api: v2 (logged once)');
      }
      return [];
    }
    const me = await this.identity();
    const author = (f: (typeof items)[number]) => (f.user !== null && f.user !== undefined && !Array.isArray(f.user) ? f.user.id : undefined);
    return items
      .filter((f) => f.is_private !== true && author(f) !== undefined && author(f) !== me.id)
      .sort((a, b) => a.id - b.id)
      .map((f) => ({ id: f.id, content: f.content ?? '' }));
  }

  // ---- Problems and ITIL links (issue 14 item 1; core/ports.ts ProblemDesk) -----------------------------
  //
  // ITILController serves Problems like Tickets (`/Assistance/{itemtype}` with itemtype Ticket|Change|Problem:
  // search, get, create, timeline, team) but has no route for the links between ITIL objects (Problem_Ticket,
  // Ticket_Ticket) and its schemas no property for them (glpi-project/glpi src/Glpi/Api/HL/Controller/
  // ITILController.php @ 03cf5b9a1637a5cc7bc4f139d1fa8181f82c7693 and @ e934661da8fba4cca18135bde029560f38ac7f83;
  // glpi-project/glpi#23241 asks for one on GLPI 11.0.5 / API 2.2.0). So a recurring incident's Problem is
  // created, found again and told of each ticket, but a link is a follow-up naming the ticket (on the problem,
  // or private on the symptom's ticket) carrying a tag the bridge reads back instead of the link list; said
  // once in the log (GLPI_PROBLEMS_UNSUPPORTED) and counted (zgb_glpi_problems_total{operation="unsupported"}).

  /**
   * Problems the bridge created whose name carries the marker, lowest id first. The RSQL filter narrows the
   * search (`=like=`: `*` is SQL's `%`, RSQL Parser @ 03804c5eba82b64c531b7953bcffe3645db520ee) but GLPI ignores
   * a filter it does not understand, so the name is checked here; a problem is the bridge's when its user is a
   * requester (the Problem schema has no writer either: createProblem() makes sure of it).
   */
  async findProblemsByMarker(marker: string): Promise<ProblemRef[]> {
    if (/["'\\*%]/.test(marker)) throw new Error(`marker ${marker} cannot be quoted in an RSQL filter`);
    const body = await this.#call('searchProblem', 'GET', 'Assistance/Problem', { params: { filter: `name=like="*${marker}*";is_deleted==false`, start: 0, limit: 50 }, action: 'read' });
    const parsed = problemList.safeParse(body);
    if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', `GLPI problem search answer not understood: ${parsed.error.issues[0]?.message ?? ''}`, undefined, undefined, { mayHaveLanded: false });
    const out: ProblemRef[] = [];
    for (const row of parsed.data) {
      if (!(row.name ?? '').includes(marker) || row.is_deleted === true) continue;
      const verdict = await this.#requestedByMe('Problem', row.id, row.team);
      if (verdict === 'mine') {
        out.push({ id: row.id, status: row.status.id });
        continue;
      }
      this.#opt.logger.warn(
        { code: 'GLPI_MARKER_SPOOFED', marker, problem_id: row.id, requesters: verdict === 'unknown' ? null : verdict.requesters },
        'a GLPI problem carries this incident\'s marker but the bridge\'s GLPI user is not its requester: not adopted',
      );
    }
    return out.sort((a, b) => a.id - b.id);
  }

  /**
   * A Problem (the ITIL base schema: name, content, urgency, impact, category, entity). The bridge's user is
   * then made a requester unless GLPI did it already, so that findProblemsByMarker() adopts it after a crash.
   */
  async createProblem(p: ProblemDraft): Promise<number> {
    const body: Record<string, unknown> = { name: p.name, content: p.content, urgency: p.urgency, impact: p.impact, entity: { id: p.entities_id } };
    if (p.itilcategories_id > 0) body.category = { id: p.itilcategories_id };
    const parsed = created.safeParse(await this.#call('createProblem', 'POST', 'Assistance/Problem', { data: body, action: 'create' }));
    if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', 'GLPI create answer has no problem id');
    const id = parsed.data.id;
    // The problem exists: nothing below throws.
    try {
      const team = teamList.safeParse(await this.#call('getProblemTeam', 'GET', `Assistance/Problem/${id}/TeamMember`, { action: 'read' }));
      const me = await this.identity();
      if (!team.success || !team.data.some((m) => isRequester(m) && memberUserId(m) === me.id)) {
        await this.#call('addProblemRequester', 'POST', `Assistance/Problem/${id}/TeamMember`, { data: { type: 'User', id: me.id, role: ACTOR_ROLE.requester }, action: 'create' });
      }
    } catch (e) {
      this.#opt.logger.error({ problem_id: id, err: (e as Error).message }, 'the GLPI problem was created but the bridge could not make its user the requester: after a crash it would not recognise this problem');
    }
    return id;
  }

  /** Tickets the problem names in the bridge's link follow-ups (no Problem_Ticket route: see above). */
  async problemTickets(problemId: number): Promise<number[]> {
    return linkTags(await this.problemFollowupContents(problemId));
  }

  /** No Problem_Ticket route: a follow-up on the problem names the ticket, for a technician to link it. */
  async linkProblemTicket(problemId: number, ticketId: number): Promise<void> {
    this.#linksUnsupported('Problem_Ticket');
    await this.addProblemFollowup(
      problemId,
      `Ticket #${ticketId}: <a href="${this.ticketUrl(ticketId)}">${this.ticketUrl(ticketId)}</a><br>\nGLPI's high-level API cannot link a ticket to a problem: link ticket #${ticketId} in this problem's Tickets tab.<br>\n<small>${linkTag(ticketId)}</small>`,
    );
  }

  async addProblemFollowup(problemId: number, content: string): Promise<void> {
    const parsed = created.safeParse(await this.#call('addProblemFollowup', 'POST', `Assistance/Problem/${problemId}/Timeline/Followup`, { data: { content, is_private: false }, action: 'create' }));
    if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', 'GLPI follow-up answer has no id');
  }

  async problemFollowupContents(problemId: number): Promise<string[]> {
    const parsed = timeline.safeParse(await this.#call('listProblemFollowups', 'GET', `Assistance/Problem/${problemId}/Timeline/Followup`, { action: 'read' }));
    if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', 'GLPI follow-up list not understood', undefined, undefined, { mayHaveLanded: false });
    return parsed.data.map((f) => f.item.content ?? '');
  }

  /** Tickets this one names in the bridge's link follow-ups, less those a later unlink follow-up names (no Ticket_Ticket route: see above). */
  async linkedTickets(ticketId: number): Promise<number[]> {
    const parsed = timeline.safeParse(await this.#call('listFollowups', 'GET', `Assistance/Ticket/${ticketId}/Timeline/Followup`, { action: 'read' }));
    if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', 'GLPI follow-up list not understood', undefined, undefined, { mayHaveLanded: false });
    const linked = new Set<number>();
    for (const f of [...parsed.data].sort((a, b) => a.item.id - b.item.id)) {
      for (const m of (f.item.content ?? '').matchAll(/\[zbx-(link|unlink):ticket:(\d+)\]/g)) {
        if (m[1] === 'link') linked.add(Number(m[2]));
        else linked.delete(Number(m[2]));
      }
    }
    return [...linked];
  }

  /** No Ticket_Ticket route: a private follow-up says the link named before no longer holds; false when none was named. */
  async unlinkTickets(ticketId: number, otherId: number): Promise<boolean> {
    if (!(await this.linkedTickets(ticketId)).includes(otherId)) return false;
    this.#linksUnsupported('Ticket_Ticket');
    await this.addFollowup(
      ticketId,
      `No longer linked to ticket #${otherId}: <a href="${this.ticketUrl(otherId)}">${this.ticketUrl(otherId)}</a><br>\nIf you linked it in GLPI, remove the link.<br>\n<small>[zbx-unlink:ticket:${otherId}]</small>`,
      { isPrivate: true },
    );
    return true;
  }

  /** No Ticket_Ticket route: a private follow-up on the symptom's ticket names its cause's. */
  async linkTickets(ticketId: number, otherId: number): Promise<void> {
    this.#linksUnsupported('Ticket_Ticket');
    await this.addFollowup(
      ticketId,
      `Linked to ticket #${otherId}: <a href="${this.ticketUrl(otherId)}">${this.ticketUrl(otherId)}</a><br>\nGLPI's high-level API cannot link tickets: link ticket #${otherId} in this ticket's Linked tickets.<br>\n<small>${linkTag(otherId)}</small>`,
      { isPrivate: true },
    );
  }

  #linksUnsupported(kind: 'Problem_Ticket' | 'Ticket_Ticket'): void {
    this.#opt.metrics?.problems.inc({ operation: 'unsupported' });
    if (this.#linkWarned) return;
    this.#linkWarned = true;
    this.#opt.logger.warn(
      { code: 'GLPI_PROBLEMS_UNSUPPORTED', link: kind },
      'glpi.api: v2 cannot link tickets to problems or to each other (GLPI\'s high-level API has no Problem_Ticket or Ticket_Ticket route): a follow-up names the ticket to link instead (logged once)',
    );
  }

  /** Whether the bridge's user is a requester of this ticket or problem (its team, read when the row has none). */
  async #requestedByMe(itemtype: 'Ticket' | 'Problem', id: number, rowTeam: z.infer<typeof member>[] | undefined): Promise<'mine' | 'unknown' | { requesters: string[] }> {
    let team = rowTeam;
    if (team === undefined) {
      // GLPI refusing to show the team is "unknown"; GLPI down is an error (a retry decides, not a new item).
      const body = await this.#call('getTeam', 'GET', `Assistance/${itemtype}/${id}/TeamMember`, { action: 'read' }).catch((e: unknown) => {
        if (e instanceof RemoteError && e.kind === 'permanent') return undefined;
        throw e;
      });
      const parsed = teamList.safeParse(body);
      if (!parsed.success) return 'unknown';
      team = parsed.data;
    }
    const me = await this.identity();
    const requesters = team.filter(isRequester);
    if (requesters.some((m) => memberUserId(m) === me.id)) return 'mine';
    return { requesters: requesters.map((m) => m.name ?? String(memberUserId(m))) };
  }
}

/** getCleanTeam(): the role as text ("requester"), or as stored when GLPI could not name it. */
function isRequester(m: z.infer<typeof member>): boolean {
  return m.role === 'requester' || m.role === 1 || m.role === '1';
}

/** A member's user id, from its form URL (`…/front/user.form.php?id=N`); NaN for a group or supplier. */
function memberUserId(m: z.infer<typeof member>): number {
  return Number(/user\.form\.php\?(?:.*&)?id=(\d+)/.exec(m.href ?? '')?.[1]);
}

/** The tag a link follow-up carries (the bridge reads it back as the link). */
function linkTag(ticketId: number): string {
  return `[zbx-link:ticket:${ticketId}]`;
}

function linkTags(contents: readonly string[]): number[] {
  const ids = new Set<number>();
  for (const c of contents) for (const m of c.matchAll(/\[zbx-link:ticket:(\d+)\]/g)) ids.add(Number(m[1]));
  return [...ids];
}

/** What was wrong with a ticket row the Ticket schema refused: its id when readable, the first field refused and its value. */
function refusedTicketRow(raw: unknown, path: readonly PropertyKey[]): RefusedRow {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { field: 'row', got: raw };
  const cols = raw as Record<string, unknown>;
  const id = Number(cols.id);
  let got: unknown = raw;
  for (const key of path) got = typeof got === 'object' && got !== null ? (got as Record<PropertyKey, unknown>)[key] : undefined;
  return { ...(Number.isInteger(id) && id > 0 ? { ticketId: id } : {}), field: path.length > 0 ? path.map(String).join('.') : 'row', got };
}

/** GLPI's date column as text ("YYYY-MM-DD HH:MM:SS") from the RFC 3339 the high-level API writes (or that text itself). */
function glpiDate(v: string | null | undefined): string | undefined {
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})/.exec(v ?? '');
  return m ? `${m[1]} ${m[2]}` : undefined;
}
