import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import nock from 'nock';
import { useNock } from '../helpers/nock.js';
import { pino } from 'pino';
import { decodeEntities, GlpiClient, type GlpiClientOptions } from '../../src/adapters/glpi/client.js';
import { fromNetwork, retryAfterMs } from '../../src/adapters/glpi/outcome.js';
import { FakeGlpi } from '../../src/glpi-fake/server.js';
import { Secret } from '../../src/config/secret.js';
import type { TicketDraft } from '../../src/core/decide.js';
import { failure } from '../helpers/remote.js';

const BASE = 'http://glpi.test';
const API = `${BASE}/apirest.php`;

function client(extra: Partial<GlpiClientOptions> = {}): GlpiClient {
  return new GlpiClient({
    url: API,
    appToken: new Secret('app-secret-123'),
    userToken: new Secret('user-secret-456'),
    username: '',
    password: new Secret(''),
    timeoutMs: 2000,
    logger: pino({ level: 'silent' }),
    externalId: 'off',
    ...extra,
  });
}

/** A client whose log lines are kept. */
function loggingClient(extra: Partial<GlpiClientOptions> = {}): { c: GlpiClient; logs: Record<string, unknown>[] } {
  const logs: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  return { c: client({ logger, ...extra }), logs };
}

const draft: TicketDraft = {
  name: '[zbx:abc] [cpu] High CPU',
  content: 'body',
  marker: '[zbx:abc]',
  urgency: 5,
  impact: 4,
  type: 1,
  itilcategories_id: 11,
  entities_id: 0,
  requesttypes_id: 0,
  groups_id_assign: 3,
};

/** The bridge's own GLPI user, as initSession with the full session tells it. */
const ME = { glpiID: 7, glpiname: 'zabbix-bridge' };

function login(scope: nock.Scope, token = 'sess-1', session: Record<string, unknown> | null = ME): nock.Scope {
  return scope
    .get('/apirest.php/initSession')
    .query({ get_full_session: 'true' })
    .matchHeader('app-token', 'app-secret-123')
    .matchHeader('authorization', 'user_token user-secret-456')
    .reply(200, session ? { session_token: token, session } : { session_token: token });
}

useNock();
afterEach(() => nock.cleanAll());

