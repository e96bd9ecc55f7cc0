import { afterEach, describe, expect, it } from '@jest/globals';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { buildServer, type HttpLimits } from '../../src/adapters/http/server.js';
import { countersFromExposition, RateHistory } from '../../src/adapters/http/status/history.js';
import { loopbackOnly, type StatusSources, type TryInput } from '../../src/adapters/http/status/routes.js';
import { MemoryStore } from '../../src/adapters/store/memory/memory-store.js';
import { SqliteStore } from '../../src/adapters/store/sqlite/index.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Incident, JobSpec } from '../../src/core/decide.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';

/**
 * The status page on a real loopback socket (free port; the HTTP listener's own routes and hooks): who may see it
 * (admin token as bearer or a signed-in session; loopback only without a token), CSRF on its POSTs,
 * hostile text from Zabbix and GLPI rendered as text, bounded query parameters, paging.
 */

const ADMIN = 'admin-token-9876543210';
const HOSTILE = '<script>alert(1)</script>';
const T = 1_800_000_000_000;

const LIMITS: HttpLimits = { requestTimeoutMs: 30_000, headerTimeoutMs: 10_000, keepAliveTimeoutMs: 5_000, maxRequestsPerSocket: 1000, maxConnections: 256 };

let app: FastifyInstance | undefined;
let sqlite: { store: SqliteStore; dir: string } | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
  sqlite?.store.close();
  if (sqlite) rmSync(sqlite.dir, { recursive: true, force: true });
  sqlite = undefined;
});

/** The store the page reads: in memory, or the SQLite store in a fresh folder. */
type AnyStore = MemoryStore | SqliteStore;

interface Answer {
  readonly statusCode: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  json(): unknown;
}

interface Ask {
  readonly method?: string;
  readonly url: string;
  readonly headers?: Record<string, string>;
  readonly payload?: string | object;
}

/** One request over a fresh connection, headers (Host included) exactly as given. */
function ask(a: FastifyInstance, r: Ask): Promise<Answer> {
  const { port } = a.server.address() as AddressInfo;
  const payload = r.payload === undefined ? undefined : typeof r.payload === 'string' ? r.payload : JSON.stringify(r.payload);
  const headers: Record<string, string> = {
    host: `127.0.0.1:${port}`,
    ...(typeof r.payload === 'object' ? { 'content-type': 'application/json' } : {}),
    ...(payload !== undefined ? { 'content-length': String(Buffer.byteLength(payload)) } : {}),
    ...r.headers,
  };
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: r.url, method: r.method ?? 'GET', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) as unknown });
      });
    });
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

const incident = (fingerprint: string, over: Partial<Incident> = {}): Incident => ({
  fingerprint, cycle: 1, status: 'open', marker: '[zbx:m]', category: 'cpu', severity: 'high', urgency: 4, impact: 4, openCount: 1, occurrences: 1, openedAt: T, ...over,
});
const create: JobSpec = {
  type: 'create_ticket', delayMs: 0,
  ticket: { name: 'n', content: 'c', marker: '[zbx:m]', urgency: 3, impact: 3, type: 1, itilcategories_id: 0, entities_id: 0, requesttypes_id: 0, groups_id_assign: 0 },
};

interface Setup {
  readonly app: FastifyInstance;
  readonly store: AnyStore;
  readonly retried: number[];
  readonly tried: TryInput[];
  readonly logs: string[];
}

