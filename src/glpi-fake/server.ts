import { randomBytes } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A GLPI legacy REST API (apirest.php) that behaves like the real one for
 * what the bridge uses: sessions (App-Token, user_token or Basic auth,
 * expiry), tickets, follow-ups, solutions, search, the ["ERROR_…", message]
 * error bodies and status codes of GLPI 10, and ticket status transitions.
 * Faults can be injected (latency, 5xx rate, down, 429 + Retry-After,
 * session expiry, hangs, dropped answers after commit). Used by the tests,
 * the demo and the benchmark; also runnable alone (`npm run fake-glpi`).
 */

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
  groups_id_assign: number[];
  date_creation: string;
  date_mod: string;
  solvedate: string | null;
  closedate: string | null;
  is_deleted: number;
}

export interface FakeFollowup {
  id: number;
  itemtype: string;
  items_id: number;
  content: string;
  is_private: number;
  date: string;
}

export interface FakeSolution {
  id: number;
  itemtype: string;
  items_id: number;
  content: string;
  status: number;
  solutiontypes_id: number;
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
  appToken?: string;
  userTokens?: readonly string[];
  users?: Readonly<Record<string, string>>;
  /** ITIL category ids that exist; others get 400 on create. Undefined: any id exists. */
  categories?: readonly number[];
  /** Group ids that exist; undefined: any. */
  groups?: readonly number[];
  /** Entity ids that exist (default: the root entity 0). */
  entities?: readonly number[];
  /** 0: solved tickets close at once (autoclose_delay 0); -10: never (GLPI 10 default). */
  autocloseDelay?: number;
}

