import { afterEach, describe, expect, it } from '@jest/globals';
import nock from 'nock';
import { useNock } from '../helpers/nock.js';
import { pino } from 'pino';
import { GlpiClient } from '../../src/adapters/glpi/client.js';
import { retryAfterMs } from '../../src/adapters/glpi/outcome.js';
import { RemoteError } from '../../src/adapters/remote-error.js';
import { Secret } from '../../src/config/secret.js';
import type { TicketDraft } from '../../src/core/decide.js';

const BASE = 'http://glpi.test';
const API = `${BASE}/apirest.php`;

function client(): GlpiClient {
  return new GlpiClient({
    url: API,
    appToken: new Secret('app-secret-123'),
    userToken: new Secret('user-secret-456'),
    username: '',
    password: new Secret(''),
    timeoutMs: 2000,
    logger: pino({ level: 'silent' }),
  });
}

const draft: TicketDraft = {
  name: '[cpu] High CPU [zbx:abc]',
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

function login(scope: nock.Scope, token = 'sess-1'): nock.Scope {
  return scope
    .get('/apirest.php/initSession')
    .matchHeader('app-token', 'app-secret-123')
    .matchHeader('authorization', 'user_token user-secret-456')
    .reply(200, { session_token: token });
}

useNock();
afterEach(() => nock.cleanAll());

async function failure(p: Promise<unknown>): Promise<RemoteError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof RemoteError) return e;
    throw e;
  }
  throw new Error('expected a RemoteError');
}

describe('GlpiClient', () => {
  it('opens one session, reuses it, and sends the ticket fields GLPI expects', async () => {
    const scope = login(nock(BASE))
      .post('/apirest.php/Ticket', {
        input: { name: draft.name, content: 'body', urgency: 5, impact: 4, type: 1, entities_id: 0, itilcategories_id: 11, _groups_id_assign: 3 },
      })
      .matchHeader('session-token', 'sess-1')
      .reply(201, { id: 42, message: '' })
      .post('/apirest.php/Ticket/42/ITILFollowup', { input: { itemtype: 'Ticket', items_id: 42, content: 'again', is_private: 0 } })
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
    nock(BASE).get('/apirest.php/initSession').reply(401, ['ERROR_GLPI_LOGIN_USER_TOKEN', 'parameter user_token seems invalid']);
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

  it('finds a ticket by its marker through /search/Ticket', async () => {
    login(nock(BASE))
      .get('/apirest.php/search/Ticket')
      .query((q) => q['criteria[0][field]'] === '1' && q['criteria[0][searchtype]'] === 'contains' && q['criteria[0][value]'] === '[zbx:abc]' && q['forcedisplay[0]'] === '2')
      .reply(200, { totalcount: 1, count: 1, data: [{ '1': 'title [zbx:abc]', '2': 42 }] })
      .get('/apirest.php/search/Ticket')
      .query(true)
      .reply(200, { totalcount: 0, count: 0, data: [] });
    const c = client();
    expect(await c.findTicketByMarker('[zbx:abc]')).toBe(42);
    expect(await c.findTicketByMarker('[zbx:none]')).toBeUndefined();
  });

  it('treats "already solved" as done for a solution', async () => {
    login(nock(BASE)).post('/apirest.php/ITILSolution').reply(400, ['ERROR_GLPI_ADD', 'The item is already solved, did anyone pushed a solution before you?']);
    expect(await client().addSolution(42, 'fixed', 0)).toBe('already_solved');
  });

  it('kills its session on close', async () => {
    const scope = login(nock(BASE)).get('/apirest.php/killSession').matchHeader('session-token', 'sess-1').reply(200, 'true', { 'Content-Type': 'application/json' });
    const c = client();
    await c.open();
    await c.close();
    expect(scope.isDone()).toBe(true);
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