async function setup(opts: { admin?: string; fill?: (s: AnyStore) => void; sqlite?: boolean } = {}): Promise<Setup> {
  let store: AnyStore = new MemoryStore();
  if (opts.sqlite) {
    const dir = mkdtempSync(join(tmpdir(), 'zgb-status-'));
    sqlite = { store: new SqliteStore(join(dir, 'bridge.db')), dir };
    store = sqlite.store;
  }
  opts.fill?.(store);
  const retried: number[] = [];
  const tried: TryInput[] = [];
  const logs: string[] = [];
  const sink = new Writable({ write: (c: Buffer, _e, done) => (logs.push(c.toString()), done()) });
  const metrics = createMetrics({ processMetrics: false });
  const sources: StatusSources = {
    store,
    ticketUrl: (id) => `http://glpi.example/front/ticket.form.php?id=${id}`,
    categories: () => ['cpu', 'disk', HOSTILE],
    tryRule: (input) => {
      tried.push(input);
      return { ok: true, result: { category: 'cpu', action: 'open', reason: `new problem on ${HOSTILE}` } };
    },
    retry: (id) => {
      retried.push(id);
      return { queued: 1, rerendered: true };
    },
  };
  app = buildServer({
    logger: createLogger('info', sink),
    metrics,
    intake: { accept: async () => ({ deliveryId: 1, duplicate: false }) },
    webhookPath: '/zabbix/webhook',
    bodyLimit: 64 * 1024,
    limits: LIMITS,
    token: () => 'webhook-token-0123456789',
    adminToken: () => opts.admin ?? ADMIN,
    metricsAuth: () => false,
    timezoneOffsetMinutes: () => 0,
    readiness: async () => ({ glpi: { ok: false, detail: `GLPI_LOGIN_FAILED ${HOSTILE}` }, store: { ok: true, detail: 'writable' } }),
    scrape: async () => metrics.registry.metrics(),
    isStopping: () => false,
    status: sources,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, store, retried, tried, logs };
}

function hostileStore(s: AnyStore): void {
  s.transaction(() => s.putIncident(incident(`host=${HOSTILE}`), T), 'crash-safe');
  s.putTicket(`host=${HOSTILE}`, 1, 7, '[zbx:m]', T);
  s.recordDecisions([{ at: T, deliveryId: 3, eventId: '3', kind: 'problem', host: HOSTILE, fingerprint: `host=${HOSTILE}`, category: 'cpu', severity: 'high', action: 'open', reason: `new problem "${HOSTILE}"`, jobs: ['create_ticket'] }], 500);
  const id = s.enqueue('host=other', 1, create, T, T);
  s.claimReady(T, 10, new Set());
  s.buryJob(id, `GLPI_PERMANENT ERROR_GLPI_ADD: <img src=x onerror=alert(2)>`, T);
}

const bearer = { authorization: `Bearer ${ADMIN}` };

async function signIn(a: FastifyInstance): Promise<{ cookie: string; csrf: string }> {
  const res = await ask(a, { method: 'POST', url: '/status/login', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `token=${encodeURIComponent(ADMIN)}` });
  expect(res.statusCode).toBe(303);
  const setCookie = String(res.headers['set-cookie']);
  expect(setCookie).toMatch(/^zgb_status=[\w-]{40,}; Path=\/status; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
  const cookie = setCookie.split(';')[0]!;
  const page = await ask(a, { url: '/status', headers: { cookie } });
  expect(page.statusCode).toBe(200);
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)?.[1];
  expect(csrf).toBeDefined();
  return { cookie, csrf: csrf! };
}

describe('the status page behind the admin token', () => {
  it('asks to sign in; the bearer token or the sign-in form opens it; a wrong token does not', async () => {
    const { app: a } = await setup();
    const anonymous = await ask(a, { url: '/status' });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.body).toContain('action="/status/login"');
    expect(anonymous.body).not.toContain('Open incidents');
    expect((await ask(a, { url: '/status?format=json' })).statusCode).toBe(401);
    expect((await ask(a, { url: '/status', headers: { authorization: 'Bearer webhook-token-0123456789' } })).statusCode).toBe(401);
    const wrong = await ask(a, { method: 'POST', url: '/status/login', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'token=guess' });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.headers['set-cookie']).toBeUndefined();
    expect((await ask(a, { url: '/status', headers: bearer })).statusCode).toBe(200);
    await signIn(a);
  });

  it('slows down an address guessing the token: after 10 wrong sign-ins in a minute, 429 even for the right one', async () => {
    const { app: a } = await setup();
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    for (let i = 0; i < 10; i++) expect((await ask(a, { method: 'POST', url: '/status/login', headers: form, payload: `token=guess-${i}` })).statusCode).toBe(401);
    const refused = await ask(a, { method: 'POST', url: '/status/login', headers: form, payload: `token=${ADMIN}` });
    expect(refused.statusCode).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(refused.headers['set-cookie']).toBeUndefined();
    // The bearer token (the status command, scripts) is not held back.
    expect((await ask(a, { url: '/status', headers: bearer })).statusCode).toBe(200);
  });

  it('sends a Content-Security-Policy without inline scripts, no script at all, and its stylesheet from its own route', async () => {
    const { app: a } = await setup({ fill: hostileStore });
    const res = await ask(a, { url: '/status', headers: bearer });
    expect(res.headers['content-security-policy']).toBe("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toContain('<link rel="stylesheet" href="/status/style.css">');
    expect(res.body).not.toMatch(/<script|<[^>]*\s(style|on\w+)=/i);
    const css = await ask(a, { url: '/status/style.css' });
    expect(css.statusCode).toBe(200);
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
  });

  it('renders host names, reasons, GLPI errors and connection details from Zabbix and GLPI as text', async () => {
    const { app: a } = await setup({ fill: hostileStore });
    const res = await ask(a, { url: '/status', headers: bearer });
    expect(res.statusCode).toBe(200);
    expect(res.body).not.toContain('<script>');
    expect(res.body).not.toContain('<img');
    expect(res.body).toContain('&#60;script&#62;alert(1)&#60;/script&#62;');
    expect(res.body).toContain('&#60;img src=x onerror=alert(2)&#62;');
    // The incident, its ticket link, the decision with its reason, the dead letter with GLPI's error and a retry button.
    expect(res.body).toContain('<a href="http://glpi.example/front/ticket.form.php?id=7" rel="noreferrer noopener" target="_blank">#7</a>');
    expect(res.body).toContain('new problem &#34;&#60;script&#62;');
    expect(res.body).toMatch(/<tr data-job="1">.*GLPI_PERMANENT ERROR_GLPI_ADD.*<button type="submit" class="retry">Retry<\/button>/s);
    const json = (await ask(a, { url: '/status?format=json', headers: bearer })).json() as { counts: { openIncidents: number; dead: number }; decisions: { rows: { host: string }[] } };
    expect(json.counts).toMatchObject({ openIncidents: 1, dead: 1 });
    expect(json.decisions.rows[0]?.host).toBe(HOSTILE);
    expect(res.body).toMatch(/<th scope="row">zabbix_webhook<\/th><td class="ok">ok<\/td><td>no alert accepted since the bridge started<\/td>/);
  });

  it('retries a dead letter only with the session\'s CSRF token from this origin, or the bearer token', async () => {
    const { app: a, retried } = await setup({ fill: hostileStore });
    const { cookie, csrf } = await signIn(a);
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    // The cookie alone (what a cross-site form would carry, were it sent at all) is not enough.
    expect((await ask(a, { method: 'POST', url: '/status/retry', headers: { ...form, cookie }, payload: 'id=1' })).statusCode).toBe(403);
    expect((await ask(a, { method: 'POST', url: '/status/retry', headers: { ...form, cookie }, payload: 'id=1&csrf=wrong' })).statusCode).toBe(403);
    expect((await ask(a, { method: 'POST', url: '/status/retry', headers: { ...form, cookie, origin: 'https://evil.example' }, payload: `id=1&csrf=${csrf}` })).statusCode).toBe(403);
    expect((await ask(a, { method: 'POST', url: '/status/retry', headers: { ...form, cookie, 'sec-fetch-site': 'cross-site' }, payload: `id=1&csrf=${csrf}` })).statusCode).toBe(403);
    expect((await ask(a, { method: 'POST', url: '/status/retry', headers: form, payload: `id=1&csrf=${csrf}` })).statusCode).toBe(403);
    expect(retried).toEqual([]);
    const ok = await ask(a, { method: 'POST', url: '/status/retry', headers: { ...form, cookie, origin: `http://127.0.0.1:${(a.server.address() as AddressInfo).port}`, 'sec-fetch-site': 'same-origin' }, payload: `id=1&csrf=${csrf}` });
    expect(ok.statusCode).toBe(303);
    expect(ok.headers.location).toBe('/status?retried=1&queued=1#dead');
    expect((await ask(a, { url: '/status?retried=1&queued=1', headers: { cookie } })).body).toContain('Dead letter #1 queued again');
    const api = await ask(a, { method: 'POST', url: '/status/retry', headers: { ...bearer, accept: 'application/json' }, payload: { id: 1 } });
    expect(api.json()).toEqual({ job: 1, queued: 1, rerendered: true });
    expect(retried).toEqual([1, 1]);
    expect((await ask(a, { method: 'POST', url: '/status/retry', headers: bearer, payload: { id: '1; DROP' } })).statusCode).toBe(400);
    // Signing out ends the session.
    await ask(a, { method: 'POST', url: '/status/logout', headers: { ...form, cookie }, payload: `csrf=${csrf}` });
    expect((await ask(a, { url: '/status', headers: { cookie } })).statusCode).toBe(401);
  });

  it('tries a rule on a pasted body or a recent alert (CSRF-safe like retry), the answer rendered as text', async () => {
    const { app: a, tried } = await setup({ fill: hostileStore });
    const { cookie, csrf } = await signIn(a);
    const form = { 'content-type': 'application/x-www-form-urlencoded', cookie };
    expect((await ask(a, { method: 'POST', url: '/status/try', headers: form, payload: 'body=%7B%7D' })).statusCode).toBe(403);
    const pasted = await ask(a, { method: 'POST', url: '/status/try', headers: form, payload: `csrf=${csrf}&body=${encodeURIComponent('{"event_id":"1"}')}` });
    expect(pasted.statusCode).toBe(200);
    expect(pasted.body).toContain('id="try-result"');
    expect(pasted.body).toContain('new problem on &#60;script&#62;');
    expect(pasted.body).not.toContain('<script>');
    const picked = await ask(a, { method: 'POST', url: '/status/try', headers: form, payload: `csrf=${csrf}&body=&delivery=3` });
    expect(picked.statusCode).toBe(200);
    expect(tried).toEqual([{ body: { event_id: '1' } }, { deliveryId: 3 }]);
    const invalid = await ask(a, { method: 'POST', url: '/status/try', headers: form, payload: `csrf=${csrf}&body=${encodeURIComponent('{nope')}` });
    expect(invalid.body).toMatch(/<p class="error" id="try-result" role="alert">not valid JSON/);
  });

  it('bounds its query parameters', async () => {
    const { app: a } = await setup();
    expect((await ask(a, { url: `/status?host=${'x'.repeat(257)}`, headers: bearer })).statusCode).toBe(400);
    expect((await ask(a, { url: '/status?page=abc', headers: bearer })).statusCode).toBe(400);
    expect((await ask(a, { url: '/status?action=drop', headers: bearer })).statusCode).toBe(400);
    expect((await ask(a, { url: `/status?host=${'x'.repeat(256)}&page=3&action=open`, headers: bearer })).statusCode).toBe(200);
  });

  it.each([['memory', false], ['SQLite', true]])('pages 10,000 open incidents 50 at a time, and filters decisions by host, category and action (%s store)', async (_name, onSqlite) => {
    const { app: a } = await setup({
      sqlite: onSqlite,
      fill: (s) => {
        s.transaction(() => {
          for (let i = 0; i < 10_000; i++) s.putIncident(incident(`host=h${i}`, { occurrences: i }), T + i);
        }, 'crash-safe');
        s.recordDecisions(
          [
            { at: T, deliveryId: 1, eventId: '1', kind: 'problem', host: 'db-1', fingerprint: 'host=db-1', category: 'disk', severity: 'high', action: 'open', reason: 'r1', jobs: [] },
            { at: T, deliveryId: 2, eventId: '2', kind: 'update', host: 'web-1', fingerprint: 'host=web-1', category: 'cpu', severity: 'high', action: 'follow_up', reason: 'r2', jobs: [] },
          ],
          500,
        );
      },
    });
    const first = await ask(a, { url: '/status', headers: bearer });
    expect(first.body.match(/<tr><td><span class="note">queued<\/span><\/td>/g)).toHaveLength(50);
    expect(first.body).toContain('page 1 of 200');
    expect(first.body).toContain('host=h9999');
    const last = await ask(a, { url: '/status?page=200', headers: bearer });
    expect(last.body).toContain('page 200 of 200');
    expect(last.body).toContain('host=h0<');
    expect((await ask(a, { url: '/status?page=9999', headers: bearer })).body).toContain('page 200 of 200');
    const json = (await ask(a, { url: '/status?format=json&host=db-1', headers: bearer })).json() as { decisions: { rows: { reason: string }[] } };
    expect(json.decisions.rows.map((r) => r.reason)).toEqual(['r1']);
    const byAction = (await ask(a, { url: '/status?format=json&action=follow_up&category=cpu', headers: bearer })).json() as { decisions: { rows: { reason: string }[] } };
    expect(byAction.decisions.rows.map((r) => r.reason)).toEqual(['r2']);
  });
});