describe('GlpiClient', () => {
  it('opens one session, reuses it, and sends the ticket fields GLPI expects', async () => {
    const scope = login(nock(BASE))
      .post('/apirest.php/Ticket', {
        input: { name: draft.name, content: 'body', urgency: 5, impact: 4, type: 1, entities_id: 0, itilcategories_id: 11, _groups_id_assign: 3 },
      })
      .matchHeader('session-token', 'sess-1')
      .reply(201, { id: 42, message: '' })
      .post('/apirest.php/Ticket/42/ITILFollowup', { input: { itemtype: 'Ticket', items_id: 42, content: 'again', is_private: 0, _no_reopen: 1 } })
      .matchHeader('session-token', 'sess-1')
      .reply(201, { id: 1, message: '' });
    const c = client();
    expect(await c.createTicket(draft)).toBe(42);
    expect(await c.addFollowup(42, 'again', { isPrivate: false })).toBe(1);
    expect(scope.isDone()).toBe(true);
    expect(c.ticketUrl(42)).toBe(`${BASE}/front/ticket.form.php?id=42`);
  });

  it('re-opens an expired session once and retries the call, without counting a failure', async () => {
    const scope = login(nock(BASE), 'old')
      .post('/apirest.php/Ticket')
      .matchHeader('session-token', 'old')
      .reply(401, ['ERROR_SESSION_TOKEN_INVALID', 'session_token seems invalid'])
      .get('/apirest.php/initSession')
      .query(true)
      .reply(200, { session_token: 'new' })
      .post('/apirest.php/Ticket')
      .matchHeader('session-token', 'new')
      .reply(201, { id: 7, message: '' });
    const c = client();
    expect(await c.createTicket(draft)).toBe(7);
    expect(scope.isDone()).toBe(true);
  });

  it('parallel calls hitting an expired session share one new login (single-flight)', async () => {
    let logins = 0;
    nock(BASE)
      .get('/apirest.php/initSession')
      .query(true)
      .times(5)
      .reply(() => {
        logins++;
        return [200, { session_token: `s${logins}` }];
      })
      .post(/\/apirest\.php\/Ticket\/\d+\/ITILFollowup/)
      .times(20)
      .reply(function () {
        const token = this.req.headers['session-token'];
        return token === 's1' ? [401, ['ERROR_SESSION_TOKEN_INVALID', 'session_token seems invalid']] : [201, { id: 1, message: '' }];
      });
    const c = client();
    await c.open();
    await Promise.all([1, 2, 3, 4, 5, 6].map((i) => c.addFollowup(i, 'x', { isPrivate: false })));
    expect(logins).toBe(2);
  });

  it('classifies a 5xx with an HTML body as retryable and leaves the retrying to the dispatcher', async () => {
    const scope = login(nock(BASE)).post('/apirest.php/Ticket').once().reply(503, '<html><body><h1>503 Service Unavailable</h1></body></html>');
    const e = await failure(client().createTicket(draft));
    expect(e).toMatchObject({ kind: 'retryable', code: 'HTTP_503', status: 503 });
    expect(e.message).toContain('503 Service Unavailable');
    expect(scope.isDone()).toBe(true);
  });

  it('classifies 429 as retryable with the Retry-After delay', async () => {
    const scope = login(nock(BASE)).post('/apirest.php/Ticket').reply(429, 'slow down', { 'Retry-After': '120' });
    const e = await failure(client().createTicket(draft));
    expect(e).toMatchObject({ kind: 'retryable', status: 429, retryAfterMs: 120_000 });
    expect(scope.isDone()).toBe(true);
  });

  it('classifies a 400 as permanent and keeps GLPI\'s code and message', async () => {
    const scope = login(nock(BASE)).post('/apirest.php/Ticket').once().reply(400, ['ERROR_GLPI_ADD', 'ITIL category 999 does not exist']);
    const e = await failure(client().createTicket(draft));
    expect(e).toMatchObject({ kind: 'permanent', code: 'ERROR_GLPI_ADD', status: 400 });
    expect(e.message).toContain('ITIL category 999 does not exist');
    expect(scope.isDone()).toBe(true);
  });

  it('reports a refused login as a login failure, without leaking tokens', async () => {
    nock(BASE).get('/apirest.php/initSession').query(true).reply(401, ['ERROR_GLPI_LOGIN_USER_TOKEN', 'parameter user_token seems invalid']);
    const c = client();
    const e = await failure(c.createTicket(draft));
    expect(e).toMatchObject({ kind: 'login', code: 'ERROR_GLPI_LOGIN_USER_TOKEN' });
    expect(c.sessionState).toBe('login_failed');
    expect(`${e.message} ${c.lastLoginError ?? ''}`).not.toMatch(/user-secret-456|app-secret-123/);
  });

  it('treats a network failure as retryable', async () => {
    const e = await failure(client().createTicket(draft));
    expect(e.kind).toBe('retryable');
  });

  it('kills its session on close', async () => {
    const scope = login(nock(BASE)).get('/apirest.php/killSession').matchHeader('session-token', 'sess-1').reply(200, 'true', { 'Content-Type': 'application/json' });
    const c = client();
    await c.open();
    await c.close();
    expect(scope.isDone()).toBe(true);
  });
});

/** Search query of a marker lookup, as GLPI's search engine takes it. */
type Query = Record<string, string | string[] | undefined>;
const searchedFor = (marker: string) => (q: Query) =>
  q['criteria[0][field]'] === '1' && q['criteria[0][searchtype]'] === 'contains' && q['criteria[0][value]'] === marker && q['forcedisplay[0]'] === '2' && q['forcedisplay[1]'] === '22';