export interface RequestLog {
  method: string;
  path: string;
  status: number;
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

const DOC = '; view documentation in your browser at /apirest.php/#';

class Answer {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {}
}

function err(status: number, code: string, message: string | null, doc = false): Answer {
  return new Answer(status, [code, message === null ? null : doc ? `${message}${DOC}${code}` : message]);
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

export class FakeGlpi {
  readonly tickets = new Map<number, FakeTicket>();
  readonly followups: FakeFollowup[] = [];
  readonly solutions: FakeSolution[] = [];
  readonly requests: RequestLog[] = [];
  readonly sessions = new Set<string>();
  sessionsOpened = 0;
  faults: Faults = { ...DEFAULT_FAULTS };
  #nextId = { ticket: 1, followup: 1, solution: 1 };
  #server: http.Server | undefined;
  readonly #hung = new Set<ServerResponse>();
  #opt: FakeGlpiOptions;

  constructor(opt: FakeGlpiOptions = {}) {
    this.#opt = { userTokens: ['user-token'], users: {}, autocloseDelay: -10, ...opt };
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

  async close(): Promise<void> {
    for (const res of this.#hung) res.destroy();
    this.#hung.clear();
    if (!this.#server) return;
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server!.close(() => resolve()));
    this.#server = undefined;
  }

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

  count(method: string, pathPrefix: string, status?: number): number {
    return this.requests.filter((r) => r.method === method && r.path.startsWith(pathPrefix) && (status === undefined || r.status === status)).length;
  }

  followupsOf(ticketId: number): FakeFollowup[] {
    return this.followups.filter((f) => f.itemtype === 'Ticket' && f.items_id === ticketId);
  }

  snapshot(): { tickets: FakeTicket[]; followups: FakeFollowup[]; solutions: FakeSolution[]; requests: number; sessionsOpened: number } {
    return { tickets: [...this.tickets.values()], followups: this.followups, solutions: this.solutions, requests: this.requests.length, sessionsOpened: this.sessionsOpened };
  }

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
    if (f.mode === 'unavailable') {
      answer = new Answer(503, '<html><body><h1>503 Service Unavailable</h1></body></html>');
    } else if (f.rateLimitNext > 0) {
      f.rateLimitNext--;
      answer = new Answer(429, '<html><body>Too Many Requests</body></html>', { 'Retry-After': String(f.retryAfterSeconds) });
    } else if (f.errorRate > 0 && Math.random() < f.errorRate) {
      answer = new Answer(500, '<html><body>Internal Server Error</body></html>');
    } else {
      answer = this.#api(req.method ?? 'GET', url, req.headers, raw);
      if (f.dropAfterCommitNext > 0 && req.method === 'POST' && answer.status === 201) {
        f.dropAfterCommitNext--;
        drop = true;
      }
    }
    const path = url.pathname.replace(/^\/apirest\.php\/?/, '');
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
    if (url.pathname === '/_fake/state') return send(200, this.snapshot());
    if (url.pathname === '/_fake/faults' && req.method === 'POST') {
      try {
        this.setFaults(JSON.parse(raw || '{}') as Partial<Faults>);
        return send(200, this.faults);
      } catch {
        return send(400, { error: 'body must be JSON' });
      }
    }
    if (url.pathname === '/_fake/expire-sessions' && req.method === 'POST') {
      this.expireSessions();
      return send(200, { ok: true });
    }
    send(404, { error: 'unknown control path' });
  }

  #checkAppToken(headers: http.IncomingHttpHeaders, url: URL): Answer | undefined {
    const given = (headers['app-token'] as string | undefined) ?? url.searchParams.get('app_token') ?? '';
    const expected = this.#opt.appToken ?? '';
    if (given === expected) return undefined;
    if (given === '') return err(400, 'ERROR_APP_TOKEN_PARAMETERS_MISSING', 'missing parameter app_token', true);
    return err(400, 'ERROR_WRONG_APP_TOKEN_PARAMETER', 'parameter app_token seems wrong', true);
  }

  #api(method: string, url: URL, headers: http.IncomingHttpHeaders, raw: string): Answer {
    const path = url.pathname.replace(/^\/apirest\.php\/?/, '').replace(/\/+$/, '');
    const parts = path.split('/').filter(Boolean);
    const appError = this.#checkAppToken(headers, url);
    if (appError) return appError;
    if (method === 'GET' && raw.length > 0) return err(400, 'ERROR_JSON_PAYLOAD_FORBIDDEN', 'GET Request should not have json payload (http body)', true);
    let body: Record<string, unknown> = {};
    if (raw.length > 0) {
      try {
        const parsed: unknown = JSON.parse(raw);
        if (!parsed || typeof parsed !== 'object') throw new Error('not truthy');
        body = parsed as Record<string, unknown>;
      } catch {
        return err(400, 'ERROR_JSON_PAYLOAD_INVALID', 'JSON payload seems not valid');
      }
    }
    const resource = (parts[0] ?? '').toLowerCase();
    if (resource === 'initsession') return this.#initSession(headers);
    const token = (headers['session-token'] as string | undefined) ?? url.searchParams.get('session_token') ?? '';
    if (token === '') return err(400, 'ERROR_SESSION_TOKEN_MISSING', 'parameter session_token is missing or empty', true);
    if (!this.sessions.has(token)) return err(401, 'ERROR_SESSION_TOKEN_INVALID', 'session_token seems invalid');
    if (resource === 'killsession') {
      this.sessions.delete(token);
      return new Answer(200, true);
    }
    if (resource === 'search' && (parts[1] ?? '').toLowerCase() === 'ticket' && method === 'GET') return this.#search(url);
    const input = body.input;
    const itemtype = resource;
    const id = parts[1] !== undefined ? Number(parts[1]) : undefined;
    const child = parts[2]?.toLowerCase();
    if (itemtype === 'ticket' && child === undefined) {
      if (method === 'POST') return this.#createTicket(input);
      if (method === 'GET' && id !== undefined) return this.#getTicket(id);
      if ((method === 'PUT' || method === 'PATCH') && id !== undefined) return this.#updateTicket(id, input);
      if (method === 'GET') return new Answer(200, [...this.tickets.values()].slice(0, 20));
    }
    if ((itemtype === 'ticket' && child === 'itilfollowup') || itemtype === 'itilfollowup') {
      if (method === 'POST') return this.#addFollowup(input);
      if (method === 'GET' && itemtype === 'ticket' && id !== undefined) {
        if (!this.tickets.has(id)) return err(404, 'ERROR_ITEM_NOT_FOUND', 'Item not found');
        return new Answer(200, this.followupsOf(id));
      }
    }
    if ((itemtype === 'ticket' && child === 'itilsolution') || itemtype === 'itilsolution') {
      if (method === 'POST') return this.#addSolution(input);
      if (method === 'GET' && itemtype === 'ticket' && id !== undefined) return new Answer(200, this.solutions.filter((s) => s.items_id === id));
    }
    const dropdowns: Record<string, readonly number[] | undefined> = {
      itilcategory: this.#opt.categories,
      group: this.#opt.groups,
      entity: this.#opt.entities ?? [0],
      requesttype: undefined,
    };
    if (itemtype in dropdowns && method === 'GET' && id !== undefined) {
      const known = dropdowns[itemtype];
      if (known && !known.includes(id)) return err(404, 'ERROR_ITEM_NOT_FOUND', 'Item not found');
      return new Answer(200, { id, name: `${itemtype} ${id}` });
    }
    if (!['ticket', 'itilfollowup', 'itilsolution', 'search'].includes(itemtype)) {
      return err(400, 'ERROR_RESOURCE_NOT_FOUND_NOR_COMMONDBTM', 'resource not found or not an instance of CommonDBTM', true);
    }
    return err(400, 'ERROR', 'Bad Request', true);
  }

  #initSession(headers: http.IncomingHttpHeaders): Answer {
    const auth = headers.authorization ?? '';
    let ok = false;
    if (auth.includes('user_token')) {
      const token = auth.split(' ')[1] ?? '';
      if (!(this.#opt.userTokens ?? []).includes(token)) return err(401, 'ERROR_GLPI_LOGIN_USER_TOKEN', 'parameter user_token seems invalid');
      ok = true;
    } else if (auth.startsWith('Basic ')) {
      const [login, ...pw] = Buffer.from(auth.slice(6), 'base64').toString('utf8').split(':');
      if ((this.#opt.users ?? {})[login ?? ''] !== pw.join(':')) return err(401, 'ERROR_GLPI_LOGIN', 'Incorrect username or password');
      ok = true;
    }
    if (!ok) return err(400, 'ERROR_LOGIN_PARAMETERS_MISSING', 'parameter(s) login, password or user_token are missing', true);
    const token = randomBytes(13).toString('hex');
    this.sessions.add(token);
    this.sessionsOpened++;
    return new Answer(200, { session_token: token });
  }

  #createTicket(input: unknown): Answer {
    if (!input || typeof input !== 'object' || Array.isArray(input)) return err(400, 'ERROR_BAD_ARRAY', 'input parameter must be an array of objects', true);
    const i = input as Record<string, unknown>;
    const num = (v: unknown, d: number) => (typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : d);
    const category = num(i.itilcategories_id, 0);
    if (category > 0 && this.#opt.categories && !this.#opt.categories.includes(category)) {
      return err(400, 'ERROR_GLPI_ADD', `ITIL category ${category} does not exist`);
    }
    const groups = ([] as unknown[]).concat(i._groups_id_assign ?? []).map((g) => num(g, 0)).filter((g) => g > 0);
    if (this.#opt.groups && groups.some((g) => !this.#opt.groups!.includes(g))) {
      return err(400, 'ERROR_GLPI_ADD', "You don't have permission to perform this action.");
    }
    if (typeof i.name !== 'string' && typeof i.content !== 'string') return err(400, 'ERROR_GLPI_ADD', 'Title and description are mandatory');
    const urgency = num(i.urgency, 3);
    const impact = num(i.impact, 3);
    const t: FakeTicket = {
      id: this.#nextId.ticket++,
      name: String(i.name ?? ''),
      content: String(i.content ?? ''),
      status: groups.length > 0 ? 2 : 1,
      urgency,
      impact,
      priority: priorityOf(urgency, impact),
      type: num(i.type, 1),
      itilcategories_id: category,
      entities_id: num(i.entities_id, 0),
      requesttypes_id: num(i.requesttypes_id, 1),
      groups_id_assign: groups,
      date_creation: now(),
      date_mod: now(),
      solvedate: null,
      closedate: null,
      is_deleted: 0,
    };
    this.tickets.set(t.id, t);
    return new Answer(201, { id: t.id, message: `Your ticket has been recorded under number ${t.id}.` }, { Location: `/apirest.php/Ticket/${t.id}` });
  }

  #getTicket(id: number): Answer {
    const t = this.tickets.get(id);
    if (!t) return err(404, 'ERROR_ITEM_NOT_FOUND', 'Item not found');
    const { groups_id_assign: _g, ...fields } = t;
    return new Answer(200, fields);
  }

  #updateTicket(id: number, input: unknown): Answer {
    if (!input || typeof input !== 'object' || Array.isArray(input)) return err(400, 'ERROR_BAD_ARRAY', 'input parameter must be an array of objects', true);
    const t = this.tickets.get(id);
    if (!t) return err(400, 'ERROR_GLPI_UPDATE', null);
    const i = input as Record<string, unknown>;
    if (typeof i.urgency === 'number') t.urgency = i.urgency;
    if (typeof i.impact === 'number') t.impact = i.impact;
    if (typeof i.urgency === 'number' || typeof i.impact === 'number') t.priority = priorityOf(t.urgency, t.impact);
    if (typeof i.name === 'string') t.name = i.name;
    if (typeof i.status === 'number' && i.status >= 1 && i.status <= 6) {
      t.status = i.status;
      if (i.status === 6) t.closedate = now();
      if (i.status === 5) t.solvedate = now();
    }
    t.date_mod = now();
    return new Answer(200, [{ [String(id)]: true, message: '' }]);
  }

  #reopenStatus(t: FakeTicket): number {
    return t.groups_id_assign.length > 0 ? 2 : 1;
  }

