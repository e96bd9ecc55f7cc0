import type { AxiosInstance, Method } from '../axios/index.js';
import * as z from 'zod';
import type { TicketDraft } from '../../core/decide.js';
import type { ModifiedTicket, ProblemDraft, ProblemRef } from '../../core/ports.js';
import type { Secret } from '../../config/secret.js';
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import { RemoteError } from '../../core/remote-error.js';
import { isRedirect, redirectMessage, type TlsSettings } from '../transport.js';
import { countRequest, GlpiAgents } from './agents.js';
import { fromResponse, solvedAlready, strippedAuthorization } from './outcome.js';
import { reportRefusedRows, type RefusedRow } from './refused-rows.js';
import type { GlpiConnection, SessionState } from './connection.js';

export interface GlpiClientOptions {
  /** …/apirest.php */
  readonly url: string;
  readonly appToken: Secret;
  readonly userToken: Secret;
  readonly username: string;
  readonly password: Secret;
  readonly timeoutMs: number;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  /**
   * Ticket `externalid` (GLPI 11): `on` sets it to the marker on create and
   * searches it too; `off` relies on the marker in the title; `auto` asks
   * GLPI its version once (getGlpiConfig) and uses it from 11 on.
   */
  readonly externalId?: 'auto' | 'on' | 'off';
  /**
   * A follow-up on a Pending ticket sets it back to Assigned (GLPI ≥ 10.0.4).
   * `keep` (default) sends `_no_reopen` so it stays pending; `resume` leaves
   * GLPI's behaviour.
   */
  readonly pendingFollowups?: 'keep' | 'resume';
  /**
   * Idle keep-alive connections are closed after this long (default 4 s),
   * below a typical web server's keep-alive timeout (Apache: 5 s), so the
   * client rarely sends on a connection the server has just closed.
   */
  readonly idleSocketTimeoutMs?: number;
  /** CA file and certificate checking for an https GLPI. */
  readonly tls?: TlsSettings;
  /**
   * glpi.user_token_in_query: when the web server in front of GLPI strips the
   * `Authorization` header (initSession answers ERROR_LOGIN_PARAMETERS_MISSING
   * although it was sent), log in with `initSession?user_token=…` instead
   * (GLPI's APIRest::parseIncomingParams() reads the query string first). Off
   * by default: the token then appears in the web server's access log.
   */
  readonly userTokenInQuery?: boolean;
}

/** Who the bridge is in GLPI (the session's user): tickets it created carry this in users_id_recipient. */
export interface GlpiIdentity {
  readonly id: number;
  /** Login name, as the search engine shows the writer column. */
  readonly name: string;
}

/** Search options of Ticket (GLPI's CommonITILObject / Ticket::rawSearchOptions). */
const SO = { name: 1, id: 2, status: 12, dateMod: 19, writer: 22, externalId: 87 } as const;

export type { SessionState } from './connection.js';

const identity = z.object({ glpiID: z.coerce.number().int().positive(), glpiname: z.string() });
const sessionAnswer = z.object({ session_token: z.string().min(1), session: identity.partial().optional() });
const fullSession = z.object({ session: identity });
const glpiConfig = z.object({ cfg_glpi: z.object({ version: z.string().optional() }).passthrough() });
const createAnswer = z.object({ id: z.number().int().positive() });
const searchAnswer = z.object({
  totalcount: z.number(),
  data: z.array(z.record(z.string(), z.unknown())).optional(),
});
const followupList = z.array(z.object({ id: z.number(), content: z.string().nullable().optional() }));
const ticketAnswer = z.object({ id: z.coerce.number(), status: z.coerce.number(), users_id_recipient: z.coerce.number().optional() });
/** A search answer whose rows are checked one by one (searchModifiedTickets). */
const searchRows = z.object({ totalcount: z.number(), data: z.array(z.unknown()).optional() });
/** GLPI's datetime column as the search gives it: the raw value (API::searchItems() takes each column's `name`), "YYYY-MM-DD HH:MM:SS". */
const GLPI_DATETIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;

/** A positive integer sent as a number or as its digits (the search engine gives columns as text or numbers). */
function positiveInt(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/**
 * One row of the read-back search (columns by search option: 2 id, 12 status, 19 date_mod), or what was wrong
 * with it. Values are the columns' raw values (glpi-project/glpi src/Api/API.php searchItems()
 * @ 04d12f8495ff8777e153b24e46077a086ab426ef: `$rvalues[$i]['name']`; a column with several values is a list).
 */
function modifiedRow(row: unknown): ModifiedTicket | RefusedRow {
  if (typeof row !== 'object' || row === null || Array.isArray(row)) return { field: 'row', got: row };
  const cols = row as Record<string, unknown>;
  const id = positiveInt(cols[String(SO.id)]);
  if (id === undefined) return { field: 'id', got: cols[String(SO.id)] };
  const status = positiveInt(cols[String(SO.status)]);
  if (status === undefined) return { ticketId: id, field: 'status', got: cols[String(SO.status)] };
  const dateMod = cols[String(SO.dateMod)];
  if (typeof dateMod !== 'string' || !GLPI_DATETIME.test(dateMod)) return { ticketId: id, field: 'date_mod', got: dateMod };
  return { id, status, dateMod };
}

/** GLPI 10 HTML-encodes stored strings (`&#60;`, `&amp;` …) in GET and search output: compare decoded text. */
export function decodeEntities(text: string): string {
  const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, ref: string) => {
    if (ref[0] === '#') {
      const cp = ref[1] === 'x' || ref[1] === 'X' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      return Number.isFinite(cp) && cp >= 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : whole;
    }
    return named[ref.toLowerCase()] ?? whole;
  });
}