describe('finding a ticket by its marker (adoption after a crash)', () => {
  it('adopts the ticket the bridge\'s own GLPI user wrote, found with one small search', async () => {
    const scope = login(nock(BASE))
      .get('/apirest.php/search/Ticket')
      .query((q) => searchedFor('[zbx:abc]')(q) && q.range === '0-9')
      .reply(200, { totalcount: 1, count: 1, data: [{ '1': '[zbx:abc] High CPU', '2': 42, '22': 'zabbix-bridge' }] })
      .get('/apirest.php/search/Ticket')
      .query(true)
      .reply(200, { totalcount: 0, count: 0, data: [] });
    const c = client();
    expect(await c.findTicketByMarker('[zbx:abc]')).toBe(42);
    expect(await c.findTicketByMarker('[zbx:none]')).toBeUndefined();
    expect(scope.isDone()).toBe(true);
  });

  it('never adopts a ticket carrying the marker that another GLPI user wrote: GLPI_MARKER_SPOOFED, and the own one still wins', async () => {
    login(nock(BASE))
      .get('/apirest.php/search/Ticket')
      .query(searchedFor('[zbx:abc]'))
      .reply(200, {
        totalcount: 2,
        count: 2,
        data: [
          { '1': 'free &#60; 20% [zbx:abc]', '2': 5, '22': 'mallory' },
          { '1': '[zbx:abc] High CPU', '2': 42, '22': 'zabbix-bridge' },
        ],
      })
      .get('/apirest.php/search/Ticket')
      .query(searchedFor('[zbx:def]'))
      .reply(200, { totalcount: 1, count: 1, data: [{ '1': '[zbx:def] x', '2': 6, '22': 'mallory' }] });
    const { c, logs } = loggingClient();
    expect(await c.findTicketByMarker('[zbx:abc]')).toBe(42);
    expect(await c.findTicketByMarker('[zbx:def]')).toBeUndefined();
    const spoofed = logs.filter((l) => l.code === 'GLPI_MARKER_SPOOFED');
    expect(spoofed.map((l) => [l.ticket_id, l.created_by, l.level])).toEqual([
      [5, 'mallory', 40],
      [6, 'mallory', 40],
    ]);
  });

  it('compares the writer decoded (GLPI 10 HTML-encodes search output)', async () => {
    login(nock(BASE), 'sess-1', { glpiID: 7, glpiname: 'ops&bridge' })
      .get('/apirest.php/getGlpiConfig')
      .reply(200, { cfg_glpi: { version: '10.0.16' } })
      .get('/apirest.php/search/Ticket')
      .query(true)
      .reply(200, { totalcount: 1, count: 1, data: [{ '2': 42, '22': 'ops&#38;bridge' }] });
    expect(await client().findTicketByMarker('[zbx:abc]')).toBe(42);
    expect(decodeEntities('CPU &#62; 90&#37; &amp; &lt;b&gt; &#x41;')).toBe('CPU > 90% & <b> A');
  });

  it('learns who it is once per session with getFullSession when initSession did not say', async () => {
    let fullSessions = 0;
    login(nock(BASE), 'sess-1', null)
      .get('/apirest.php/getFullSession')
      .times(3)
      .reply(() => {
        fullSessions++;
        return [200, { session: { glpiID: 7, glpiname: 'zabbix-bridge', glpiactiveprofile: {} } }];
      })
      .get('/apirest.php/search/Ticket')
      .query(true)
      .times(2)
      .reply(200, { totalcount: 1, count: 1, data: [{ '2': 42, '22': 'zabbix-bridge' }] });
    const c = client();
    expect(await c.findTicketByMarker('[zbx:abc]')).toBe(42);
    expect(await c.findTicketByMarker('[zbx:abc]')).toBe(42);
    expect(fullSessions).toBe(1);
  });

  it('without a writer column, reads the ticket\'s users_id_recipient', async () => {
    login(nock(BASE))
      .get('/apirest.php/search/Ticket')
      .query(true)
      .reply(200, { totalcount: 2, count: 2, data: [{ '2': 5 }, { '2': 42 }] })
      .get('/apirest.php/Ticket/5')
      .query(true)
      .reply(200, { id: 5, status: 1, users_id_recipient: 9 })
      .get('/apirest.php/Ticket/42')
      .query(true)
      .reply(200, { id: 42, status: 2, users_id_recipient: 7 });
    const { c, logs } = loggingClient();
    expect(await c.findTicketByMarker('[zbx:abc]')).toBe(42);
    expect(logs.filter((l) => l.code === 'GLPI_MARKER_SPOOFED').map((l) => l.created_by)).toEqual([9]);
  });
});

