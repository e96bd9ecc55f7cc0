// GET /status (HTML, or JSON with ?format=json), its stylesheet, and the page's POSTs: sign in and out,
// retry a dead letter, try a rule. Who may see it:
//
// - with an admin token (admin.token / BRIDGE_ADMIN_TOKEN): a client sending it as a bearer token (the
//   `status` command, curl), or a browser signed in with it (a form that sets an HttpOnly SameSite=Strict
//   session cookie; the token itself is never kept by the browser);
// - without one: loopback clients only, asking for a loopback host name (not through a proxy: a request
//   carrying X-Forwarded-For, Forwarded or X-Real-IP is refused, and a DNS name that resolves to
//   127.0.0.1 is refused too, against DNS rebinding).
//
// Every POST needs the admin token as a bearer header (a page on another site cannot send one), or the
// session cookie plus the session's CSRF token in the form (and no cross-site Origin / Sec-Fetch-Site).

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorCode } from '../../../core/errors.js';
import type { Logger } from '../../../observability/logger.js';
import { countersFromExposition, RateHistory } from './history.js';
import { age, loginPage, messagePage, statusPage, STYLESHEET, type TryOutcome } from './html.js';
import { statusSummary, type ClusterSummary, type ConnectionState, type StatusStoreView, type StatusSummary } from './summary.js';

export type TryInput = { readonly body: unknown } | { readonly deliveryId: number };
export type TryAnswer = { readonly ok: true; readonly result: Readonly<Record<string, unknown>> } | { readonly ok: false; readonly error: string };

/** What the page reads and does, built by the composition from the configuration and the main thread's store. */
export interface StatusSources {
  readonly store: StatusStoreView;
  /** The GLPI web page of a ticket. */
  ticketUrl(id: number): string;
  /** The rules' category names (the decision filter's choices). */
  categories(): readonly string[];
  /** What the rules in force make of a webhook body or a stored alert: the answer `explain` gives. */
  tryRule(input: TryInput, now: number): TryAnswer;
  /** Queue a dead letter again (a creation rendered again with the rules in force); how many were queued. */
  retry(id: number, now: number): { queued: number; rerendered: boolean };
  /** Several bridges on one PostgreSQL: this node, its roles and the other nodes (undefined with SQLite). */
  cluster?(): ClusterSummary | undefined;
}

export interface StatusRouteDeps {
  readonly sources: StatusSources;
  /** The current admin token ('' when none is configured). */
  readonly adminToken: () => string;
  /** Whether an Authorization header carries the admin token (constant time). */
  readonly isAdmin: (authorization: string | undefined) => boolean;
  readonly readiness: () => Promise<Readonly<Record<string, ConnectionState>>>;
  /** Both threads' metrics (the chart's counters). */
  readonly scrape: () => Promise<string>;
  /** The largest webhook body (the try-a-rule form carries one). */
  readonly bodyLimit: number;
  /** Count and log a refused request (the listener's rejection log). */
  readonly rejected: (code: ErrorCode, message: string, req: FastifyRequest) => void;
  readonly logger: Logger;
  readonly now?: () => number;
}

const COOKIE = 'zgb_status';
const SESSION_MS = 12 * 3_600_000;
const MAX_SESSIONS = 64;
/** Wrong sign-ins an address may make per window before it is answered 429 until the window ends. */
const SIGN_IN_FAILURES = 10;
const SIGN_IN_WINDOW_MS = 60_000;
const ACTIONS = ['open', 'follow_up', 'update_severity', 'reopen', 'solve', 'suppress', 'ignore'];

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // same-origin, not no-referrer: with no-referrer, browsers send Origin: null on the page's own form POSTs.
  'referrer-policy': 'same-origin',
  'cache-control': 'no-store',
};

interface Session {
  readonly csrf: string;
  readonly expires: number;
  /** Digest of the admin token it was opened with ('' on loopback without a token): a changed token ends it. */
  readonly token: string;
  /** Opened by signing in (can sign out), or on loopback without a token. */
  readonly login: boolean;
}

type Access = { readonly kind: 'bearer' } | { readonly kind: 'session'; readonly sid: string; readonly session: Session };

const pageQuery = {
  type: 'object',
  properties: {
    page: { type: 'integer', minimum: 1, maximum: 1_000_000 },
    host: { type: 'string', maxLength: 256 },
    category: { type: 'string', maxLength: 256 },
    action: { type: 'string', enum: ['', ...ACTIONS] },
    format: { type: 'string', enum: ['html', 'json'] },
    retried: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    queued: { type: 'integer', minimum: 0, maximum: 1_000_000 },
  },
} as const;

interface PageQuery {
  page?: number;
  host?: string;
  category?: string;
  action?: string;
  format?: 'html' | 'json';
  retried?: number;
  queued?: number;
}