describe('the status page without an admin token', () => {
  it('is served to loopback clients asking for a loopback name, with a session for its forms; refused otherwise', async () => {
    const { app: a, retried } = await setup({ admin: '', fill: hostileStore });
    const local = await ask(a, { url: '/status', headers: { host: '127.0.0.1:8088' } });
    expect(local.statusCode).toBe(200);
    const cookie = String(local.headers['set-cookie']).split(';')[0]!;
    const csrf = /name="csrf" value="([^"]+)"/.exec(local.body)![1]!;
    expect(local.body).not.toContain('Sign out');
    // Another host (a socket test cannot come from one: the check itself, on the request as fastify gives it).
    const from = (remoteAddress: string, host = '127.0.0.1:8088') => ({ socket: { remoteAddress }, headers: { host } }) as unknown as FastifyRequest;
    expect([from('127.0.0.1'), from('::1', '[::1]:8088'), from('::ffff:127.0.0.1', 'localhost:8088')].map(loopbackOnly)).toEqual([true, true, true]);
    expect([from('10.1.2.3'), from('::ffff:10.1.2.3'), from('192.168.1.9', 'localhost:8088')].map(loopbackOnly)).toEqual([false, false, false]);
    expect((await ask(a, { url: '/status', headers: { 'x-forwarded-for': '203.0.113.9' } })).statusCode).toBe(403);
    // DNS rebinding: a name of the attacker's that resolves to 127.0.0.1.
    expect((await ask(a, { url: '/status', headers: { host: 'rebind.evil.example:8088' } })).statusCode).toBe(403);
    const form = { 'content-type': 'application/x-www-form-urlencoded', cookie, host: 'localhost:8088' };
    expect((await ask(a, { method: 'POST', url: '/status/retry', headers: form, payload: 'id=1' })).statusCode).toBe(403);
    expect((await ask(a, { method: 'POST', url: '/status/retry', headers: form, payload: `id=1&csrf=${csrf}` })).statusCode).toBe(303);
    expect((await ask(a, { method: 'POST', url: '/status/retry', headers: { ...form, 'x-forwarded-for': '203.0.113.9' }, payload: `id=1&csrf=${csrf}` })).statusCode).toBe(403);
    expect(retried).toEqual([1]);
  });
});

