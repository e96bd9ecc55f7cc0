/**
 * GlpiV2Client beyond the shared ticket-desk contract (test/contract/ticket-desk.contract.test.ts): how it
 * talks OAuth2 (what a token request carries, renewal before the hour with the refresh token, falling back
 * to the password, the web server that strips Authorization), how answers are classified, and what it does
 * about GLPI dropping properties silently. Against the fake GLPI 11 where it can play the case, nock where
 * a real GLPI's answer cannot be produced by the fake.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import nock from 'nock';
import { pino } from 'pino';
import { GlpiClient } from '../../src/adapters/glpi/client.js';
import { glpiRoot, GlpiV2Client, type GlpiV2ClientOptions } from '../../src/adapters/glpi/v2/client.js';
import { fromTokenResponse, fromV2Response } from '../../src/adapters/glpi/v2/outcome.js';
import { Secret } from '../../src/config/secret.js';
import type { Logger } from '../../src/observability/logger.js';
import type { TicketDraft } from '../../src/core/decide.js';
import { FakeGlpi, STATUS } from '../../src/glpi-fake/server.js';
import { useNock } from '../helpers/nock.js';
import { failure } from '../helpers/remote.js';

useNock();

const ROOT = 'http://glpi.test';
const MARKER = '[zbx:00000000000000000abc]';
const draft: TicketDraft = { name: `${MARKER} High CPU`, content: 'body', marker: MARKER, urgency: 5, impact: 4, type: 1, itilcategories_id: 0, entities_id: 0, requesttypes_id: 0, groups_id_assign: 0 };

function logging(): { logger: Logger; logs: Record<string, unknown>[] } {
  const logs: Record<string, unknown>[] = [];
  const logger: Logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, logs };
}

function client(url: string, extra: Partial<GlpiV2ClientOptions> = {}): GlpiV2Client {
  return new GlpiV2Client({
    url,
    clientId: new Secret('bridge-client'),
    clientSecret: new Secret('bridge-secret'),
    username: 'zabbix-bridge',
    password: new Secret('bridge-pass'),
    timeoutMs: 2000,
    logger: pino({ level: 'silent' }),
    ...extra,
  });
}

const tokenBody = (n: number, expiresIn = 3600) => ({ token_type: 'Bearer', expires_in: expiresIn, access_token: `a.b.${n}`, refresh_token: `refresh-${n}` });
const ticketRow = (id: number, f: Record<string, unknown> = {}) => ({
  id, name: draft.name, status: { id: 1, name: 'New' }, urgency: 5, impact: 4, type: 1, external_id: MARKER, category: null, request_type: { id: 1, name: 'Phone' },
  entity: { id: 0, name: 'Root entity' }, team: [{ role: 'requester', name: 'zabbix-bridge', href: '/front/user.form.php?id=12' }], ...f,
});

describe('addresses', () => {
  it.each([
    ['http://glpi.test', 'http://glpi.test'],
    ['http://glpi.test/', 'http://glpi.test'],
    ['https://h/glpi/api.php', 'https://h/glpi'],
    ['https://h/glpi/api.php/v2', 'https://h/glpi'],
    ['https://h/glpi/api.php/v2.1/', 'https://h/glpi'],
    ['https://h/glpi/apirest.php', 'https://h/glpi'],
  ])('%s is the GLPI root %s', (url, root) => {
    expect(glpiRoot(url)).toBe(root);
    expect(client(url).ticketUrl(42)).toBe(`${root}/front/ticket.form.php?id=42`);
  });
});

describe('talking to GLPI (nock)', () => {
  afterEach(() => nock.cleanAll());

  it('asks for a token with the password grant, form-encoded, scope api, no Authorization; calls /api.php/v2 with the Bearer token and JSON exactly', async () => {
    const scope = nock(ROOT)
      .post('/glpi/api.php/token', (body: Record<string, string>) => {
        expect(body).toEqual({ grant_type: 'password', username: 'zabbix-bridge', password: 'bridge-pass', client_id: 'bridge-client', client_secret: 'bridge-secret', scope: 'api' });
        return true;
      })
      .matchHeader('content-type', 'application/x-www-form-urlencoded')
      .matchHeader('authorization', (v: string | undefined) => v === undefined)
      .reply(200, tokenBody(1))
      .post('/glpi/api.php/v2/Assistance/Ticket', (body: Record<string, unknown>) => {
        expect(body).toEqual({ name: draft.name, content: 'body', urgency: 5, impact: 4, type: 1, entity: { id: 0 }, external_id: MARKER });
        return true;
      })
      .matchHeader('authorization', 'Bearer a.b.1')
      .matchHeader('content-type', 'application/json')
      .reply(200, { id: 77, href: '/Assistance/Ticket/77' }, { Location: '/Assistance/Ticket/77' })
      .get('/glpi/api.php/v2/Assistance/Ticket/77')
      .reply(200, ticketRow(77));
    const c = client(`${ROOT}/glpi/api.php/v2`);
    expect(await c.createTicket(draft)).toBe(77);
    expect(c.sessionState).toBe('open');
    expect(scope.isDone()).toBe(true);
  });

  it('renews the token before its hour is over with the refresh token, without a refused request', async () => {
    let now = 1_000_000;
    const clock = { now: () => now };
    const scope = nock(ROOT)
      .post('/api.php/token', (b: Record<string, string>) => b.grant_type === 'password')
      .reply(200, tokenBody(1))
      .get('/api.php/v2/Assistance/Ticket/5')
      .matchHeader('authorization', 'Bearer a.b.1')
      .reply(200, ticketRow(5))
      .post('/api.php/token', (b: Record<string, string>) => b.grant_type === 'refresh_token' && b.refresh_token === 'refresh-1' && b.client_id === 'bridge-client' && b.client_secret === 'bridge-secret')
      .reply(200, tokenBody(2))
      .get('/api.php/v2/Assistance/Ticket/5')
      .matchHeader('authorization', 'Bearer a.b.2')
      .reply(200, ticketRow(5));
    const c = client(ROOT, { clock });
    expect(await c.ticketStatus(5)).toBe(1);
    now += 3600_000 - 119_000; // within the two minutes before the expiry
    expect(await c.ticketStatus(5)).toBe(1);
    expect(scope.isDone()).toBe(true);
  });

  it('GLPI unreachable while the token is renewed ahead of time: the token held serves until its expiry', async () => {
    let now = 0;
    const scope = nock(ROOT)
      .post('/api.php/token', (b: Record<string, string>) => b.grant_type === 'password')
      .reply(200, tokenBody(1))
      .post('/api.php/token')
      .reply(502, '<html>bad gateway</html>')
      .get('/api.php/v2/Assistance/Ticket/5')
      .matchHeader('authorization', 'Bearer a.b.1')
      .reply(200, ticketRow(5))
      .post('/api.php/token')
      .reply(502, '<html>bad gateway</html>');
    const c = client(ROOT, { clock: { now: () => now } });
    await c.open();
    now = 3600_000 - 60_000;
    expect(await c.ticketStatus(5)).toBe(1);
    expect(c.sessionState).toBe('open');
    now = 3600_000;
    const e = await failure(c.ticketStatus(5));
    expect({ kind: e.kind, status: e.status }).toEqual({ kind: 'retryable', status: 502 });
    expect(scope.isDone()).toBe(true);
  });

  it('logs in with the password again when GLPI refuses the refresh token', async () => {
    let now = 0;
    const scope = nock(ROOT)
      .post('/api.php/token', (b: Record<string, string>) => b.grant_type === 'password')
      .reply(200, tokenBody(1))
      .post('/api.php/token', (b: Record<string, string>) => b.grant_type === 'refresh_token')
      .reply(401, { error: 'invalid_request', error_description: 'The refresh token is invalid.', hint: 'Token has been revoked', message: 'The refresh token is invalid.' })
      .post('/api.php/token', (b: Record<string, string>) => b.grant_type === 'password')
      .reply(200, tokenBody(3))
      .get('/api.php/v2/Assistance/Ticket/5')
      .matchHeader('authorization', 'Bearer a.b.3')
      .reply(200, ticketRow(5));
    const c = client(ROOT, { clock: { now: () => now } });
    await c.open();
    now += 3600_000;
    expect(await c.ticketStatus(5)).toBe(1);
    expect(scope.isDone()).toBe(true);
  });

  it('an expired token (400 Invalid OAuth token) gets one new token and the request once more; refused again, the error is thrown', async () => {
    const expired = { status: 'ERROR_INVALID_PARAMETER', title: 'Invalid OAuth token', detail: 'Access token could not be verified' };
    const scope = nock(ROOT)
      .post('/api.php/token')
      .reply(200, tokenBody(1))
      .get('/api.php/v2/Assistance/Ticket/5')
      .reply(400, expired)
      .post('/api.php/token', (b: Record<string, string>) => b.grant_type === 'refresh_token')
      .reply(200, tokenBody(2))
      .get('/api.php/v2/Assistance/Ticket/5')
      .matchHeader('authorization', 'Bearer a.b.2')
      .reply(400, expired);
    const e = await failure(client(ROOT).ticketStatus(5));
    expect({ kind: e.kind, code: e.code, status: e.status }).toEqual({ kind: 'session', code: 'ERROR_INVALID_PARAMETER', status: 400 });
    expect(scope.isDone()).toBe(true);
  });

  it('reads an empty dropdown given as null or as an empty list', async () => {
    nock(ROOT)
      .post('/api.php/token')
      .reply(200, tokenBody(1))
      .get('/api.php/v2/Assistance/Ticket/5')
      .reply(200, ticketRow(5, { category: [], request_type: null, status: { id: 4, name: 'Pending' } }));
    expect(await client(ROOT).ticketStatus(5)).toBe(4);
  });

  it('keeps only tickets whose external_id is exactly the marker (GLPI ignores a filter it does not understand)', async () => {
    nock(ROOT)
      .post('/api.php/token')
      .reply(200, tokenBody(1))
      .get('/api.php/v2/Assistance/Ticket')
      .query({ filter: `external_id=="${MARKER}";is_deleted==false`, start: '0', limit: '50' })
      .reply(200, [ticketRow(1, { external_id: null }), ticketRow(2, { external_id: '[zbx:other]' }), ticketRow(4, { is_deleted: true }), ticketRow(3)], { 'Content-Range': '0-3/4' })
      .get('/api.php/v2/session')
      .reply(200, { user_id: 12, name: 'zabbix-bridge' });
    expect(await client(ROOT).findTicketByMarker(MARKER)).toBe(3);
  });

  it('a marker row without its team: the team is asked; GLPI down then fails the search (no new ticket on a guess), a refusal means not adopted', async () => {
    const { team: _team, ...row } = ticketRow(8);
    nock(ROOT)
      .post('/api.php/token')
      .reply(200, tokenBody(1))
      .get('/api.php/v2/Assistance/Ticket')
      .query(true)
      .times(3)
      .reply(200, [row])
      .get('/api.php/v2/Assistance/Ticket/8/TeamMember')
      .reply(200, [{ role: 'requester', name: 'zabbix-bridge', href: '/glpi/front/user.form.php?id=12' }])
      .get('/api.php/v2/session')
      .reply(200, { user_id: 12, name: 'zabbix-bridge' })
      .get('/api.php/v2/Assistance/Ticket/8/TeamMember')
      .reply(503, '<html>down</html>')
      .get('/api.php/v2/Assistance/Ticket/8/TeamMember')
      .reply(403, { status: 'ERROR_RIGHT_MISSING', title: "You don't have permission to perform this action.", detail: null });
    const c = client(ROOT);
    expect(await c.findTicketByMarker(MARKER)).toBe(8);
    expect((await failure(c.findTicketByMarker(MARKER))).kind).toBe('retryable');
    expect(await c.findTicketByMarker(MARKER)).toBeUndefined();
  });

  it('reads a new ticket back: an external_id that did not stick is patched once, and said when it still did not; dropped fields are logged', async () => {
    const { logger, logs } = logging();
    nock(ROOT)
      .post('/api.php/token')
      .reply(200, tokenBody(1))
      .post('/api.php/v2/Assistance/Ticket')
      .reply(200, { id: 9, href: '/Assistance/Ticket/9' })
      .get('/api.php/v2/Assistance/Ticket/9')
      .reply(200, ticketRow(9, { external_id: null, urgency: 3 }))
      .patch('/api.php/v2/Assistance/Ticket/9', { external_id: MARKER })
      .reply(200, ticketRow(9, { external_id: null, urgency: 3 }));
    expect(await client(ROOT, { logger }).createTicket(draft)).toBe(9);
    expect(logs.find((l) => l.code === 'GLPI_MARKER_NOT_STORED')).toMatchObject({ ticket_id: 9, marker: MARKER });
    expect(logs.find((l) => l.code === 'GLPI_FIELD_NOT_STORED')).toMatchObject({ ticket_id: 9, fields: [{ field: 'urgency', sent: 5, stored: 3 }] });
  });

  it('a follow-up that landed is never reported failed: a pending ticket GLPI will not set back is logged (GLPI_STATUS_NOT_SET)', async () => {
    const { logger, logs } = logging();
    const scope = nock(ROOT)
      .post('/api.php/token')
      .reply(200, tokenBody(1))
      .get('/api.php/v2/Assistance/Ticket/5')
      .reply(200, ticketRow(5, { status: { id: 4, name: 'Pending' } }))
      .post('/api.php/v2/Assistance/Ticket/5/Timeline/Followup', { content: 'still down', is_private: false })
      .reply(200, { id: 71, href: '/Assistance/Ticket/5/Timeline/Followup/71' })
      .patch('/api.php/v2/Assistance/Ticket/5', { status: { id: 4 } })
      .reply(500, { status: 'ERROR', title: 'Failed to update item(s)', detail: null });
    expect(await client(ROOT, { logger }).addFollowup(5, 'still down', { isPrivate: false })).toBe(71);
    expect(logs.find((l) => l.code === 'GLPI_STATUS_NOT_SET')).toMatchObject({ ticket_id: 5, status: 4 });
    expect(scope.isDone()).toBe(true);
  });

  it('adds the rules\' users as team members after the create, roles as CommonITILActor numbers; a refused one is logged and the ticket kept', async () => {
    const { logger, logs } = logging();
    const scope = nock(ROOT)
      .post('/api.php/token')
      .reply(200, tokenBody(1))
      .post('/api.php/v2/Assistance/Ticket')
      .reply(200, { id: 9, href: '/Assistance/Ticket/9' })
      .get('/api.php/v2/Assistance/Ticket/9')
      .reply(200, ticketRow(9))
      .post('/api.php/v2/Assistance/Ticket/9/TeamMember', { type: 'User', id: 41, role: 2 })
      .reply(201, '')
      .post('/api.php/v2/Assistance/Ticket/9/TeamMember', { type: 'User', id: 42, role: 3 })
      .reply(400, { status: 'ERROR_INVALID_PARAMETER', title: 'One or more parameters are invalid', detail: null })
      .post('/api.php/v2/Assistance/Ticket/9/TeamMember', { type: 'User', id: 43, role: 1 })
      .reply(201, '');
    expect(await client(ROOT, { logger }).createTicket({ ...draft, users: { requester: [43], observer: [42], assign: [41, 41] } })).toBe(9);
    expect(scope.isDone()).toBe(true);
    expect(logs.filter((l) => l.user_id !== undefined)).toEqual([expect.objectContaining({ ticket_id: 9, user_id: 42, role: 'observer', level: 50 })]);
  });

  it('an asset from assets.map cannot be linked: the ticket goes without it, GLPI_LOOKUP_UNSUPPORTED once per process, counted each time', async () => {
    const { logger, logs } = logging();
    nock(ROOT)
      .post('/api.php/token')
      .reply(200, tokenBody(1))
      .post('/api.php/v2/Assistance/Ticket', (body: Record<string, unknown>) => !('items_id' in body) && !('asset' in body))
      .times(2)
      .reply(200, { id: 9, href: '/Assistance/Ticket/9' })
      .get('/api.php/v2/Assistance/Ticket/9')
      .times(2)
      .reply(200, ticketRow(9));
    const counted: unknown[] = [];
    const metrics = { glpiLookups: { inc: (l: unknown) => void counted.push(l) }, glpiRequests: { inc: () => undefined }, glpiLatency: { observe: () => undefined }, glpiSessions: { inc: () => undefined } };
    const c = client(ROOT, { logger, metrics: metrics as unknown as GlpiV2ClientOptions['metrics'] });
    await c.createTicket({ ...draft, asset: { itemtype: 'Computer', id: 101 } });
    await c.createTicket({ ...draft, asset: { itemtype: 'Computer', id: 101 } });
    expect(logs.filter((l) => l.code === 'GLPI_LOOKUP_UNSUPPORTED')).toHaveLength(1);
    expect(counted).toEqual([{ itemtype: 'asset', result: 'unsupported' }, { itemtype: 'asset', result: 'unsupported' }]);
    const e = await failure(c.findAssets(['Computer'], 'ip', '10.0.0.5'));
    expect(e).toMatchObject({ kind: 'permanent', code: 'GLPI_LOOKUP_UNSUPPORTED', mayHaveLanded: false });
    expect(e.message).toContain('Item_Ticket');
  });

  it('finds problems by marker with an RSQL like on the name, keeps only its own rows carrying the marker (GLPI ignores a filter it does not understand)', async () => {
    const { logger, logs } = logging();
    const P = '[zbx:p00000000000000000abc]';
    const row = (id: number, name: string, requester: number, f: Record<string, unknown> = {}) => ({
      id, name, status: { id: 1, name: 'New' }, is_deleted: false, team: [{ role: 'requester', name: `u${requester}`, href: `/front/user.form.php?id=${requester}` }], ...f,
    });
    nock(ROOT)
      .post('/api.php/token')
      .reply(200, tokenBody(1))
      .get('/api.php/v2/Assistance/Problem')
      .query({ filter: `name=like="*${P}*";is_deleted==false`, start: '0', limit: '50' })
      .reply(200, [row(7, `${P} Recurring`, 12, { status: { id: 5, name: 'Solved' } }), row(3, `${P} Recurring`, 12), row(4, 'another problem', 12), row(5, `${P} spoof`, 13), row(6, `${P} trashed`, 12, { is_deleted: true })])
      .get('/api.php/v2/session')
      .reply(200, { user_id: 12, name: 'zabbix-bridge' });
    expect(await client(ROOT, { logger }).findProblemsByMarker(P)).toEqual([{ id: 3, status: 1 }, { id: 7, status: 5 }]);
    expect(logs.filter((l) => l.code === 'GLPI_MARKER_SPOOFED')).toEqual([expect.objectContaining({ problem_id: 5, requesters: ['u13'] })]);
  });

  it('a new problem: the bridge\'s user is made its requester when GLPI did not (the ownership the marker search checks), not twice', async () => {
    const scope = nock(ROOT)
      .post('/api.php/token')
      .reply(200, tokenBody(1))
      .post('/api.php/v2/Assistance/Problem', { name: 'p', content: 'c', urgency: 4, impact: 3, entity: { id: 2 }, category: { id: 5 } })
      .reply(200, { id: 30, href: '/Assistance/Problem/30' })
      .get('/api.php/v2/Assistance/Problem/30/TeamMember')
      .reply(200, [])
      .get('/api.php/v2/session')
      .reply(200, { user_id: 12, name: 'zabbix-bridge' })
      .post('/api.php/v2/Assistance/Problem/30/TeamMember', { type: 'User', id: 12, role: 1 })
      .reply(201, '')
      .post('/api.php/v2/Assistance/Problem')
      .reply(200, { id: 31, href: '/Assistance/Problem/31' })
      .get('/api.php/v2/Assistance/Problem/31/TeamMember')
      .reply(200, [{ role: 'requester', name: 'zabbix-bridge', href: '/front/user.form.php?id=12' }]);
    const c = client(ROOT);
    const spec = { name: 'p', content: 'c', urgency: 4, impact: 3, entities_id: 2, itilcategories_id: 5 };
    expect(await c.createProblem(spec)).toBe(30);
    expect(await c.createProblem(spec)).toBe(31);
    expect(scope.isDone()).toBe(true);
  });

  it('reads back the bridge\'s tickets modified after the cursor in one search: marker like, date_mod=gt, sorted; RFC 3339 back to the column\'s text; only its own rows', async () => {
    const mine = (id: number, date: string, f: Record<string, unknown> = {}) => ticketRow(id, { date_mod: date, status: { id: 5, name: 'Solved' }, ...f });
    nock(ROOT)
      .post('/api.php/token')
      .reply(200, tokenBody(1))
      .get('/api.php/v2/Assistance/Ticket')
      .query({ filter: 'external_id=like="[zbx:*";is_deleted==false;date_mod=gt="2026-03-04 10:15:01"', sort: 'date_mod:asc', start: '0', limit: '1000' })
      .reply(200, [
        mine(7, '2026-03-04T12:00:00+02:00'),
        mine(3, '2026-03-04T10:15:02+02:00'),
        mine(4, '2026-03-04T10:15:01+02:00'), // not after the cursor (GLPI ignoring the filter): left out
        mine(5, '2026-03-04T11:00:00+02:00', { external_id: 'ext-9' }),
        mine(6, '2026-03-04T11:00:00+02:00', { team: [{ role: 'requester', name: 'alice', href: '/front/user.form.php?id=13' }] }),
      ])
      .get('/api.php/v2/session')
      .reply(200, { user_id: 12, name: 'zabbix-bridge' })
      .get('/api.php/v2/Assistance/Ticket')
      .query({ filter: 'external_id=like="[zbx:*";is_deleted==false', sort: 'date_mod:desc', start: '0', limit: '200' })
      .reply(200, [mine(7, '2026-03-04T12:00:00+02:00'), mine(3, '2026-03-04T10:15:02+02:00')]);
    const c = client(ROOT);
    expect(await c.ticketsModifiedSince('2026-03-04 10:15:01')).toEqual([{ id: 3, status: 5, dateMod: '2026-03-04 10:15:02' }, { id: 7, status: 5, dateMod: '2026-03-04 12:00:00' }]);
    expect((await c.ticketsModifiedSince(undefined)).map((t) => t.id)).toEqual([3, 7]);
    await expect(c.ticketsModifiedSince('2026-03-04T10:15:01+00:00')).rejects.toThrow(/YYYY-MM-DD/);
  });

  it('others\' public follow-ups by their `user`; a GLPI whose Followup schema has no `user` mirrors nothing and says so once', async () => {
    const { logger, logs } = logging();
    const item = (id: number, user: unknown, isPrivate = false) => ({ type: 'Followup', item: { id, content: `c${id}`, is_private: isPrivate, ...(user === undefined ? {} : { user }) } });
    nock(ROOT)
      .post('/api.php/token')
      .reply(200, tokenBody(1))
      .get('/api.php/v2/Assistance/Ticket/5/Timeline/Followup')
      .reply(200, [item(9, { id: 13, name: 'alice' }), item(3, { id: 13, name: 'alice' }), item(4, { id: 12, name: 'zabbix-bridge' }), item(5, { id: 13, name: 'alice' }, true), item(6, null)])
      .get('/api.php/v2/session')
      .reply(200, { user_id: 12, name: 'zabbix-bridge' })
      .get('/api.php/v2/Assistance/Ticket/6/Timeline/Followup')
      .times(2)
      .reply(200, [item(1, undefined)]);
    const c = client(ROOT, { logger });
    expect(await c.othersPublicFollowups(5)).toEqual([{ id: 3, content: 'c3' }, { id: 9, content: 'c9' }]);
    expect(await c.othersPublicFollowups(6)).toEqual([]);
    expect(await c.othersPublicFollowups(6)).toEqual([]);
    expect(logs.filter((l) => String(l.msg).includes('does not say who wrote a follow-up'))).toHaveLength(1);
  });

  it('a 500 that is not GLPI\'s refusal (a null body) is an unknown outcome: retryable, may have landed', async () => {
    nock(ROOT).post('/api.php/token').reply(200, tokenBody(1)).post('/api.php/v2/Assistance/Ticket').reply(500, 'null', { 'Content-Type': 'application/json' });
    const e = await failure(client(ROOT).createTicket(draft));
    expect({ kind: e.kind, mayHaveLanded: e.mayHaveLanded, outage: e.outage }).toEqual({ kind: 'retryable', mayHaveLanded: true, outage: true });
  });

  it('never follows a redirect (it would carry the password or the token elsewhere)', async () => {
    nock(ROOT).post('/api.php/token').reply(302, '', { Location: 'https://glpi.test/api.php/token' });
    const c = client(ROOT);
    const e = await failure(c.open());
    expect({ kind: e.kind, code: e.code }).toEqual({ kind: 'login', code: 'GLPI_REDIRECT' });
    expect(e.message).toContain('https://glpi.test/api.php/token');
    expect(c.sessionState).toBe('login_failed');
  });

  it('a token endpoint that is down is retryable, not a login failure', async () => {
    nock(ROOT).post('/api.php/token').reply(503, '<html>503</html>');
    const c = client(ROOT);
    const e = await failure(c.open());
    expect({ kind: e.kind, mayHaveLanded: e.mayHaveLanded }).toEqual({ kind: 'retryable', mayHaveLanded: false });
    expect(c.sessionState).toBe('none');
    expect(c.lastLoginError).toBe(e.message);
  });
});

describe('classification', () => {
  const create = (status: number, body: unknown, retryAfter?: string) => fromV2Response(status, body, retryAfter, 'create');
  it.each([
    ['500 Failed to create (GLPI refused)', create(500, { status: 'ERROR', title: 'Failed to create item(s)', detail: null, additional_messages: [{ priority: 'error', message: 'x' }] }), { kind: 'permanent', code: 'ERROR_GLPI_ADD', mayHaveLanded: false }],
    ['403 on a create', create(403, { status: 'ERROR_RIGHT_MISSING', title: "You don't have permission to perform this action.", detail: null }), { kind: 'permanent', code: 'ERROR_GLPI_ADD', mayHaveLanded: false }],
    ['500 Failed to update', fromV2Response(500, { status: 'ERROR', title: 'Failed to update item(s)', detail: null }, undefined, 'update'), { kind: 'permanent', code: 'ERROR_GLPI_UPDATE', mayHaveLanded: false }],
    ['403 on a read', fromV2Response(403, { status: 'ERROR_RIGHT_MISSING', title: 'x', detail: null }, undefined, 'read'), { kind: 'permanent', code: 'ERROR_RIGHT_MISSING', mayHaveLanded: false }],
    ['404', fromV2Response(404, { status: 'ERROR_ITEM_NOT_FOUND', title: 'Not found', detail: null }, undefined, 'read'), { kind: 'permanent', code: 'ERROR_ITEM_NOT_FOUND', mayHaveLanded: false }],
    ['400 Invalid OAuth token', create(400, { status: 'ERROR_INVALID_PARAMETER', title: 'Invalid OAuth token', detail: 'Access token could not be verified' }), { kind: 'session', code: 'ERROR_INVALID_PARAMETER', mayHaveLanded: false }],
    ['401 unauthenticated', create(401, { title: 'You are not authenticated', detail: 'The Authorization header is missing or invalid', status: 'ERROR_UNAUTHENTICATED' }), { kind: 'session', code: 'ERROR_UNAUTHENTICATED', mayHaveLanded: false }],
    ['500 with a null body', create(500, null), { kind: 'retryable', code: 'HTTP_500', mayHaveLanded: true }],
    ['503 page of the web server', create(503, '<html>down</html>'), { kind: 'retryable', code: 'HTTP_503', mayHaveLanded: false }],
    ['other 500 from GLPI on a create', create(500, { status: 'ERROR', title: 'An error occurred while processing your request.', detail: null }), { kind: 'retryable', code: 'ERROR', mayHaveLanded: true }],
    ['400 invalid parameter', fromV2Response(400, { status: 'ERROR_INVALID_PARAMETER', title: 'RSQL query has one or more unclosed groups', detail: null }, undefined, 'read'), { kind: 'permanent', code: 'ERROR_INVALID_PARAMETER', mayHaveLanded: false }],
    ['token: wrong login', fromTokenResponse(400, { error: 'invalid_grant', error_description: 'The user credentials were incorrect.' }, undefined), { kind: 'login', code: 'OAUTH_INVALID_GRANT', mayHaveLanded: false }],
    ['token: wrong client (league 7: invalid_credentials 401)', fromTokenResponse(401, { error: 'invalid_credentials', message: 'The user credentials were incorrect.' }, undefined), { kind: 'login', code: 'OAUTH_INVALID_CREDENTIALS', mayHaveLanded: false }],
    ['token: server error', fromTokenResponse(500, null, undefined), { kind: 'retryable', code: 'HTTP_500', mayHaveLanded: true }],
  ])('%s', (_name, e, expected) => {
    expect({ kind: e.kind, code: e.code, mayHaveLanded: e.mayHaveLanded }).toEqual(expected);
  });

  it('a 429 keeps its Retry-After', () => {
    const e = create(429, '<html>slow down</html>', '7');
    expect({ kind: e.kind, retryAfterMs: e.retryAfterMs, outage: e.outage, mayHaveLanded: e.mayHaveLanded }).toEqual({ kind: 'retryable', retryAfterMs: 7000, outage: true, mayHaveLanded: false });
  });

  it('the token endpoint\'s refusal names what to fix', () => {
    expect(fromTokenResponse(401, { error: 'invalid_client', error_description: 'Client authentication failed' }, undefined).message).toContain('glpi.client_id');
    expect(fromTokenResponse(400, { error: 'invalid_grant', error_description: 'The user credentials were incorrect.' }, undefined).message).toContain('glpi.password');
    // IPRestrictionRequestMiddleware: league's accessDenied() with GLPI's hint.
    const ip = fromTokenResponse(401, { error: 'access_denied', error_description: 'The resource owner or authorization server denied the request.', hint: 'Your IP address is not allowed to use this OAuth client.' }, undefined);
    expect({ kind: ip.kind, code: ip.code }).toEqual({ kind: 'login', code: 'OAUTH_ACCESS_DENIED' });
    expect(ip.message).toContain('Your IP address is not allowed to use this OAuth client.');
  });
});

describe('against the fake GLPI 11', () => {
  const allowLocal = () => nock.enableNetConnect('127.0.0.1');
  let fake: FakeGlpi | undefined;
  let c: GlpiV2Client | undefined;
  beforeEach(allowLocal);
  afterEach(async () => {
    await c?.close();
    await fake?.close();
    c = undefined;
    fake = undefined;
  });

  /** A test whose failure prints every request the fake GLPI answered (its whole log). */
  const test = (name: string, fn: () => Promise<void>) =>
    it(name, async () => {
      try {
        await fn();
      } catch (e) {
        if (fake) process.stderr.write(`fake GLPI requests:\n${fake.requests.map((r) => `  ${r.method} ${r.path} → ${r.status}`).join('\n')}\n`);
        throw e;
      }
    });

  async function start(extra: Partial<GlpiV2ClientOptions> = {}, fakeOpt: ConstructorParameters<typeof FakeGlpi>[0] = {}): Promise<{ c: GlpiV2Client; fake: FakeGlpi }> {
    fake = new FakeGlpi({ version: '11', userTokens: [], accounts: [{ id: 12, name: 'zabbix-bridge', password: 'bridge-pass' }], ...fakeOpt });
    const url = (await fake.listen(0)).replace(/\/apirest\.php$/, '');
    c = client(url, extra);
    return { c, fake };
  }

  test('one store behind both APIs: a ticket made through v2 is the legacy API\'s ticket too, and snapshot() shows it', async () => {
    const { c, fake } = await start({}, { accounts: [{ id: 12, name: 'zabbix-bridge', password: 'bridge-pass', userToken: 'tok-bridge' }] });
    const legacy = new GlpiClient({ url: fake.urlV1, appToken: new Secret(''), userToken: new Secret('tok-bridge'), username: '', password: new Secret(''), timeoutMs: 2000, logger: pino({ level: 'silent' }) });
    try {
      const id = await c.createTicket(draft);
      expect(await legacy.findTicketByMarker(MARKER)).toBe(id);
      await legacy.addFollowup(id, 'from v1 & <friends>', { isPrivate: false });
      await c.addFollowup(id, 'from v2', { isPrivate: true });
      expect(await c.followupContents(id)).toEqual(['from v1 & <friends>', 'from v2']);
      expect(await legacy.followupContents(id)).toEqual(['from v1 & <friends>', 'from v2']);
      fake.setTicketStatus(id, STATUS.SOLVED);
      expect([await c.ticketStatus(id), await legacy.ticketStatus(id)]).toEqual([STATUS.SOLVED, STATUS.SOLVED]);
      expect(fake.snapshot().tickets.map((t) => [t.id, t.externalid])).toEqual([[id, MARKER]]);
    } finally {
      await legacy.close();
    }
  });

  test('a web server that strips Authorization: a login failure naming the fix, after one new token', async () => {
    const { c, fake } = await start({}, { stripAuthorization: true });
    const e = await failure(c.ticketStatus(1));
    expect(e.kind).toBe('login');
    expect(e.message).toContain('CGIPassAuth On');
    expect(c.sessionState).toBe('login_failed');
    expect(c.lastLoginError).toBe(e.message);
    expect(fake.v2.tokensIssued).toBe(2);
  });

  test('a group that cannot be assigned keeps the ticket (no second one on retry) and says so', async () => {
    const { logger, logs } = logging();
    const { c, fake } = await start({ logger }, { groups: [3] });
    const id = await c.createTicket({ ...draft, groups_id_assign: 4 });
    expect(fake.tickets.get(id)).toMatchObject({ groups_id_assign: [], externalid: MARKER });
    expect(logs.find((l) => l.code === 'GLPI_GROUP_NOT_ASSIGNED')).toMatchObject({ ticket_id: id, group_id: 4 });
    expect(await c.findTicketByMarker(MARKER)).toBe(id);
  });

  test('an update field with no counterpart in the high-level API is an error, not a silently dropped property', async () => {
    const { c, fake } = await start();
    const id = await c.createTicket(draft);
    const before = fake.requests.length;
    await expect(c.updateTicket(id, { _groups_id_assign: 3 })).rejects.toThrow('has no counterpart');
    expect(fake.requests.length).toBe(before);
  });

  test('a solution type cannot be sent: the solution is added without one, said once', async () => {
    const { logger, logs } = logging();
    const { c, fake } = await start({ logger });
    const a = await c.createTicket(draft);
    const b = await c.createTicket({ ...draft, marker: '[zbx:00000000000000000abd]' });
    expect(await c.addSolution(a, 'done', 2)).toBe('added');
    expect(await c.addSolution(b, 'done', 2)).toBe('added');
    expect(fake.tickets.get(a)?.status).toBe(STATUS.SOLVED);
    expect(logs.filter((l) => l.solution_type_id === 2)).toHaveLength(1);
  });

  test('GLPI\'s rate limit (429 + Retry-After) and a hung request reach the dispatcher as retryable', async () => {
    const { c, fake } = await start({ timeoutMs: 300 });
    await c.open();
    fake.setFaults({ rateLimitNext: 1, retryAfterSeconds: 2 });
    const limited = await failure(c.createTicket(draft));
    expect({ kind: limited.kind, retryAfterMs: limited.retryAfterMs, mayHaveLanded: limited.mayHaveLanded }).toEqual({ kind: 'retryable', retryAfterMs: 2000, mayHaveLanded: false });
    fake.setFaults({ hangNext: 1 });
    const hung = await failure(c.createTicket(draft));
    expect({ kind: hung.kind, mayHaveLanded: hung.mayHaveLanded }).toEqual({ kind: 'retryable', mayHaveLanded: true });
    expect(fake.tickets.size).toBe(0);
  });

  test('glpiMajor is 11 once GLPI gave a token; a dropdown, a group and an entity are checked where the API keeps them', async () => {
    const { c, fake } = await start({}, { categories: [5], groups: [3] });
    expect(await c.glpiMajor()).toBe(11);
    expect(await c.itemStatus('ITILCategory', 5)).toBe('exists');
    expect(await c.itemStatus('RequestType', 1)).toBe('exists');
    expect(await c.itemStatus('Group', 9)).toBe('missing');
    expect(fake.requests.filter((r) => r.path.startsWith('/api.php/v2/')).map((r) => r.path)).toEqual([
      '/api.php/v2/Dropdowns/ITILCategory/5',
      '/api.php/v2/Dropdowns/RequestType/1',
      '/api.php/v2/Administration/Group/9',
    ]);
  });
});