describe('ticket externalid (GLPI 11)', () => {
  const created = (body: nock.Body) => (body as { input: Record<string, unknown> }).input;

  it('auto: GLPI 11 gets externalid = the marker on create, and the search looks at it first (option 87, anchored) or the title', async () => {
    let configReads = 0;
    let sent: Record<string, unknown> = {};
    const scope = login(nock(BASE))
      .get('/apirest.php/getGlpiConfig')
      .reply(() => {
        configReads++;
        return [200, { cfg_glpi: { version: '11.0.1', priority_matrix: {} } }];
      })
      .get('/apirest.php/search/Ticket')
      .query(
        (q: Query) =>
          q['criteria[0][field]'] === '87' && q['criteria[0][value]'] === '^[zbx:abc]$' && q['criteria[1][link]'] === 'OR' && q['criteria[1][field]'] === '1' && q['criteria[1][value]'] === '[zbx:abc]' && q['forcedisplay[1]'] === '22',
      )
      .reply(200, { totalcount: 0, count: 0, data: [] })
      .post('/apirest.php/Ticket', (body: nock.Body) => ((sent = created(body)), true))
      .reply(201, { id: 43, message: '' });
    const c = client({ externalId: 'auto' });
    expect(await c.findTicketByMarker('[zbx:abc]')).toBeUndefined();
    expect(await c.createTicket(draft)).toBe(43);
    expect(sent.externalid).toBe('[zbx:abc]');
    expect(configReads).toBe(1);
    expect(scope.isDone()).toBe(true);
  });

  it('auto: GLPI 10 (no externalid column) searches the title only and sends no externalid', async () => {
    let sent: Record<string, unknown> = {};
    login(nock(BASE))
      .get('/apirest.php/getGlpiConfig')
      .reply(200, { cfg_glpi: { version: '10.0.16' } })
      .get('/apirest.php/search/Ticket')
      .query((q: Query) => searchedFor('[zbx:abc]')(q) && q['criteria[1][field]'] === undefined)
      .reply(200, { totalcount: 0, count: 0, data: [] })
      .post('/apirest.php/Ticket', (body: nock.Body) => ((sent = created(body)), true))
      .reply(201, { id: 43, message: '' });
    const c = client({ externalId: 'auto' });
    expect(await c.findTicketByMarker('[zbx:abc]')).toBeUndefined();
    await c.createTicket(draft);
    expect(sent).not.toHaveProperty('externalid');
  });

  it.each([
    ['on', '[zbx:abc]'],
    ['off', undefined],
  ] as const)('%s decides without asking GLPI', async (mode, expected) => {
    let sent: Record<string, unknown> = {};
    const scope = login(nock(BASE))
      .post('/apirest.php/Ticket', (body: nock.Body) => ((sent = created(body)), true))
      .reply(201, { id: 43, message: '' });
    await client({ externalId: mode }).createTicket(draft);
    expect(sent.externalid).toBe(expected);
    expect(scope.isDone()).toBe(true);
  });
});

describe('solutions: "already solved" is read from the ticket\'s status, not from a (translated) message', () => {
  const refusedInFrench = (scope: nock.Scope) =>
    scope.post('/apirest.php/ITILSolution').reply(400, ['ERROR_GLPI_ADD', "L'élément est déjà résolu, quelqu'un a-t-il soumis une solution avant vous ?"]);

  it.each([
    [5, 'already_solved'],
    [6, 'already_closed'],
  ] as const)('refused, status %i → %s', async (status, expected) => {
    refusedInFrench(login(nock(BASE))).get('/apirest.php/Ticket/42').query(true).reply(200, { id: 42, status });
    expect(await client().addSolution(42, 'fixed', 0)).toBe(expected);
  });

  it('refused while the ticket is open: the refusal stands (permanent)', async () => {
    refusedInFrench(login(nock(BASE))).get('/apirest.php/Ticket/42').query(true).reply(200, { id: 42, status: 2 });
    expect(await failure(client().addSolution(42, 'fixed', 0))).toMatchObject({ kind: 'permanent', code: 'ERROR_GLPI_ADD' });
  });
});

