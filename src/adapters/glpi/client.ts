import axios, { type AxiosInstance, type Method } from 'axios';
import http from 'node:http';
import https from 'node:https';
import { z } from 'zod';
import type { TicketDraft } from '../../core/decide.js';
import type { Secret } from '../../config/secret.js';
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import { RemoteError } from '../remote-error.js';
import { fromNetwork, fromResponse } from './outcome.js';

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
}

export type SessionState = 'none' | 'open' | 'opening' | 'login_failed';

const sessionAnswer = z.object({ session_token: z.string().min(1) });
const createAnswer = z.object({ id: z.number().int().positive() });
const searchAnswer = z.object({
  totalcount: z.number(),
  data: z.array(z.record(z.string(), z.unknown())).optional(),
});
const followupList = z.array(z.object({ id: z.number(), content: z.string().nullable().optional() }));
const ticketAnswer = z.object({ id: z.number(), status: z.number() });

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
 */
export class GlpiClient {
  readonly #http: AxiosInstance;
  readonly #opt: GlpiClientOptions;
  #session: string | undefined;
  #opening: Promise<string> | undefined;
  #state: SessionState = 'none';
  #lastLoginError: string | undefined;

  constructor(opt: GlpiClientOptions) {
    this.#opt = opt;
    this.#http = axios.create({
      baseURL: opt.url.replace(/\/+$/, '') + '/',
      timeout: opt.timeoutMs,
      validateStatus: () => true,
      transformResponse: [(data: unknown) => data],
      responseType: 'text',
      httpAgent: new http.Agent({ keepAlive: true, maxSockets: 64 }),
      httpsAgent: new https.Agent({ keepAlive: true, maxSockets: 64 }),
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    });
  }

  get sessionState(): SessionState {
    return this.#state;
  }

  get lastLoginError(): string | undefined {
    return this.#lastLoginError;
  }

  /** Link to a ticket in the GLPI web interface. */
  ticketUrl(id: number): string {
    const base = this.#opt.url.replace(/\/+$/, '').replace(/\/apirest\.php$/, '');
    return `${base}/front/ticket.form.php?id=${id}`;
  }

  #appHeaders(): Record<string, string> {
    return this.#opt.appToken.empty ? {} : { 'App-Token': this.#opt.appToken.reveal() };
  }

  async #raw(operation: string, method: Method, path: string, options: { params?: Record<string, unknown>; data?: unknown; headers?: Record<string, string> } = {}): Promise<{ status: number; body: unknown }> {
    const started = process.hrtime.bigint();
    let status = 'error';
    try {
      const res = await this.#http.request({ method, url: path, params: options.params, data: options.data, headers: { ...this.#appHeaders(), ...options.headers } });
      status = String(res.status);
      const body = parseBody(res.data);
      if (res.status >= 200 && res.status < 300) return { status: res.status, body };
      throw fromResponse(res.status, body, typeof res.headers['retry-after'] === 'string' ? res.headers['retry-after'] : undefined);
    } catch (e) {
      if (e instanceof RemoteError) throw e;
      const err = e as { code?: string; message?: string };
      status = err.code ?? 'error';
      throw fromNetwork(err.code, err.message ?? String(e));
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      this.#opt.metrics?.glpiRequests.inc({ operation, status });
      this.#opt.metrics?.glpiLatency.observe({ operation }, seconds);
    }
  }

  /** initSession; single-flight: concurrent callers share one login. */
  async #openSession(reason: 'start' | 'expired'): Promise<string> {
    if (this.#opening) return this.#opening;
    this.#state = 'opening';
    this.#opening = (async () => {
      const o = this.#opt;
      const auth = !o.userToken.empty
        ? `user_token ${o.userToken.reveal()}`
        : `Basic ${Buffer.from(`${o.username}:${o.password.reveal()}`).toString('base64')}`;
      try {
        const { body } = await this.#raw('initSession', 'GET', 'initSession', { headers: { Authorization: auth } });
        const parsed = sessionAnswer.safeParse(body);
        if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', 'GLPI initSession answer has no session_token');
        this.#session = parsed.data.session_token;
        this.#state = 'open';
        this.#lastLoginError = undefined;
        o.metrics?.glpiSessions.inc({ reason });
        o.logger.info({ reason }, 'GLPI session opened');
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
    if (!token) return;
    try {
      await this.#raw('killSession', 'GET', 'killSession', { headers: { 'Session-Token': token } });
    } catch (e) {
      this.#opt.logger.warn({ err: (e as Error).message }, 'GLPI killSession failed');
    }
  }

  /** The ticket carrying this marker in its title, if any (crash recovery: never create twice). */
  async findTicketByMarker(marker: string): Promise<number | undefined> {
    const body = await this.#call('searchTicket', 'GET', 'search/Ticket', {
      params: {
        'criteria[0][field]': 1,
        'criteria[0][searchtype]': 'contains',
        'criteria[0][value]': marker,
        'forcedisplay[0]': 2,
        range: '0-9',
      },
    });
    const parsed = searchAnswer.safeParse(body);
    if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', `GLPI search answer not understood: ${parsed.error.issues[0]?.message ?? ''}`);
    for (const row of parsed.data.data ?? []) {
      const id = Number(row['2']);
      if (Number.isInteger(id) && id > 0) return id;
    }
    return undefined;
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
    const body = await this.#call('createTicket', 'POST', 'Ticket', { data: { input } });
    const parsed = createAnswer.safeParse(body);
    if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', 'GLPI create answer has no ticket id');
    return parsed.data.id;
  }

  async addFollowup(ticketId: number, content: string, options: { isPrivate: boolean; reopen?: boolean }): Promise<number> {
    const input: Record<string, unknown> = { itemtype: 'Ticket', items_id: ticketId, content, is_private: options.isPrivate ? 1 : 0 };
    if (options.reopen) input.add_reopen = 1;
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
    return parsed.data.map((f) => f.content ?? '');
  }

  /** Add a solution; a ticket that is already solved counts as done. */
  async addSolution(ticketId: number, content: string, solutionTypeId: number): Promise<'added' | 'already_solved'> {
    const input: Record<string, unknown> = { itemtype: 'Ticket', items_id: ticketId, content };
    if (solutionTypeId > 0) input.solutiontypes_id = solutionTypeId;
    try {
      await this.#call('addSolution', 'POST', 'ITILSolution', { data: { input } });
      return 'added';
    } catch (e) {
      if (e instanceof RemoteError && e.code === 'ERROR_GLPI_ADD' && /already solved/i.test(e.message)) return 'already_solved';
      throw e;
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

  async getTicket(ticketId: number): Promise<{ id: number; status: number } | undefined> {
    try {
      const body = await this.#call('getTicket', 'GET', `Ticket/${ticketId}`, { params: { expand_dropdowns: false, get_hateoas: false } });
      const parsed = ticketAnswer.safeParse(body);
      if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', 'GLPI ticket answer not understood');
      return parsed.data;
    } catch (e) {
      if (e instanceof RemoteError && e.status === 404) return undefined;
      throw e;
    }
  }
}