  #addFollowup(input: unknown): Answer {
    if (!input || typeof input !== 'object' || Array.isArray(input)) return err(400, 'ERROR_BAD_ARRAY', 'input parameter must be an array of objects', true);
    const i = input as Record<string, unknown>;
    const t = i.itemtype === 'Ticket' ? this.tickets.get(Number(i.items_id)) : undefined;
    if (!t) return err(400, 'ERROR_GLPI_ADD', "You don't have permission to perform this action.");
    const content = typeof i.content === 'string' ? i.content : '';
    const reopen = i.add_reopen === 1 || i.add_reopen === '1' || i.add_reopen === true;
    if (reopen && content.trim() === '') return err(400, 'ERROR_GLPI_ADD', 'If you want to reopen this item, you must specify a reason');
    if (!reopen && content.trim() === '') return err(400, 'ERROR_GLPI_ADD', "You can't add a followup without description");
    const f: FakeFollowup = { id: this.#nextId.followup++, itemtype: 'Ticket', items_id: t.id, content, is_private: i.is_private === 1 ? 1 : 0, date: now() };
    this.followups.push(f);
    if (reopen && (t.status === 5 || t.status === 6)) {
      t.status = this.#reopenStatus(t);
      t.solvedate = null;
      t.closedate = null;
      for (const s of this.solutions) if (s.items_id === t.id && s.status === 2) s.status = 4;
    } else if (t.status === 4) {
      t.status = this.#reopenStatus(t);
    }
    t.date_mod = now();
    return new Answer(201, { id: f.id, message: '' }, { Location: `/apirest.php/ITILFollowup/${f.id}` });
  }