function parseBody(raw: unknown): unknown {
  if (typeof raw !== 'string') return raw;
  if (raw === '') return '';
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/**
 * GLPI legacy REST API (apirest.php) client: one long-lived session shared
 * by all workers, re-opened once (single-flight) when GLPI says it expired.
 * Every other failure is classified (outcome.ts) and thrown: retrying is the
 * dispatcher's job, because only it can make a retried POST idempotent
 * (look for the ticket marker or follow-up tag before sending again).
 * The one retry made here: a read or an update sent on a keep-alive
 * connection the server had closed while it sat idle is sent again at once
 * on a fresh connection (a POST is left to the dispatcher, which checks
 * first whether it landed).
 */
export class GlpiClient implements GlpiConnection {
  readonly #http: AxiosInstance;
  readonly #agents: GlpiAgents;
  readonly #opt: GlpiClientOptions;
  #session: string | undefined;
  #opening: Promise<string> | undefined;
  #state: SessionState = 'none';
  #lastLoginError: string | undefined;
  /** The session's user, when GLPI told (initSession with the full session, or getFullSession); reset with each new session. */
  #identity: GlpiIdentity | undefined;
  /** GLPI's major version (getGlpiConfig), asked once when needed; undefined when GLPI did not say. */
  #major: Promise<number | undefined> | undefined;
  /** The web server strips `Authorization`: initSession sends the user token in the query (opted in). */
  #tokenInQuery = false;

  constructor(opt: GlpiClientOptions) {
    this.#opt = opt;
    this.#agents = new GlpiAgents(opt.tls, opt.idleSocketTimeoutMs);
    this.#http = this.#agents.client(opt.url.replace(/\/+$/, '') + '/', opt.timeoutMs, { 'Content-Type': 'application/json', Accept: 'application/json' });
  }

  get sessionState(): SessionState {
    return this.#state;
  }

  get lastLoginError(): string | undefined {
    return this.#lastLoginError;
  }

  /** Whether logins go with `user_token` in the query string (the web server strips `Authorization`; opted in). */
  get userTokenInQuery(): boolean {
    return this.#tokenInQuery;
  }

  /** Link to a ticket in the GLPI web interface. */
  ticketUrl(id: number): string {
    const base = this.#opt.url.replace(/\/+$/, '').replace(/\/apirest\.php$/, '');
    return `${base.replace(/\/api\.php\/v1$/, '')}/front/ticket.form.php?id=${id}`;
  }

  #appHeaders(): Record<string, string> {
    return this.#opt.appToken.empty ? {} : { 'App-Token': this.#opt.appToken.reveal() };
  }

  async #raw(operation: string, method: Method, path: string, options: { params?: Record<string, unknown>; data?: unknown; headers?: Record<string, string> } = {}): Promise<{ status: number; body: unknown }> {
    try {
      return await this.#send(operation, method, path, options);
    } catch (e) {
      // A read or an update is safe to send again; a POST goes back to the dispatcher (it may have landed).
      if (!(e instanceof RemoteError) || !e.staleConnection || method === 'POST') throw e;
      return this.#send(operation, method, path, options);
    }
  }

  async #send(operation: string, method: Method, path: string, options: { params?: Record<string, unknown>; data?: unknown; headers?: Record<string, string> }): Promise<{ status: number; body: unknown }> {
    const started = process.hrtime.bigint();
    let status = 'error';
    try {
      const res = await this.#http.request({ method, url: path, params: options.params, data: options.data, headers: { ...this.#appHeaders(), ...options.headers } });
      status = String(res.status);
      const body = parseBody(res.data);
      if (res.status >= 200 && res.status < 300) return { status: res.status, body };
      // A misconfigured URL (http → https, a moved GLPI): for the operator to fix, like bad credentials; jobs wait.
      if (isRedirect(res.status)) throw new RemoteError('login', 'GLPI_REDIRECT', redirectMessage('GLPI', res.status, res.headers.location), res.status, undefined, { mayHaveLanded: false });
      throw fromResponse(res.status, body, typeof res.headers['retry-after'] === 'string' ? res.headers['retry-after'] : undefined);
    } catch (e) {
      if (e instanceof RemoteError) throw e;
      const unanswered = this.#agents.unanswered(e);
      status = unanswered.status;
      throw unanswered.failure;
    } finally {
      countRequest(this.#opt.metrics, operation, status, started);
    }
  }

  /** initSession; single-flight: concurrent callers share one login. The full session tells who the bridge is. */
  async #openSession(reason: 'start' | 'expired'): Promise<string> {
    if (this.#opening) return this.#opening;
    this.#state = 'opening';
    this.#opening = (async () => {
      const o = this.#opt;
      try {
        const body = await this.#login();
        const parsed = sessionAnswer.safeParse(body);
        if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', 'GLPI initSession answer has no session_token');
        this.#session = parsed.data.session_token;
        const me = parsed.data.session;
        this.#identity = me?.glpiID !== undefined && me.glpiname !== undefined ? { id: me.glpiID, name: me.glpiname } : undefined;
        this.#state = 'open';
        this.#lastLoginError = undefined;
        o.metrics?.glpiSessions.inc({ reason });
        o.logger.info({ reason, ...(this.#identity ? { glpi_user_id: this.#identity.id } : {}) }, 'GLPI session opened');
        return parsed.data.session_token;
      } catch (e) {
        this.#state = e instanceof RemoteError && e.kind === 'login' ? 'login_failed' : 'none';
        this.#lastLoginError = (e as Error).message;
        throw e;
      } finally {
        this.#opening = undefined;
      }
    })();
    return this.#opening;
  }

  /**
   * The initSession request. GLPI reads the credentials from the
   * `Authorization` header; a web server that strips it (Apache in front of
   * PHP-FPM/CGI without CGIPassAuth) makes GLPI answer
   * ERROR_LOGIN_PARAMETERS_MISSING although the header was sent: said so,
   * with the fix, or — opted in (user_token_in_query) — the user token goes
   * in the query string instead, from then on.
   */
  async #login(): Promise<unknown> {
    const o = this.#opt;
    const params = { get_full_session: true };
    if (this.#tokenInQuery) return (await this.#raw('initSession', 'GET', 'initSession', { params: { ...params, user_token: o.userToken.reveal() } })).body;
    const auth = !o.userToken.empty
      ? `user_token ${o.userToken.reveal()}`
      : `Basic ${Buffer.from(`${o.username}:${o.password.reveal()}`).toString('base64')}`;
    try {
      return (await this.#raw('initSession', 'GET', 'initSession', { params, headers: { Authorization: auth } })).body;
    } catch (e) {
      if (!(e instanceof RemoteError) || e.code !== 'ERROR_LOGIN_PARAMETERS_MISSING') throw e;
      const fallback = !o.userToken.empty && o.userTokenInQuery === true;
      if (!fallback) throw strippedAuthorization(e, o.userToken.empty ? 'basic' : 'user_token');
      this.#tokenInQuery = true;
      o.logger.warn(
        { glpi_code: e.code, authorization_stripped: true },
        'the web server in front of GLPI strips the Authorization header: logging in with user_token in the query string (glpi.user_token_in_query: true), so the token appears in the web server\'s access log; fix the web server (Apache: CGIPassAuth On; nginx: fastcgi_param HTTP_AUTHORIZATION $http_authorization;) and set it back to false',
      );
      return (await this.#raw('initSession', 'GET', 'initSession', { params: { ...params, user_token: o.userToken.reveal() } })).body;
    }
  }

  /** One API call with the shared session; an expired session is re-opened once, not counted as a failure. */
  async #call(operation: string, method: Method, path: string, options: { params?: Record<string, unknown>; data?: unknown } = {}): Promise<unknown> {
    let token = this.#session ?? (await this.#openSession('start'));
    try {
      return (await this.#raw(operation, method, path, { ...options, headers: { 'Session-Token': token } })).body;
    } catch (e) {
      if (!(e instanceof RemoteError) || e.kind !== 'session') throw e;
      if (this.#session === token) this.#session = undefined;
      this.#opt.logger.info({ operation }, 'GLPI session expired; opening a new one');
      token = this.#session ?? (await this.#openSession('expired'));
      return (await this.#raw(operation, method, path, { ...options, headers: { 'Session-Token': token } })).body;
    }
  }

  async open(): Promise<void> {
    if (!this.#session) await this.#openSession('start');
  }

  /** killSession; failures are logged, not thrown (we are shutting down). */
  async close(): Promise<void> {
    const token = this.#session;
    this.#session = undefined;
    this.#state = 'none';
    try {
      if (token) await this.#raw('killSession', 'GET', 'killSession', { headers: { 'Session-Token': token } });
    } catch (e) {
      this.#opt.logger.warn({ err: (e as Error).message }, 'GLPI killSession failed');
    } finally {
      this.#agents.destroy();
    }
  }

  /** Who the bridge is in GLPI: from the session's opening, else asked once per session (getFullSession). */
  async identity(): Promise<GlpiIdentity> {
    if (!this.#session) await this.#openSession('start');
    if (this.#identity) return this.#identity;
    const parsed = fullSession.safeParse(await this.#call('getFullSession', 'GET', 'getFullSession'));
    if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', 'GLPI getFullSession answer has no glpiID');
    this.#identity = { id: parsed.data.session.glpiID, name: parsed.data.session.glpiname };
    return this.#identity;
  }

  /**
   * GLPI's major version, from getGlpiConfig (`cfg_glpi.version`), asked once.
   * Undefined when GLPI refused or did not say; GLPI down: asked again next time.
   */
  glpiMajor(): Promise<number | undefined> {
    this.#major ??= (async () => {
      try {
        const parsed = glpiConfig.safeParse(await this.#call('getGlpiConfig', 'GET', 'getGlpiConfig'));
        const version = parsed.success ? parsed.data.cfg_glpi.version : undefined;
        const major = Number(/^(\d+)\./.exec(version ?? '')?.[1]);
        if (Number.isFinite(major)) return major;
        this.#opt.logger.warn({ version: version ?? null }, 'GLPI did not say its version: taken as GLPI 10 (HTML-encoded text; ticket externalid not used unless glpi.externalid: on)');
        return undefined;
      } catch (e) {
        // GLPI answered but refused: decide without it. Down: ask again next time.
        if (e instanceof RemoteError && e.kind === 'permanent') {
          this.#opt.logger.warn({ err: e.message }, 'GLPI refused getGlpiConfig: taken as GLPI 10 (HTML-encoded text; ticket externalid not used unless glpi.externalid: on)');
          return undefined;
        }
        this.#major = undefined;
        throw e;
      }
    })();
    return this.#major;
  }

  /** Whether tickets have `externalid` here (glpi.externalid; auto: GLPI ≥ 11). */
  async #externalIdOn(): Promise<boolean> {
    const mode = this.#opt.externalId ?? 'auto';
    if (mode !== 'auto') return mode === 'on';
    return ((await this.glpiMajor()) ?? 0) >= 11;
  }

  /**
   * Text as a person typed it. GLPI 10 stores and returns text HTML-encoded
   * (Toolbox/Sanitizer: `&` `<` `>` → `&#38;` `&#60;` `&#62;`): decoded.
   * GLPI 11 dropped that sanitizer and returns text as stored: a literal
   * `&lt;` typed by a technician stays `&lt;`. Text without `&` reads the
   * same either way (GLPI's version is not asked for it); an unknown version
   * is taken as GLPI 10.
   */
  async #asTyped(text: string): Promise<string> {
    if (!text.includes('&')) return text;
    const major = await this.glpiMajor();
    return major !== undefined && major >= 11 ? text : decodeEntities(text);
  }

  /**
   * The ticket this bridge created with this marker, if any (crash recovery:
   * never create twice). One search: by `externalid` where GLPI has it, or
   * the marker in the title. A ticket carrying the marker but written by
   * another GLPI user is never adopted (GLPI_MARKER_SPOOFED).
   */
  async findTicketByMarker(marker: string): Promise<number | undefined> {
    const external = await this.#externalIdOn();
    const params: Record<string, unknown> = {};
    let n = 0;
    if (external) {
      Object.assign(params, { 'criteria[0][field]': SO.externalId, 'criteria[0][searchtype]': 'contains', 'criteria[0][value]': `^${marker}$`, 'criteria[1][link]': 'OR' });
      n = 1;
    }
    Object.assign(params, {
      [`criteria[${n}][field]`]: SO.name,
      [`criteria[${n}][searchtype]`]: 'contains',
      [`criteria[${n}][value]`]: marker,
      'forcedisplay[0]': SO.id,
      'forcedisplay[1]': SO.writer,
      range: '0-9',
    });
    const body = await this.#call('searchTicket', 'GET', 'search/Ticket', { params });
    const parsed = searchAnswer.safeParse(body);
    if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', `GLPI search answer not understood: ${parsed.error.issues[0]?.message ?? ''}`);
    for (const row of parsed.data.data ?? []) {
      const id = Number(row[String(SO.id)]);
      if (!Number.isInteger(id) || id <= 0) continue;
      const verdict = await this.#createdByMe(id, row[String(SO.writer)]);
      if (verdict === 'mine') return id;
      if (verdict === 'unknown') {
        this.#opt.logger.warn({ marker, ticket_id: id }, 'GLPI did not say who created the ticket carrying this marker: not adopted, a new ticket is created');
        continue;
      }
      this.#opt.logger.warn(
        { code: 'GLPI_MARKER_SPOOFED', marker, ticket_id: id, created_by: verdict.writer },
        'a GLPI ticket carries this incident\'s marker but was not created by the bridge\'s GLPI user: not adopted, a new ticket is created',
      );
    }
    return undefined;
  }

  /**
   * Whether the bridge's user wrote this ticket. GLPI's search shows the
   * writer (option 22, users_id_recipient) as the user's login name; without
   * that column, the ticket's users_id_recipient is read.
   */
  async #createdByMe(ticketId: number, writer: unknown): Promise<'mine' | 'unknown' | { writer: string | number }> {
    const me = await this.identity();
    if (typeof writer === 'string') {
      // Both as typed: GLPI 10 keeps the login HTML-encoded in the session and in search output alike.
      const name = await this.#asTyped(writer);
      return name.trim() === (await this.#asTyped(me.name)) ? 'mine' : { writer: name };
    }
    if (typeof writer === 'number') return writer === me.id ? 'mine' : { writer };
    const t = await this.getTicket(ticketId);
    if (t?.users_id_recipient === undefined) return 'unknown';
    return t.users_id_recipient === me.id ? 'mine' : { writer: t.users_id_recipient };
  }

  async createTicket(t: TicketDraft): Promise<number> {
    const input: Record<string, unknown> = {
      name: t.name,
      content: t.content,
      urgency: t.urgency,
      impact: t.impact,
      type: t.type,
      entities_id: t.entities_id,
    };
    if (t.itilcategories_id > 0) input.itilcategories_id = t.itilcategories_id;
    if (t.requesttypes_id > 0) input.requesttypes_id = t.requesttypes_id;
    if (t.groups_id_assign > 0) input._groups_id_assign = t.groups_id_assign;
    // Ticket_User rows on create (CommonITILObject: `_users_id_<role>`, an id or a list, on GLPI 10 and 11).
    for (const [role, ids] of Object.entries(t.users ?? {})) if (ids && ids.length > 0) input[`_users_id_${role}`] = [...ids];
    // Item_Ticket on create: `items_id: {itemtype: [ids]}` (Ticket::post_addItem()).
    if (t.asset) input.items_id = { [t.asset.itemtype]: [t.asset.id] };
    if (await this.#externalIdOn()) input.externalid = t.marker;
    const body = await this.#call('createTicket', 'POST', 'Ticket', { data: { input } });
    const parsed = createAnswer.safeParse(body);
    if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', 'GLPI create answer has no ticket id');
    return parsed.data.id;
  }

  /**
   * A follow-up. With pending_followups: keep, `_no_reopen` keeps a Pending
   * ticket pending (GLPI's ParentStatus reopens it otherwise); a reopen
   * follow-up (`add_reopen`) never carries it.
   */
  async addFollowup(ticketId: number, content: string, options: { isPrivate: boolean; reopen?: boolean }): Promise<number> {
    const input: Record<string, unknown> = { itemtype: 'Ticket', items_id: ticketId, content, is_private: options.isPrivate ? 1 : 0 };
    if (options.reopen) input.add_reopen = 1;
    else if ((this.#opt.pendingFollowups ?? 'keep') === 'keep') input._no_reopen = 1;
    const body = await this.#call(options.reopen ? 'reopenTicket' : 'addFollowup', 'POST', `Ticket/${ticketId}/ITILFollowup`, { data: { input } });
    const parsed = createAnswer.safeParse(body);
    if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', 'GLPI follow-up answer has no id');
    return parsed.data.id;
  }

  /** Follow-up contents of a ticket (to tell whether an uncertain earlier attempt landed). */
  async followupContents(ticketId: number): Promise<string[]> {
    const body = await this.#call('listFollowups', 'GET', `Ticket/${ticketId}/ITILFollowup`, { params: { range: '0-999', expand_dropdowns: false } });
    const parsed = followupList.safeParse(body);
    if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', 'GLPI follow-up list not understood');
    return Promise.all(parsed.data.map((f) => this.#asTyped(f.content ?? '')));
  }

  /**
   * Add a solution. When GLPI refuses it (ERROR_GLPI_ADD, its message
   * translated) or its outcome is unknown, the ticket's status says whether
   * it is solved (5) or closed (6) already: that counts as done.
   */
  async addSolution(ticketId: number, content: string, solutionTypeId: number): Promise<'added' | 'already_solved' | 'already_closed'> {
    const input: Record<string, unknown> = { itemtype: 'Ticket', items_id: ticketId, content };
    if (solutionTypeId > 0) input.solutiontypes_id = solutionTypeId;
    try {
      await this.#call('addSolution', 'POST', 'ITILSolution', { data: { input } });
      return 'added';
    } catch (e) {
      return solvedAlready(e, () => this.ticketStatus(ticketId));
    }
  }

  async updateTicket(ticketId: number, fields: Readonly<Record<string, unknown>>): Promise<void> {
    await this.#call('updateTicket', 'PUT', `Ticket/${ticketId}`, { data: { input: { id: ticketId, ...fields } } });
  }

  /** Whether a GLPI item (ITILCategory, Group, Entity, RequestType, …) exists and is readable. */
  async itemStatus(itemtype: string, id: number): Promise<'exists' | 'missing' | 'forbidden'> {
    try {
      await this.#call(`get${itemtype}`, 'GET', `${itemtype}/${id}`, { params: { expand_dropdowns: false, get_hateoas: false } });
      return 'exists';
    } catch (e) {
      if (e instanceof RemoteError && e.status === 404) return 'missing';
      if (e instanceof RemoteError && e.status === 403) return 'forbidden';
      throw e;
    }
  }

  /**
   * A value as GLPI stores it, for a LIKE filter: GLPI 10 stores text HTML-encoded (`&` `<` `>` →
   * `&#38;` `&#60;` `&#62;`, Toolbox/Sanitizer), GLPI 11 as typed. An unknown version is taken as 10.
   */
  async #asStored(text: string): Promise<string> {
    if (!/[&<>]/.test(text)) return text;
    const major = await this.glpiMajor();
    return major !== undefined && major >= 11 ? text : text.replace(/&/g, '&#38;').replace(/</g, '&#60;').replace(/>/g, '&#62;');
  }

  /**
   * Items of a dropdown or User whose name (or complete name: tree dropdowns) is `name`: `GET /{itemtype}`
   * with `searchText[field]=^value$` (API::getItems(): a LIKE under GLPI's case-insensitive collation, where
   * `_` and `%` are wildcards), then compared exactly here, case-insensitively, on the text as typed. Tree
   * dropdowns (ITILCategory, Group, Entity) are asked by their last level's name and kept when their
   * complete name ("Monitoring > CPU") is the one wanted — or, for a name without " > ", their own name —
   * so the lookup holds however GLPI stored the " > " between levels. Users by login, then by
   * "Firstname Lastname" or "Lastname Firstname".
   */
  async findByName(itemtype: 'ITILCategory' | 'Entity' | 'Group' | 'RequestType' | 'User', name: string): Promise<number[]> {
    const wanted = name.trim().replace(/\s+/g, ' ').toLowerCase();
    const list = async (field: string, value: string): Promise<Record<string, unknown>[]> => {
      const body = await this.#call(`find${itemtype}`, 'GET', itemtype, { params: { [`searchText[${field}]`]: `^${await this.#asStored(value)}$`, range: '0-99', expand_dropdowns: false, get_hateoas: false } });
      if (!Array.isArray(body)) throw new RemoteError('retryable', 'BAD_ANSWER', `GLPI ${itemtype} list not understood`);
      return body.filter((r): r is Record<string, unknown> => r !== null && typeof r === 'object');
    };
    const typed = async (v: unknown) => (typeof v === 'string' ? (await this.#asTyped(v)).trim().replace(/\s+/g, ' ').toLowerCase() : undefined);
    const ids = async (rows: Record<string, unknown>[], test: (r: Record<string, unknown>) => Promise<boolean>) => {
      const out: number[] = [];
      for (const r of rows) if (typeof r.id === 'number' && (await test(r))) out.push(r.id);
      return [...new Set(out)];
    };
    if (itemtype === 'ITILCategory' || itemtype === 'Group' || itemtype === 'Entity') {
      const levels = name.trim().split(/\s+>\s+/).map((l) => l.trim()).filter((l) => l !== '');
      const leaf = levels[levels.length - 1] ?? name.trim();
      const rows = await list('name', leaf);
      const full = await ids(rows, async (r) => (await typed(r.completename)) === wanted);
      if (full.length > 0 || levels.length > 1) return full;
      return ids(rows, async (r) => (await typed(r.name)) === wanted);
    }
    const byName = await ids(await list('name', name.trim()), async (r) => (await typed(r.name)) === wanted);
    if (byName.length > 0 || itemtype !== 'User') return byName;
    const words = name.trim().split(/\s+/);
    if (words.length < 2) return [];
    const rows = [...(await list('realname', words[words.length - 1] ?? '')), ...(await list('realname', words[0] ?? ''))];
    return ids(rows, async (r) => {
      const first = (await typed(r.firstname)) ?? '';
      const last = (await typed(r.realname)) ?? '';
      return `${first} ${last}` === wanted || `${last} ${first}` === wanted;
    });
  }

  /**
   * Assets of these itemtypes by name (search option 1) or by IP address (option 126, any address of the
   * asset: NetworkPort::rawSearchOptionsToAdd()), through the search engine, which leaves trashed assets
   * and templates out; `contains ^value$` then an exact comparison here.
   */
  async findAssets(itemtypes: readonly string[], by: 'name' | 'ip', value: string): Promise<{ itemtype: string; id: number }[]> {
    const field = by === 'name' ? 1 : 126;
    const out: { itemtype: string; id: number }[] = [];
    for (const itemtype of itemtypes) {
      const params = {
        'criteria[0][field]': field,
        'criteria[0][searchtype]': 'contains',
        'criteria[0][value]': `^${await this.#asStored(value)}$`,
        'forcedisplay[0]': 2,
        range: '0-49',
      };
      const body = await this.#call(`search${itemtype}`, 'GET', `search/${itemtype}`, { params });
      const parsed = searchAnswer.safeParse(body);
      if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', `GLPI ${itemtype} search answer not understood`);
      for (const row of parsed.data.data ?? []) {
        const id = Number(row['2']);
        if (!Number.isInteger(id) || id <= 0) continue;
        const shown = row[String(field)];
        const values = typeof shown === 'string' ? (await this.#asTyped(shown)).split('$$##$$') : [];
        if (values.some((v) => v.trim().toLowerCase() === value.trim().toLowerCase())) out.push({ itemtype, id });
      }
    }
    return out;
  }

  async getTicket(ticketId: number): Promise<{ id: number; status: number; users_id_recipient?: number } | undefined> {
    try {
      const body = await this.#call('getTicket', 'GET', `Ticket/${ticketId}`, { params: { expand_dropdowns: false, get_hateoas: false } });
      const parsed = ticketAnswer.safeParse(body);
      if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', 'GLPI ticket answer not understood');
      const { users_id_recipient, ...rest } = parsed.data;
      return users_id_recipient === undefined ? rest : { ...rest, users_id_recipient };
    } catch (e) {
      if (e instanceof RemoteError && e.status === 404) return undefined;
      throw e;
    }
  }

  /** The ticket's status (1 new … 4 pending, 5 solved, 6 closed), undefined when it does not exist. */
  async ticketStatus(ticketId: number): Promise<number | undefined> {
    return (await this.getTicket(ticketId))?.status;
  }

  /**
   * Tickets this bridge wrote (option 22, by the session user's id) modified
   * after `since` (option 19, date_mod, GLPI's own clock and format), with
   * their status (12), oldest first: one search per sweep (issue 14 item 5).
   * Without `since`, the 200 most recent. GLPI's `morethan` is strict, so the
   * caller asks from a second before its cursor and ignores what it has seen.
   * (glpi-project/glpi src/CommonITILObject.php getSearchOptionsMain() @ 0042059c82075d3223c145cb3609a83019fc0cd2)
   */
  async ticketsModifiedSince(since: string | undefined): Promise<ModifiedTicket[]> {
    const me = await this.identity();
    const params: Record<string, unknown> = {
      'criteria[0][field]': SO.writer,
      'criteria[0][searchtype]': 'equals',
      'criteria[0][value]': me.id,
      'forcedisplay[0]': SO.id,
      'forcedisplay[1]': SO.status,
      'forcedisplay[2]': SO.dateMod,
      sort: SO.dateMod,
      order: since === undefined ? 'DESC' : 'ASC',
      range: since === undefined ? '0-199' : '0-999',
    };
    if (since !== undefined) Object.assign(params, { 'criteria[1][link]': 'AND', 'criteria[1][field]': SO.dateMod, 'criteria[1][searchtype]': 'morethan', 'criteria[1][value]': since });
    const body = await this.#call('searchModifiedTickets', 'GET', 'search/Ticket', { params });
    // Rows one by one: a row GLPI sends that cannot be used is left out and said (reportRefusedRows), never the whole sweep.
    const parsed = searchRows.safeParse(body);
    if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', `GLPI search answer not understood: ${parsed.error.issues[0]?.message ?? ''}`);
    const out: ModifiedTicket[] = [];
    const refused: RefusedRow[] = [];
    for (const row of parsed.data.data ?? []) {
      const r = modifiedRow(row);
      if ('field' in r) refused.push(r);
      else out.push(r);
    }
    reportRefusedRows(this.#opt.logger, this.#opt.metrics, 'searchModifiedTickets', refused, 'GLPI read-back of the bridge\'s modified tickets; a ticket left out is not read back this sweep');
    return since === undefined ? out.reverse() : out;
  }

  /** Public follow-ups (is_private 0) of the ticket written by another user than the bridge's, oldest first (issue 14 item 5). */
  async othersPublicFollowups(ticketId: number): Promise<{ id: number; content: string }[]> {
    const me = await this.identity();
    const body = await this.#call('listFollowups', 'GET', `Ticket/${ticketId}/ITILFollowup`, { params: { range: '0-999', expand_dropdowns: false, get_hateoas: false } });
    const parsed = z.array(z.object({ id: z.number(), content: z.string().nullable().optional(), is_private: z.coerce.number(), users_id: z.coerce.number() })).safeParse(body);
    if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', 'GLPI follow-up list not understood');
    const theirs = parsed.data.filter((f) => f.is_private === 0 && f.users_id !== me.id).sort((a, b) => a.id - b.id);
    return Promise.all(theirs.map(async (f) => ({ id: f.id, content: await this.#asTyped(f.content ?? '') })));
  }

  // ---- Problems and ITIL links (issue 14 item 1; core/ports.ts ProblemDesk) -----------------------------

  /**
   * Problems whose name carries the marker and that the bridge's user wrote
   * (search option 22, as for tickets: a problem a human named after the
   * marker is never adopted), with their status (option 12), lowest id first.
   * Problem shares CommonITILObject's search options with Ticket
   * (glpi-project/glpi src/CommonITILObject.php getSearchOptionsMain() @ 0042059c82075d3223c145cb3609a83019fc0cd2).
   */
  async findProblemsByMarker(marker: string): Promise<ProblemRef[]> {
    const params = {
      'criteria[0][field]': SO.name,
      'criteria[0][searchtype]': 'contains',
      'criteria[0][value]': marker,
      'forcedisplay[0]': SO.id,
      'forcedisplay[1]': SO.status,
      'forcedisplay[2]': SO.writer,
      sort: SO.id,
      order: 'ASC',
      range: '0-49',
    };
    const body = await this.#call('searchProblem', 'GET', 'search/Problem', { params });
    const parsed = searchAnswer.safeParse(body);
    if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', `GLPI search answer not understood: ${parsed.error.issues[0]?.message ?? ''}`);
    const me = await this.identity();
    const out: ProblemRef[] = [];
    for (const row of parsed.data.data ?? []) {
      const id = Number(row[String(SO.id)]);
      const status = Number(row[String(SO.status)]);
      if (!Number.isInteger(id) || id <= 0 || !Number.isInteger(status)) continue;
      const writer = row[String(SO.writer)];
      const mine = typeof writer === 'string' ? (await this.#asTyped(writer)).trim() === (await this.#asTyped(me.name)) : writer === me.id;
      if (!mine) {
        this.#opt.logger.warn({ code: 'GLPI_MARKER_SPOOFED', marker, problem_id: id, created_by: writer }, 'a GLPI problem carries this incident\'s marker but was not created by the bridge\'s GLPI user: not adopted');
        continue;
      }
      out.push({ id, status });
    }
    return out.sort((a, b) => a.id - b.id);
  }

  async createProblem(p: ProblemDraft): Promise<number> {
    const input: Record<string, unknown> = { name: p.name, content: p.content, urgency: p.urgency, impact: p.impact, entities_id: p.entities_id };
    if (p.itilcategories_id > 0) input.itilcategories_id = p.itilcategories_id;
    const body = await this.#call('createProblem', 'POST', 'Problem', { data: { input } });
    const parsed = createAnswer.safeParse(body);
    if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', 'GLPI create answer has no problem id');
    return parsed.data.id;
  }

  async problemTickets(problemId: number): Promise<number[]> {
    const body = await this.#call('listProblemTickets', 'GET', `Problem/${problemId}/Problem_Ticket`, { params: { range: '0-999', expand_dropdowns: false, get_hateoas: false } });
    const parsed = z.array(z.object({ tickets_id: z.coerce.number() })).safeParse(body);
    if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', 'GLPI Problem_Ticket list not understood');
    return parsed.data.map((r) => r.tickets_id);
  }

  /** Problem_Ticket: GLPI refuses a link that exists (CommonITILObject_CommonITILObject::prepareInputForAdd()): the caller reads the links first. */
  async linkProblemTicket(problemId: number, ticketId: number): Promise<void> {
    await this.#call('linkProblemTicket', 'POST', 'Problem_Ticket', { data: { input: { problems_id: problemId, tickets_id: ticketId } } });
  }

  async addProblemFollowup(problemId: number, content: string): Promise<void> {
    await this.#call('addProblemFollowup', 'POST', `Problem/${problemId}/ITILFollowup`, { data: { input: { itemtype: 'Problem', items_id: problemId, content, is_private: 0 } } });
  }

  async problemFollowupContents(problemId: number): Promise<string[]> {
    const body = await this.#call('listProblemFollowups', 'GET', `Problem/${problemId}/ITILFollowup`, { params: { range: '0-999', expand_dropdowns: false } });
    const parsed = followupList.safeParse(body);
    if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', 'GLPI follow-up list not understood');
    return Promise.all(parsed.data.map((f) => this.#asTyped(f.content ?? '')));
  }

  async linkedTickets(ticketId: number): Promise<number[]> {
    const body = await this.#call('listTicketLinks', 'GET', `Ticket/${ticketId}/Ticket_Ticket`, { params: { range: '0-999', expand_dropdowns: false, get_hateoas: false } });
    const parsed = z.array(z.object({ tickets_id_1: z.coerce.number(), tickets_id_2: z.coerce.number() })).safeParse(body);
    if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', 'GLPI Ticket_Ticket list not understood');
    return parsed.data.map((r) => (r.tickets_id_1 === ticketId ? r.tickets_id_2 : r.tickets_id_1));
  }

  /**
   * Ticket_Ticket between the two tickets removed (either side): the link's id read from the ticket's links,
   * then DELETE Ticket_Ticket/:id. A relation has no trash (CommonDBTM::delete() purges an item without
   * is_deleted), as the form's "purge" and the "delete" massive action do
   * (glpi-project/glpi front/ticket_ticket.form.php, src/CommonITILObject_CommonITILObject.php
   * processMassiveActionsForOneItemtype() @ 0042059c82075d3223c145cb3609a83019fc0cd2). False: no link.
   */
  async unlinkTickets(ticketId: number, otherId: number): Promise<boolean> {
    const body = await this.#call('listTicketLinks', 'GET', `Ticket/${ticketId}/Ticket_Ticket`, { params: { range: '0-999', expand_dropdowns: false, get_hateoas: false } });
    const parsed = z.array(z.object({ id: z.coerce.number(), tickets_id_1: z.coerce.number(), tickets_id_2: z.coerce.number() })).safeParse(body);
    if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', 'GLPI Ticket_Ticket list not understood');
    const link = parsed.data.find((r) => (r.tickets_id_1 === ticketId && r.tickets_id_2 === otherId) || (r.tickets_id_1 === otherId && r.tickets_id_2 === ticketId));
    if (!link) return false;
    await this.#call('unlinkTickets', 'DELETE', `Ticket_Ticket/${link.id}`, { params: { force_purge: true } });
    return true;
  }

  /** Ticket_Ticket "linked to" (CommonITILObject_CommonITILObject::LINK_TO = 1). */
  async linkTickets(ticketId: number, otherId: number): Promise<void> {
    await this.#call('linkTickets', 'POST', 'Ticket_Ticket', { data: { input: { tickets_id_1: ticketId, tickets_id_2: otherId, link: 1 } } });
  }
}