describe('follow-ups on a Pending ticket (GLPI ≥ 10.0.4 sets it back to Assigned)', () => {
  const followupInput = async (c: GlpiClient, reopen: boolean): Promise<Record<string, unknown>> => {
    let sent: Record<string, unknown> = {};
    login(nock(BASE))
      .post('/apirest.php/Ticket/42/ITILFollowup', (body: nock.Body) => ((sent = (body as { input: Record<string, unknown> }).input), true))
      .reply(201, { id: 1, message: '' });
    await c.addFollowup(42, 'again', { isPrivate: false, reopen });
    return sent;
  };

  it('keep (default): _no_reopen, so GLPI leaves a pending ticket pending; a reopen never carries it', async () => {
    expect(await followupInput(client(), false)).toMatchObject({ _no_reopen: 1 });
    const reopen = await followupInput(client(), true);
    expect(reopen).toMatchObject({ add_reopen: 1 });
    expect(reopen).not.toHaveProperty('_no_reopen');
  });

  it('resume: GLPI\'s own behaviour', async () => {
    expect(await followupInput(client({ pendingFollowups: 'resume' }), false)).not.toHaveProperty('_no_reopen');
  });

  it('reads a ticket\'s status (undefined when it is gone)', async () => {
    login(nock(BASE)).get('/apirest.php/Ticket/42').query(true).reply(200, { id: 42, status: 4 }).get('/apirest.php/Ticket/43').query(true).reply(404, ['ERROR_ITEM_NOT_FOUND', 'Item not found']);
    const c = client();
    expect(await c.ticketStatus(42)).toBe(4);
    expect(await c.ticketStatus(43)).toBeUndefined();
  });
});

describe('what a failure says to the dispatcher (circuit breaker, idempotency)', () => {
  it.each([
    ['a 503 page from the web server: GLPI down, nothing applied', 503, '<html>503 Service Unavailable</html>', { outage: true, mayHaveLanded: false }],
    ['a 502 page from the proxy', 502, '<html>Bad Gateway</html>', { outage: true, mayHaveLanded: false }],
    ['a 500 (PHP may have died after committing)', 500, '', { outage: true, mayHaveLanded: true }],
    ['a 504 from the proxy (GLPI may still be working)', 504, '<html>Gateway Timeout</html>', { outage: true, mayHaveLanded: true }],
    ['GLPI\'s own refusal', 400, ['ERROR_GLPI_ADD', 'non'], { outage: false, mayHaveLanded: false }],
  ] as const)('%s', async (_name, status, body, expected) => {
    login(nock(BASE)).post('/apirest.php/Ticket').reply(status, body as nock.Body);
    expect(await failure(client().createTicket(draft))).toMatchObject(expected);
  });

  it('a refused connection never landed; a timeout or a reset after sending may have', async () => {
    expect(fromNetwork('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:443')).toMatchObject({ kind: 'retryable', outage: true, mayHaveLanded: false, staleConnection: false });
    expect(fromNetwork('ECONNRESET', 'socket hang up')).toMatchObject({ outage: true, mayHaveLanded: true, staleConnection: false });
    expect(fromNetwork('ECONNRESET', 'socket hang up', true)).toMatchObject({ outage: false, mayHaveLanded: true, staleConnection: true });
    login(nock(BASE)).post('/apirest.php/Ticket').delay(300).reply(201, { id: 1 });
    const timedOut = await failure(client({ timeoutMs: 50 }).createTicket(draft));
    expect(timedOut).toMatchObject({ kind: 'retryable', outage: true, mayHaveLanded: true });
  });
});