  #addSolution(input: unknown): Answer {
    if (!input || typeof input !== 'object' || Array.isArray(input)) return err(400, 'ERROR_BAD_ARRAY', 'input parameter must be an array of objects', true);
    const i = input as Record<string, unknown>;
    const t = i.itemtype === 'Ticket' ? this.tickets.get(Number(i.items_id)) : undefined;
    if (!t) return err(400, 'ERROR_GLPI_ADD', "You don't have permission to perform this action.");
    if (t.status === 5 || t.status === 6) return err(400, 'ERROR_GLPI_ADD', 'The item is already solved, did anyone pushed a solution before you?');
    const closeNow = this.#opt.autocloseDelay === 0;
    const s: FakeSolution = {
      id: this.#nextId.solution++,
      itemtype: 'Ticket',
      items_id: t.id,
      content: typeof i.content === 'string' ? i.content : '',
      status: closeNow ? 3 : 2,
      solutiontypes_id: typeof i.solutiontypes_id === 'number' ? i.solutiontypes_id : 0,
    };
    this.solutions.push(s);
    t.status = closeNow ? 6 : 5;
    t.solvedate = now();
    if (closeNow) t.closedate = now();
    t.date_mod = now();
    return new Answer(201, { id: s.id, message: '' }, { Location: `/apirest.php/ITILSolution/${s.id}` });
  }

  #search(url: URL): Answer {
    const criteria: { field: string; searchtype: string; value: string }[] = [];
    for (let n = 0; url.searchParams.has(`criteria[${n}][field]`); n++) {
      criteria.push({
        field: url.searchParams.get(`criteria[${n}][field]`) ?? '',
        searchtype: url.searchParams.get(`criteria[${n}][searchtype]`) ?? '',
        value: url.searchParams.get(`criteria[${n}][value]`) ?? '',
      });
    }
    for (const c of criteria) {
      if (!/^\d+$/.test(c.field) || c.searchtype === '') return err(400, 'ERROR', 'Malformed search criteria', true);
      if (!['1', '2', '12', '21'].includes(c.field)) return err(400, 'ERROR', 'Bad field ID in search criteria', true);
    }
    let rows = [...this.tickets.values()].filter((t) => t.is_deleted === 0);
    for (const c of criteria) {
      rows = rows.filter((t) => {
        if (c.field === '1' && c.searchtype === 'contains') return t.name.toLowerCase().includes(c.value.toLowerCase());
        if (c.field === '21' && c.searchtype === 'contains') return t.content.toLowerCase().includes(c.value.toLowerCase());
        if (c.field === '2' && c.searchtype === 'equals') return String(t.id) === c.value;
        if (c.field === '12' && c.searchtype === 'equals') return c.value === 'notold' ? t.status < 5 : c.value === 'old' ? t.status >= 5 : String(t.status) === c.value;
        return true;
      });
    }
    const range = /^(\d+)-(\d+)$/.exec(url.searchParams.get('range') ?? '0-19');
    const start = Number(range?.[1] ?? 0);
    const end = Number(range?.[2] ?? 19);
    if (start > rows.length) return err(400, 'ERROR_RANGE_EXCEED_TOTAL', `Provided range exceed total count of data: ${rows.length}`, true);
    const page = rows.slice(start, end + 1);
    const display = new Set(['1', ...[...url.searchParams.entries()].filter(([k]) => k.startsWith('forcedisplay')).map(([, v]) => v)]);
    const data = page.map((t) => {
      const row: Record<string, unknown> = {};
      if (display.has('1')) row['1'] = t.name;
      if (display.has('2')) row['2'] = t.id;
      if (display.has('12')) row['12'] = t.status;
      return row;
    });
    const headers: Record<string, string> = { 'Accept-Range': 'Ticket 1000' };
    if (rows.length > 0) headers['Content-Range'] = `${start}-${start + page.length - 1}/${rows.length}`;
    return new Answer(page.length < rows.length ? 206 : 200, { totalcount: rows.length, count: page.length, sort: ['19'], order: ['DESC'], data, 'content-range': `${start}-${start + page.length - 1}/${rows.length}` }, headers);
  }
}

/** `node dist/src/glpi-fake/server.js [PORT]`: run the fake alone (FAKE_GLPI_LATENCY_MS adds latency). */
async function standalone(): Promise<void> {
  const port = Number(process.argv[2] ?? process.env.FAKE_GLPI_PORT ?? 8089);
  const fake = new FakeGlpi({ userTokens: [process.env.GLPI_USER_TOKEN ?? 'demo-user-token'], appToken: process.env.GLPI_APP_TOKEN ?? '' });
  const url = await fake.listen(port);
  const latencyMs = Number(process.env.FAKE_GLPI_LATENCY_MS ?? 0);
  if (latencyMs > 0) fake.setFaults({ latencyMs });
  process.stdout.write(`fake GLPI listening on ${url} (state: http://127.0.0.1:${port}/_fake/state)\n`);
  const stop = () => void fake.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) void standalone();