function digest(s: string): string {
  return s === '' ? '' : createHash('sha256').update(s).digest('hex');
}

function sameSecret(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y) && a.length > 0;
}

function cookieOf(req: FastifyRequest, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

const LOOPBACK_HOSTS = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d+)?$/i;

/** A loopback client, not relayed by a proxy on this machine, asking for a loopback name (not a rebound DNS name). */
export function loopbackOnly(req: FastifyRequest): boolean {
  const ip = req.socket.remoteAddress ?? '';
  const loopback = ip === '::1' || /^(::ffff:)?127\./.test(ip);
  const proxied = req.headers['x-forwarded-for'] !== undefined || req.headers.forwarded !== undefined || req.headers['x-real-ip'] !== undefined;
  return loopback && !proxied && LOOPBACK_HOSTS.test(req.headers.host ?? '');
}

/** A form's fields (application/x-www-form-urlencoded), the first value of each. */
function formFields(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(text)) if (!(k in out)) out[k] = v;
  return out;
}

export function registerStatusRoutes(app: FastifyInstance, deps: StatusRouteDeps): void {
  const now = deps.now ?? Date.now;
  const log = deps.logger.child({ component: 'status-page' });
  const sessions = new Map<string, Session>();
  /** Wrong sign-ins by client address in the current window (a guessing client is slowed to 10 a minute). */
  const failures = new Map<string, { n: number; since: number }>();
  const history = new RateHistory();
  let sampler: NodeJS.Timeout | undefined;

  const sample = async (): Promise<void> => {
    try {
      history.sample(now(), countersFromExposition(await deps.scrape()));
    } catch (e) {
      log.debug({ err: (e as Error).message }, 'reading the counters for the chart failed');
    }
  };
  app.addHook('onReady', async () => {
    await sample();
    sampler = setInterval(() => void sample(), 60_000);
    sampler.unref();
  });
  app.addHook('onClose', async () => {
    if (sampler) clearInterval(sampler);
  });

  const openSession = (reply: FastifyReply, req: FastifyRequest, login: boolean): { sid: string; session: Session } => {
    const t = now();
    for (const [sid, s] of sessions) if (s.expires <= t) sessions.delete(sid);
    while (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value as string);
    const sid = randomBytes(32).toString('base64url');
    const session: Session = { csrf: randomBytes(24).toString('base64url'), expires: t + SESSION_MS, token: digest(deps.adminToken()), login };
    sessions.set(sid, session);
    const secure = req.protocol === 'https' ? '; Secure' : '';
    reply.header('set-cookie', `${COOKIE}=${sid}; Path=/status; HttpOnly; SameSite=Strict; Max-Age=${SESSION_MS / 1000}${secure}`);
    return { sid, session };
  };

  /** Who is asking when an admin token is configured: the bearer, a signed-in session, or someone to sign in. */
  const access = (req: FastifyRequest, token: string): Access | 'login' => {
    if (deps.isAdmin(req.headers.authorization)) return { kind: 'bearer' };
    const sid = cookieOf(req, COOKIE);
    const session = sid !== undefined ? sessions.get(sid) : undefined;
    if (sid !== undefined && session && session.expires > now() && session.token === digest(token)) return { kind: 'session', sid, session };
    return 'login';
  };

  const send = (reply: FastifyReply, status: number, html: string) => reply.code(status).headers(SECURITY_HEADERS).type('text/html; charset=utf-8').send(html);
  const forbidden = (req: FastifyRequest, reply: FastifyReply) => {
    deps.rejected('BRIDGE_UNAUTHORIZED', 'status page: no admin token is configured and the client is not on loopback (or came through a proxy)', req);
    return send(reply, 403, messagePage('Status page unavailable', 'No admin token is configured (admin.token, BRIDGE_ADMIN_TOKEN): the status page is served only to this machine\'s loopback address, asked for as localhost or 127.0.0.1, not through a proxy. Set an admin token to reach it from elsewhere.'));
  };

  /** GET: a session on loopback without a token is opened on the first visit. */
  const viewer = (req: FastifyRequest, reply: FastifyReply): Access | 'login' | 'forbidden' => {
    const token = deps.adminToken();
    if (token === '') {
      if (!loopbackOnly(req)) return 'forbidden';
      const sid = cookieOf(req, COOKIE);
      const session = sid !== undefined ? sessions.get(sid) : undefined;
      if (sid !== undefined && session && session.expires > now() && session.token === '') return { kind: 'session', sid, session };
      return { kind: 'session', ...openSession(reply, req, false) };
    }
    return access(req, token);
  };

  /** POST: the bearer token, or the session with its CSRF token, from this origin. */
  const actor = (req: FastifyRequest, fields: Record<string, string>): Access | undefined => {
    const token = deps.adminToken();
    if (token !== '' && deps.isAdmin(req.headers.authorization)) return { kind: 'bearer' };
    if (token === '' && !loopbackOnly(req)) return undefined;
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none') return undefined;
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `${req.protocol}://${req.headers.host ?? ''}`) return undefined;
    const sid = cookieOf(req, COOKIE);
    const session = sid !== undefined ? sessions.get(sid) : undefined;
    if (sid === undefined || !session || session.expires <= now() || session.token !== digest(token)) return undefined;
    if (!sameSecret(fields.csrf ?? '', session.csrf)) return undefined;
    return { kind: 'session', sid, session };
  };

  const summary = async (q: PageQuery): Promise<StatusSummary> => {
    await sample();
    const t = now();
    let connections: Record<string, ConnectionState>;
    try {
      connections = { ...(await deps.readiness()) };
    } catch (e) {
      connections = { bridge: { ok: false, detail: `readiness failed: ${(e as Error).message}` } };
    }
    // What Zabbix's webhook last delivered (informational: a quiet hour is not a fault).
    const last = history.lastAlertAt;
    connections.zabbix_webhook = { ok: true, detail: last === undefined ? 'no alert accepted since the bridge started' : `last alert accepted ${age(Math.max(0, Math.round((t - last) / 1000)))} ago` };
    const cluster = deps.sources.cluster?.();
    return statusSummary(
      deps.sources.store,
      { page: q.page ?? 1, filter: { host: q.host, category: q.category, action: q.action } as { host?: string; category?: string; action?: string } },
      { now: t, source: 'daemon', ticketUrl: (id) => deps.sources.ticketUrl(id), connections, history: history.rates(t), ...(cluster ? { cluster } : {}) },
    );
  };

  const refuseAction = (req: FastifyRequest, reply: FastifyReply) => {
    deps.rejected('BRIDGE_UNAUTHORIZED', 'status page action without the admin token or a valid session and CSRF token', req);
    return send(reply, 403, messagePage('Refused', 'This action needs the admin token, or a signed-in session and the form it sent (reload the status page and try again).'));
  };

  app.register(async (scope) => {
    // Forms (sign in, retry, try a rule): this scope only; the webhook keeps refusing anything but JSON.
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: deps.bodyLimit * 3 + 16_384 }, (_req, body, done) => {
      done(null, formFields(String(body)));
    });
    const fieldsOf = (req: FastifyRequest): Record<string, string> => {
      const b = req.body;
      if (typeof b !== 'object' || b === null) return {};
      return Object.fromEntries(Object.entries(b as Record<string, unknown>).filter(([, v]) => typeof v === 'string' || typeof v === 'number').map(([k, v]) => [k, String(v)]));
    };
    const wantsJson = (req: FastifyRequest) => (req.headers.accept ?? '').includes('application/json') && !(req.headers.accept ?? '').includes('text/html');

    scope.get('/status/style.css', async (_req, reply) => reply.headers({ ...SECURITY_HEADERS, 'cache-control': 'max-age=300' }).type('text/css; charset=utf-8').send(STYLESHEET));

    scope.get<{ Querystring: PageQuery }>('/status', { schema: { querystring: pageQuery } }, async (req, reply) => {
      const who = viewer(req, reply);
      if (who === 'forbidden') return forbidden(req, reply);
      if (who === 'login') {
        if (req.query.format === 'json') {
          deps.rejected('BRIDGE_UNAUTHORIZED', 'missing or wrong admin bearer token (admin.token)', req);
          return reply.code(401).headers(SECURITY_HEADERS).send({ error: { code: 'BRIDGE_UNAUTHORIZED', message: 'missing or wrong admin bearer token (admin.token)' } });
        }
        return send(reply, 401, loginPage());
      }
      let s: Awaited<ReturnType<typeof summary>>;
      try {
        s = await summary(req.query);
      } catch (e) {
        // The store cannot be read (PostgreSQL down, a file gone): say so, as /readyz does, instead of a 500.
        const message = `the store cannot be read: ${(e as Error).message}`;
        if (req.query.format === 'json') return reply.code(503).headers(SECURITY_HEADERS).send({ error: { code: 'BRIDGE_STORE_UNAVAILABLE', message } });
        return send(reply, 503, messagePage('zabbix-glpi-bridge: store unavailable', `${message}. Webhooks are answered 503 meanwhile (Zabbix retries); /readyz says the same.`));
      }
      if (req.query.format === 'json') return reply.headers(SECURITY_HEADERS).send(s);
      const flash =
        req.query.retried !== undefined
          ? req.query.queued
            ? `Dead letter #${req.query.retried} queued again; it runs within seconds.`
            : `Job #${req.query.retried} is not a dead letter (already retried, or done).`
          : undefined;
      return send(reply, 200, statusPage(s, { csrf: who.kind === 'session' ? who.session.csrf : '', canLogout: who.kind === 'session' && who.session.login, categories: deps.sources.categories(), ...(flash ? { flash } : {}) }));
    });

    scope.post('/status/login', async (req, reply) => {
      const token = deps.adminToken();
      if (token === '') return reply.redirect('/status', 303);
      const fields = fieldsOf(req);
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== `${req.protocol}://${req.headers.host ?? ''}`) return refuseAction(req, reply);
      const t = now();
      const f = failures.get(req.ip);
      if (f && t - f.since < SIGN_IN_WINDOW_MS && f.n >= SIGN_IN_FAILURES) {
        deps.rejected('BRIDGE_UNAUTHORIZED', `status page sign-in refused: ${SIGN_IN_FAILURES} wrong tokens from this address within a minute`, req);
        return send(reply.header('retry-after', String(Math.ceil((f.since + SIGN_IN_WINDOW_MS - t) / 1000))), 429, loginPage('Too many wrong tokens from this address: wait a minute.'));
      }
      if (!deps.isAdmin(`Bearer ${fields.token ?? ''}`)) {
        if (!f || t - f.since >= SIGN_IN_WINDOW_MS) {
          if (failures.size >= 1000) failures.clear();
          failures.set(req.ip, { n: 1, since: t });
        } else f.n++;
        deps.rejected('BRIDGE_UNAUTHORIZED', 'status page sign-in with a wrong admin token', req);
        return send(reply, 401, loginPage('Wrong admin token.'));
      }
      failures.delete(req.ip);
      openSession(reply, req, true);
      log.info({ ip: req.ip }, 'signed in to the status page');
      return reply.headers(SECURITY_HEADERS).redirect('/status', 303);
    });

    scope.post('/status/logout', async (req, reply) => {
      const who = actor(req, fieldsOf(req));
      if (who?.kind === 'session') sessions.delete(who.sid);
      reply.header('set-cookie', `${COOKIE}=; Path=/status; HttpOnly; SameSite=Strict; Max-Age=0`);
      return reply.headers(SECURITY_HEADERS).redirect('/status', 303);
    });

    scope.post('/status/retry', async (req, reply) => {
      const fields = fieldsOf(req);
      const who = actor(req, fields);
      if (!who) return refuseAction(req, reply);
      const id = fields.id ?? '';
      if (!/^\d{1,15}$/.test(id)) return reply.code(400).headers(SECURITY_HEADERS).send({ error: { code: 'BRIDGE_INVALID_FIELD', message: 'id: a job number', field: 'id' } });
      const r = deps.sources.retry(Number(id), now());
      log.info({ job: Number(id), queued: r.queued, rerendered: r.rerendered, by: who.kind }, r.queued ? 'dead letter queued again from the status page' : 'status page retry: not a dead letter');
      if (who.kind === 'bearer' && wantsJson(req)) return reply.headers(SECURITY_HEADERS).send({ job: Number(id), queued: r.queued, rerendered: r.rerendered });
      return reply.headers(SECURITY_HEADERS).redirect(`/status?retried=${id}&queued=${r.queued}#dead`, 303);
    });

    scope.post('/status/try', async (req, reply) => {
      const fields = fieldsOf(req);
      const who = actor(req, fields);
      if (!who) return refuseAction(req, reply);
      const t = now();
      let tried: TryOutcome;
      const delivery = fields.delivery ?? '';
      if (/^\d{1,15}$/.test(delivery)) {
        const a = deps.sources.tryRule({ deliveryId: Number(delivery) }, t);
        tried = { input: 'delivery', deliveryId: Number(delivery), ...(a.ok ? { result: a.result } : { error: a.error }) };
      } else {
        const text = fields.body ?? '';
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch (e) {
          body = undefined;
          tried = { input: 'body', body: text, error: `not valid JSON: ${(e as Error).message}` };
        }
        if (body !== undefined) {
          const a = deps.sources.tryRule({ body }, t);
          tried = { input: 'body', body: text, ...(a.ok ? { result: a.result } : { error: a.error }) };
        }
      }
      tried ??= { input: 'body', error: 'nothing to try' };
      if (who.kind === 'bearer' && wantsJson(req)) return reply.code(tried.error !== undefined ? 400 : 200).headers(SECURITY_HEADERS).send(tried.error !== undefined ? { error: tried.error } : tried.result);
      const s = await summary({});
      return send(reply, 200, statusPage(s, { csrf: who.kind === 'session' ? who.session.csrf : '', canLogout: who.kind === 'session' && who.session.login, categories: deps.sources.categories(), tried }));
    });
  });
}