describe('the chart\'s per-minute history', () => {
  it('reads alerts accepted, tickets opened and GLPI requests from the exposition both threads make', () => {
    const text = [
      '# HELP zgb_alerts_received_total Alerts received',
      'zgb_alerts_received_total{source="webhook",kind="problem",outcome="accepted"} 5',
      'zgb_alerts_received_total{source="poller",kind="recovery",outcome="accepted"} 2',
      'zgb_alerts_received_total{source="webhook",kind="problem",outcome="duplicate"} 9',
      'zgb_tickets_total{operation="opened"} 3',
      'zgb_tickets_total{operation="followed_up"} 4',
      'zgb_glpi_requests_total{operation="createTicket",status="201"} 3',
      'zgb_glpi_requests_total{operation="initSession",status="200"} 1',
      'zgb_glpi_request_duration_seconds_count{operation="createTicket"} 3',
    ].join('\n');
    expect(countersFromExposition(text)).toEqual({ alerts: 7, tickets: 3, glpiRequests: 4 });
  });

  it('keeps each minute\'s increase, 0 for minutes without one, the window bounded', () => {
    const h = new RateHistory(5);
    const M = 60_000;
    const t0 = 1000 * M;
    h.sample(t0 + 1000, { alerts: 2, tickets: 1, glpiRequests: 3 });
    h.sample(t0 + 30_000, { alerts: 4, tickets: 1, glpiRequests: 5 });
    h.sample(t0 + M + 10, { alerts: 10, tickets: 2, glpiRequests: 9 });
    h.sample(t0 + 3 * M + 10, { alerts: 11, tickets: 2, glpiRequests: 9 });
    expect(h.rates(t0 + 3 * M + 20)).toEqual({
      minutes: [t0 - M, t0, t0 + M, t0 + 2 * M, t0 + 3 * M],
      alerts: [0, 4, 6, 0, 1],
      tickets: [0, 1, 1, 0, 0],
      glpiRequests: [0, 5, 4, 0, 0],
    });
    h.sample(t0 + 9 * M, { alerts: 11, tickets: 2, glpiRequests: 9 });
    expect(h.rates(t0 + 9 * M).minutes).toHaveLength(5);
    expect(h.rates(t0 + 9 * M).alerts).toEqual([0, 0, 0, 0, 0]);
  });
});