describe('retryAfterMs', () => {
  it.each([
    ['5', 5000],
    ['0', 0],
    [undefined, undefined],
    ['soon', undefined],
  ])('%j → %j', (h, ms) => expect(retryAfterMs(h)).toBe(ms));

  it('reads an HTTP date', () => {
    const now = Date.parse('2026-11-23T10:00:00Z');
    expect(retryAfterMs('Mon, 23 Nov 2026 10:00:30 GMT', now)).toBe(30_000);
  });
});

/** The fake GLPI listens on 127.0.0.1: let that through nock. */
const allowLocal = () => nock.enableNetConnect('127.0.0.1');

describe('GLPI 10 and GLPI 11 text: HTML-encoded or as stored', () => {
  beforeEach(allowLocal);
  let fake: FakeGlpi | undefined;
  let c: GlpiClient | undefined;
  afterEach(async () => {
    await c?.close();
    await fake?.close();
    c = undefined;
    fake = undefined;
  });

  /** What a technician typed, with a literal entity that must survive as typed. */
  const TYPED = 'free &lt; 20% & rising <b>[job:42]</b>';

  it.each(['10', '11'] as const)('GLPI %s: follow-ups read back exactly as typed, the writer compares, the marker is found', async (version) => {
    fake = new FakeGlpi({ version, accounts: [{ id: 7, name: 'ops&bridge', userToken: 'user-token' }] });
    await fake.listen();
    c = new GlpiClient({ url: fake.url, appToken: new Secret(''), userToken: new Secret('user-token'), username: '', password: new Secret(''), timeoutMs: 2000, logger: pino({ level: 'silent' }) });
    const id = await c.createTicket(draft);
    await c.addFollowup(id, TYPED, { isPrivate: false });
    // What GLPI holds: GLPI 10 encodes (Sanitizer::encodeHtmlSpecialChars), GLPI 11 keeps the text.
    expect(fake.followupsOf(id)[0]!.content).toBe(version === '10' ? 'free &#38;lt; 20% &#38; rising &#60;b&#62;[job:42]&#60;/b&#62;' : TYPED);
    expect(await c.followupContents(id)).toEqual([TYPED]);
    expect(await c.findTicketByMarker(draft.marker)).toBe(id);
    expect(await c.glpiMajor()).toBe(Number(version));
    expect(fake.count('GET', 'getGlpiConfig')).toBe(1);
  });

  it('GLPI 11: a literal entity is never decoded; GLPI 10: decoded once', async () => {
    const list = (scope: nock.Scope, version: string) =>
      scope
        .get('/apirest.php/getGlpiConfig')
        .reply(200, { cfg_glpi: { version } })
        .get('/apirest.php/Ticket/42/ITILFollowup')
        .query(true)
        .reply(200, [{ id: 1, content: 'a &lt; b &#38;lt; c' }, { id: 2, content: 'plain' }]);
    list(login(nock(BASE)), '11.0.4');
    expect(await client().followupContents(42)).toEqual(['a &lt; b &#38;lt; c', 'plain']);
    nock.cleanAll();
    list(login(nock(BASE)), '10.0.18');
    expect(await client().followupContents(42)).toEqual(['a < b &lt; c', 'plain']);
  });

  it('text without "&" never makes the client ask GLPI its version', async () => {
    const scope = login(nock(BASE)).get('/apirest.php/Ticket/42/ITILFollowup').query(true).reply(200, [{ id: 1, content: '<small>[job:7]</small>' }]);
    expect(await client().followupContents(42)).toEqual(['<small>[job:7]</small>']);
    expect(scope.isDone()).toBe(true);
  });

  it('links tickets from GLPI 11\'s /api.php/v1 address too', () => {
    expect(client({ url: `${BASE}/api.php/v1` }).ticketUrl(5)).toBe(`${BASE}/front/ticket.form.php?id=5`);
  });
});

describe('a web server that strips the Authorization header (initSession: ERROR_LOGIN_PARAMETERS_MISSING)', () => {
  beforeEach(allowLocal);
  let fake: FakeGlpi;
  let c: GlpiClient | undefined;
  afterEach(async () => {
    await c?.close();
    await fake?.close();
    c = undefined;
  });

  async function against(version: '10' | '11', extra: Partial<GlpiClientOptions> = {}): Promise<{ c: GlpiClient; logs: Record<string, unknown>[] }> {
    fake = new FakeGlpi({ version, stripAuthorization: true, userTokens: ['user-secret-456'], users: { bridge: 'pw-secret-789' } });
    await fake.listen();
    const logs: Record<string, unknown>[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
    c = new GlpiClient({ url: version === '11' ? fake.urlV1 : fake.url, appToken: new Secret(''), userToken: new Secret('user-secret-456'), username: '', password: new Secret(''), timeoutMs: 2000, logger, ...extra });
    return { c, logs };
  }

  it.each(['10', '11'] as const)('GLPI %s, not opted in: a login failure that names the web-server fix, and no token in the query', async (version) => {
    const { c } = await against(version);
    const e = await failure(c.open());
    expect(e).toMatchObject({ kind: 'login', code: 'ERROR_LOGIN_PARAMETERS_MISSING', status: 400, mayHaveLanded: false });
    expect(e.message).toContain('strips that header');
    expect(e.message).toContain('CGIPassAuth On');
    expect(e.message).toContain('SetEnvIf Authorization "(.*)" HTTP_AUTHORIZATION=$1');
    expect(e.message).toContain('fastcgi_param HTTP_AUTHORIZATION $http_authorization;');
    expect(e.message).toContain('glpi.user_token_in_query: true');
    expect(e.message).not.toContain('user-secret-456');
    expect(c.sessionState).toBe('login_failed');
    expect(c.lastLoginError).toBe(e.message);
    expect(fake.count('GET', 'initSession')).toBe(1);
  });

  it('Basic auth stripped the same way: the message says login and password', async () => {
    const { c } = await against('11', { userToken: new Secret(''), username: 'bridge', password: new Secret('pw-secret-789'), userTokenInQuery: true });
    const e = await failure(c.open());
    expect(e).toMatchObject({ kind: 'login', code: 'ERROR_LOGIN_PARAMETERS_MISSING' });
    expect(e.message).toContain('login and password in its Authorization header');
    expect(e.message).not.toContain('pw-secret-789');
    // Never a password in a URL: no fallback for Basic.
    expect(fake.count('GET', 'initSession')).toBe(1);
  });

  it('opted in (user_token_in_query): logs in with ?user_token=…, says so once, and later logins go straight there', async () => {
    const { c, logs } = await against('11', { userTokenInQuery: true });
    const id = await c.createTicket(draft);
    expect(fake.tickets.get(id)?.name).toBe(draft.name);
    expect(c.userTokenInQuery).toBe(true);
    fake.expireSessions();
    await c.addFollowup(id, 'again', { isPrivate: false });
    expect(fake.requests.filter((r) => r.path === 'initSession').map((r) => r.status)).toEqual([400, 200, 200]);
    const warned = logs.filter((l) => l.authorization_stripped === true);
    expect(warned).toHaveLength(1);
    expect(String(warned[0]!.msg)).toContain('access log');
    expect(JSON.stringify(logs)).not.toContain('user-secret-456');
  });

  it('the fallback request carries the token in the query and no Authorization header', async () => {
    const scope = nock(BASE)
      .get('/apirest.php/initSession')
      .query({ get_full_session: 'true' })
      .matchHeader('authorization', 'user_token user-secret-456')
      .reply(400, ['ERROR_LOGIN_PARAMETERS_MISSING', 'parameter(s) login, password or user_token are missing; view documentation in your browser at http://glpi.test/apirest.php/#ERROR_LOGIN_PARAMETERS_MISSING'])
      .get('/apirest.php/initSession')
      .query({ get_full_session: 'true', user_token: 'user-secret-456' })
      .matchHeader('authorization', (v: string | undefined) => v === undefined)
      .reply(200, { session_token: 's', session: ME });
    await client({ userTokenInQuery: true }).open();
    expect(scope.isDone()).toBe(true);
  });

  it('a header that reaches GLPI is never replaced by the query (the option only applies once GLPI says it is missing)', async () => {
    const scope = login(nock(BASE));
    await client({ userTokenInQuery: true }).open();
    expect(scope.isDone()).toBe(true);
  });
});
