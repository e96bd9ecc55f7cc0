/**
 * The GLPI 11 high-level API ("v2") contract the bridge relies on, asserted against two targets with the
 * same code: the recorded answers (test/fixtures/glpi/recorded-v2.ts, each exchange citing GLPI's source)
 * and the fake (src/glpi-fake/v2) over HTTP. Expected values are written here from GLPI's source
 * (docs/glpi-api-v2.md), independently of the fake. A test that passes on "recorded" and fails on "fake"
 * is a place where the fake is kinder (or harsher) than GLPI.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { V2_SCENARIOS, v2Scenario, type V2Request } from '../fixtures/glpi/recorded-v2.js';
import { fakeV2Target, recordedV2Target, type GlpiV2, type Res, type V2Target } from './harness-v2.js';

const CLIENT = { id: 'c1f0a9e8d7c6b5a4', secret: 's3cr3t-0f-th3-cl13nt' };
const BRIDGE = { name: 'zabbix-bridge', password: 'bridge-pass' };
const ALICE = { name: 'alice', password: 'alice-pass' };
const M1 = '[zbx:0123456789abcdef0123]';

const grant = (extra: Record<string, string>): V2Request => ({ method: 'POST', path: 'api.php/token', form: { client_id: CLIENT.id, client_secret: CLIENT.secret, ...extra } });
const passwordGrant = (u: { name: string; password: string }) => grant({ grant_type: 'password', username: u.name, password: u.password, scope: 'api' });

async function login(g: GlpiV2, u: { name: string; password: string }): Promise<{ access: string; refresh: string }> {
  const res = await g.send(passwordGrant(u));
  expect(res.status).toBe(200);
  expect(res.body).toEqual({ token_type: 'Bearer', expires_in: 3600, access_token: expect.any(String), refresh_token: expect.any(String) });
  const b = res.body as { access_token: string; refresh_token: string };
  return { access: b.access_token, refresh: b.refresh_token };
}

function expectError(res: Res, status: number, code: string, title: string, detail: unknown = null): void {
  expect({ status: res.status, body: res.body }).toEqual({ status, body: { status: code, title, detail } });
}

class Api {
  constructor(
    readonly g: GlpiV2,
    readonly token: string,
  ) {}
  send(method: string, path: string, body?: unknown, extra: Partial<V2Request> = {}): Promise<Res> {
    return this.g.send({ method, path: `api.php/v2/${path}`, headers: { Authorization: `Bearer ${this.token}`, ...extra.headers }, ...(body === undefined ? {} : { body }), ...(extra.raw !== undefined ? { raw: extra.raw, contentType: extra.contentType ?? 'application/json' } : {}) });
  }
  async create(path: string, body: unknown): Promise<number> {
    const res = await this.send('POST', path, body);
    // A create answers 200 (not 201) with the new id and its API path.
    expect(res.status).toBe(200);
    const b = res.body as { id: number; href: string };
    expect(Number.isInteger(b.id) && b.id > 0).toBe(true);
    expect(b.href).toBe(`/${path}/${b.id}`);
    expect(res.headers.location).toBe(b.href);
    return b.id;
  }
  async ticket(id: number): Promise<Record<string, unknown>> {
    const res = await this.send('GET', `Assistance/Ticket/${id}`);
    expect(res.status).toBe(200);
    return res.body as Record<string, unknown>;
  }
}

const RIGHTS = "You don't have permission to perform this action.";
const FAILED_CREATE = 'Failed to create item(s)';

const targets: V2Target[] = [recordedV2Target, fakeV2Target];

describe.each(targets)('GLPI high-level API (v2) contract — $name', (target) => {
  let glpi: GlpiV2 | undefined;
  const open = async (name: string) => {
    glpi = await target.open(v2Scenario(name));
    return glpi;
  };
  afterEach(async () => {
    const g = glpi;
    glpi = undefined;
    await g?.close();
  });

  it('tokens: the password grant, its refusals, an expired token is a 400, the refresh grant', async () => {
    const g = await open('tokens');
    const index = await g.send({ method: 'GET', path: 'api.php/' });
    expect(index.status).toBe(200);
    expect((index.body as { api_versions: { api_version: string; version: string }[] }).api_versions.filter((v) => v.api_version === '2').map((v) => v.version)).toContain('2.0.0');
    const anonymous = await g.send({ method: 'GET', path: 'api.php/v2/session' });
    expect({ status: anonymous.status, body: anonymous.body }).toEqual({ status: 401, body: { title: 'You are not authenticated', detail: 'The Authorization header is missing or invalid', status: 'ERROR_UNAUTHENTICATED' } });

    const wrongPassword = await g.send(passwordGrant({ name: BRIDGE.name, password: 'wrong' }));
    expect(wrongPassword.status).toBe(400);
    expect(wrongPassword.body).toMatchObject({ error: 'invalid_grant' });
    const wrongSecret = await g.send({ ...passwordGrant(BRIDGE), form: { ...passwordGrant(BRIDGE).form!, client_secret: 'nope' } });
    expect(wrongSecret.status).toBe(401);
    expect(wrongSecret.body).toMatchObject({ error: 'invalid_client' });
    expect(wrongSecret.headers['www-authenticate']).toBe('Basic realm="OAuth"');
    const badGrant = await g.send(grant({ grant_type: 'magic' }));
    expect(badGrant.status).toBe(400);
    expect(badGrant.body).toMatchObject({ error: 'unsupported_grant_type' });
    const noUser = await g.send(grant({ grant_type: 'password', password: BRIDGE.password, scope: 'api' }));
    expect(noUser.status).toBe(400);
    expect(noUser.body).toMatchObject({ error: 'invalid_request', hint: 'Check the `username` parameter' });

    const t1 = await login(g, BRIDGE);
    const session = await new Api(g, t1.access).send('GET', 'session');
    expect(session.status).toBe(200);
    expect(session.body).toMatchObject({ user_id: 12, name: 'zabbix-bridge', active_entities: [0], active_entity: { id: 0 } });
    expectError(await new Api(g, 'not-a-jwt').send('GET', 'session'), 400, 'ERROR_INVALID_PARAMETER', 'Invalid OAuth token', 'The JWT string must have two dots');

    await g.expireTokens();
    expectError(await new Api(g, t1.access).send('GET', 'session'), 400, 'ERROR_INVALID_PARAMETER', 'Invalid OAuth token', 'Access token could not be verified');
    const refreshed = await g.send(grant({ grant_type: 'refresh_token', refresh_token: t1.refresh, scope: 'api' }));
    expect(refreshed.status).toBe(200);
    const t2 = refreshed.body as { access_token: string; refresh_token: string };
    expect(t2.access_token).not.toBe(t1.access);
    expect(t2.refresh_token).not.toBe(t1.refresh);
    const reused = await g.send(grant({ grant_type: 'refresh_token', refresh_token: t1.refresh, scope: 'api' }));
    expect(reused.status).toBe(401);
    expect(reused.body).toMatchObject({ error: 'invalid_request', error_description: 'The refresh token is invalid.' });
    expect((await new Api(g, t2.access_token).send('GET', 'session')).status).toBe(200);
    // The Bearer header is checked before routing, on /token too.
    const staleHeader = await g.send({ ...passwordGrant(BRIDGE), headers: { Authorization: `Bearer ${t1.access}` } });
    expectError(staleHeader, 400, 'ERROR_INVALID_PARAMETER', 'Invalid OAuth token', 'Access token could not be verified');
  });

  it('tickets: create answers 200, unknown properties are dropped silently, PATCH answers the stored ticket', async () => {
    const g = await open('tickets');
    const api = new Api(g, (await login(g, BRIDGE)).access);
    const id = await api.create('Assistance/Ticket', {
      name: 'Disk full on db1', content: 'Disk / is 97% full', urgency: 4, impact: 3, type: 1, entity: { id: 0 }, request_type: { id: 1 },
      external_id: M1, _groups_id_assign: 3, users_id_recipient: 13, _no_reopen: 1,
    });
    const stored = await api.ticket(id);
    expect(stored).toMatchObject({ id, name: 'Disk full on db1', urgency: 4, impact: 3, type: 1, external_id: M1, status: { id: 1, name: 'New' }, entity: { id: 0 }, request_type: { id: 1 } });
    // Neither the group nor the writer sent reached GLPI: the bridge is the requester, nobody is assigned.
    expect((stored.team as { role: string; href: string }[]).map((m) => [m.role, m.href])).toEqual([['requester', '/front/user.form.php?id=12']]);
    const member = await api.send('POST', `Assistance/Ticket/${id}/TeamMember`, { type: 'Group', id: 3, role: 2 });
    expect({ status: member.status, body: member.body }).toEqual({ status: 201, body: null });
    const assigned = await api.ticket(id);
    expect(assigned.status).toEqual({ id: 2, name: 'Processing (assigned)' });
    expect((assigned.team as { role: string; href: string }[]).map((m) => [m.role, m.href])).toEqual([['requester', '/front/user.form.php?id=12'], ['assigned', '/front/group.form.php?id=3']]);

    const patched = await api.send('PATCH', `Assistance/Ticket/${id}`, { urgency: 5, status: { id: 4 }, itilcategories_id: 9 });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ id, urgency: 5, status: { id: 4, name: 'Pending' }, category: null });
    const charset = await api.send('PATCH', `Assistance/Ticket/${id}`, undefined, { raw: '{"urgency": 1}', contentType: 'application/json; charset=UTF-8' });
    expect(charset.status).toBe(200);
    expect(charset.body).toMatchObject({ urgency: 5 });
    expectError(await api.send('PATCH', `Assistance/Ticket/${id}`, undefined, { raw: '{"urgency": ', contentType: 'application/json' }), 400, 'ERROR', 'Invalid JSON body');
    expectError(await api.send('GET', 'Assistance/Ticket/999999'), 404, 'ERROR_ITEM_NOT_FOUND', 'Not found');
    expectError(await api.send('PATCH', 'Assistance/Ticket/999999', { urgency: 5 }), 404, 'ERROR_ITEM_NOT_FOUND', 'Not found');
    expectError(await api.send('GET', 'Assistance/Tickets'), 404, 'ERROR_ITEM_NOT_FOUND', 'Not found');
    expectError(await api.send('GET', 'Dropdowns/ITILCategory/999'), 404, 'ERROR_ITEM_NOT_FOUND', 'Not found');
  });

  it('search: RSQL on external_id finds every holder of the marker; an unknown property is ignored (everything matches)', async () => {
    const g = await open('search');
    const bridge = new Api(g, (await login(g, BRIDGE)).access);
    const alice = new Api(g, (await login(g, ALICE)).access);
    const spoof = await alice.create('Assistance/Ticket', { name: 'Spoof', content: 'x', external_id: M1 });
    const mine = await bridge.create('Assistance/Ticket', { name: 'Mine', content: 'y', external_id: M1 });
    const found = await bridge.send('GET', `Assistance/Ticket?filter=${encodeURIComponent(`external_id=="${M1}"`)}`);
    expect(found.status).toBe(200);
    expect(found.headers['content-range']).toBe('0-1/2');
    const rows = found.body as { id: number; external_id: string; team: { role: string; name: string }[] }[];
    expect(rows.map((r) => [r.id, r.external_id, r.team.find((m) => m.role === 'requester')?.name])).toEqual([[spoof, M1, 'alice'], [mine, M1, 'zabbix-bridge']]);
    const live = await bridge.send('GET', `Assistance/Ticket?filter=${encodeURIComponent(`external_id=="${M1}";is_deleted==false`)}`);
    expect({ status: live.status, ids: (live.body as { id: number }[]).map((r) => r.id) }).toEqual({ status: 200, ids: [spoof, mine] });
    const none = await bridge.send('GET', `Assistance/Ticket?filter=${encodeURIComponent('external_id=="[zbx:ffffffffffffffffffff]"')}`);
    expect({ status: none.status, body: none.body, range: none.headers['content-range'] }).toEqual({ status: 200, body: [], range: '0--1/0' });
    const typo = await bridge.send('GET', `Assistance/Ticket?filter=${encodeURIComponent(`externalid=="${M1}"`)}&limit=1`);
    expect({ status: typo.status, range: typo.headers['content-range'], ids: (typo.body as { id: number }[]).map((r) => r.id) }).toEqual({ status: 206, range: '0-0/2', ids: [spoof] });
    expectError(await bridge.send('GET', `Assistance/Ticket?filter=${encodeURIComponent('(name=="Mine"')}`), 400, 'ERROR_INVALID_PARAMETER', 'RSQL query has one or more unclosed groups');
  });

  it('timeline: follow-ups and solutions, wrapped items, refusals as 500 with GLPI\'s (translated) message, 403 on a closed ticket', async () => {
    const g = await open('timeline');
    const api = new Api(g, (await login(g, BRIDGE)).access);
    const id = await api.create('Assistance/Ticket', { name: 'Load high', content: 'load 12' });
    const text = 'checked <b>&amp;</b> "ok" é 🚀';
    const fup = await api.create(`Assistance/Ticket/${id}/Timeline/Followup`, { content: text, is_private: true });
    const list = await api.send('GET', `Assistance/Ticket/${id}/Timeline/Followup`);
    expect(list.status).toBe(200);
    expect(list.body).toEqual([{ type: 'Followup', item: expect.objectContaining({ id: fup, itemtype: 'Ticket', items_id: id, content: text, is_private: true }) }]);
    await g.setTicketStatus(id, 4);
    await api.create(`Assistance/Ticket/${id}/Timeline/Followup`, { content: 'still high', _no_reopen: 1 });
    // `_no_reopen` was dropped: the follow-up reopened the pending ticket.
    expect((await api.ticket(id)).status).toEqual({ id: 1, name: 'New' });
    // A refused create: 500, GLPI's own message among the additional messages (nothing was written).
    const empty = await api.send('POST', `Assistance/Ticket/${id}/Timeline/Followup`, { content: '' });
    expect({ status: empty.status, body: empty.body }).toEqual({ status: 500, body: { status: 'ERROR', title: FAILED_CREATE, detail: null, additional_messages: [{ priority: 'error', message: "You can't add a followup without description" }] } });
    // The Solution schema has no type: solutiontypes_id is dropped, the solution is added.
    const sol = await api.create(`Assistance/Ticket/${id}/Timeline/Solution`, { content: 'recovered', solutiontypes_id: 2 });
    const again = await api.send('POST', `Assistance/Ticket/${id}/Timeline/Solution`, { content: 'again' });
    expect({ status: again.status, body: again.body }).toEqual({ status: 500, body: { status: 'ERROR', title: FAILED_CREATE, detail: null, additional_messages: [{ priority: 'error', message: 'The item is already solved, did anyone pushed a solution before you?' }] } });
    const solutions = await api.send('GET', `Assistance/Ticket/${id}/Timeline/Solution`);
    expect(solutions.body).toEqual([{ type: 'Solution', item: { id: sol, itemtype: 'Ticket', items_id: id, content: 'recovered', user: { id: 12, name: 'zabbix-bridge' }, user_editor: null } }]);
    // Accept-Language sets the session's language: GLPI's message translated, the title not.
    const french = await api.send('POST', `Assistance/Ticket/${id}/Timeline/Solution`, { content: 'encore' }, { headers: { 'Accept-Language': 'fr-FR,fr;q=0.9' } });
    expect({ status: french.status, title: (french.body as { title: string }).title, messages: (french.body as { additional_messages: unknown }).additional_messages }).toEqual({
      status: 500,
      title: FAILED_CREATE,
      messages: [{ priority: 'error', message: "Cet élément a déjà été résolu, quelqu'un n'aurait-il pas écrit une solution avant vous ?" }],
    });
    await g.setTicketStatus(id, 6);
    expectError(await api.send('POST', `Assistance/Ticket/${id}/Timeline/Followup`, { content: 'late news' }), 403, 'ERROR_RIGHT_MISSING', RIGHTS);
    expectError(await api.send('POST', `Assistance/Ticket/${id}/Timeline/Solution`, { content: 'late' }), 403, 'ERROR_RIGHT_MISSING', RIGHTS);
    expectError(await api.send('GET', 'Assistance/Ticket/999999/Timeline/Followup'), 404, 'ERROR_ITEM_NOT_FOUND', 'Not found');
  });

  it('team: users join a ticket by role through TeamMember (201, no body; role as CommonITILActor\'s number), actor inputs on create are dropped, an unknown user is a 400', async () => {
    const g = await open('team');
    const api = new Api(g, (await login(g, BRIDGE)).access);
    const id = await api.create('Assistance/Ticket', { name: 'CPU high on web1', content: 'load 40', _users_id_assign: 13, _users_id_observer: [13] });
    const fresh = await api.ticket(id);
    expect({ status: fresh.status, team: (fresh.team as { role: string; href: string }[]).map((m) => [m.role, m.href]) }).toEqual({ status: { id: 1, name: 'New' }, team: [['requester', '/front/user.form.php?id=12']] });
    const observer = await api.send('POST', `Assistance/Ticket/${id}/TeamMember`, { type: 'User', id: 13, role: 3 });
    expect({ status: observer.status, body: observer.body }).toEqual({ status: 201, body: null });
    expectError(await api.send('POST', `Assistance/Ticket/${id}/TeamMember`, { type: 'User', id: 999999, role: 2 }), 400, 'ERROR_INVALID_PARAMETER', 'One or more parameters are invalid');
    expect((await api.send('POST', `Assistance/Ticket/${id}/TeamMember`, { type: 'User', id: 13, role: 2 })).status).toBe(201);
    const members = await api.send('GET', `Assistance/Ticket/${id}/TeamMember`);
    expect(members.status).toBe(200);
    const byRole = (members.body as { role: string; name: string; href: string }[]).map((m) => `${m.role} ${m.name} ${m.href}`).sort();
    expect(byRole).toEqual(['assigned alice /front/user.form.php?id=13', 'observer alice /front/user.form.php?id=13', 'requester zabbix-bridge /front/user.form.php?id=12']);
    expect((await api.ticket(id)).status).toEqual({ id: 2, name: 'Processing (assigned)' });
  });

  it('problems: served like tickets under /Assistance/Problem (create, get, RSQL like on the name, follow-ups, team); no external_id; no route links them to tickets', async () => {
    const g = await open('problems');
    const bridge = new Api(g, (await login(g, BRIDGE)).access);
    const alice = new Api(g, (await login(g, ALICE)).access);
    const P1 = '[zbx:p0123456789abcdef0123]';
    const spoof = await alice.create('Assistance/Problem', { name: `${P1} spoof`, content: 'x' });
    const mine = await bridge.create('Assistance/Problem', { name: `${P1} Recurring: Disk full`, content: 'recurring', urgency: 4, impact: 3, entity: { id: 0 }, _tickets_id: 4711, external_id: P1, type: 1 });
    const got = await bridge.send('GET', `Assistance/Problem/${mine}`);
    expect(got.status).toBe(200);
    const row = got.body as Record<string, unknown>;
    expect(row).toMatchObject({ id: mine, name: `${P1} Recurring: Disk full`, content: 'recurring', urgency: 4, impact: 3, status: { id: 1, name: 'New' }, entity: { id: 0 } });
    expect(Object.keys(row)).not.toEqual(expect.arrayContaining(['external_id']));
    expect(Object.keys(row)).not.toContain('type');
    expect((row.team as { role: string; href: string }[]).map((m) => [m.role, m.href])).toEqual([['requester', '/front/user.form.php?id=12']]);
    const like = await bridge.send('GET', `Assistance/Problem?filter=${encodeURIComponent(`name=like="*${P1}*"`)}`);
    expect({ status: like.status, range: like.headers['content-range'], ids: (like.body as { id: number }[]).map((r) => r.id) }).toEqual({ status: 200, range: '0-1/2', ids: [spoof, mine] });
    const ignored = await bridge.send('GET', `Assistance/Problem?filter=${encodeURIComponent(`external_id=="${P1}"`)}&limit=1`);
    expect({ status: ignored.status, range: ignored.headers['content-range'] }).toEqual({ status: 206, range: '0-0/2' });
    const note = 'Ticket #4711 <small>[zbx-link:ticket:4711]</small>';
    const fup = await bridge.create(`Assistance/Problem/${mine}/Timeline/Followup`, { content: note, is_private: false });
    const notes = await bridge.send('GET', `Assistance/Problem/${mine}/Timeline/Followup`);
    expect(notes.body).toEqual([{ type: 'Followup', item: expect.objectContaining({ id: fup, itemtype: 'Problem', items_id: mine, content: note, is_private: false }) }]);
    expect((await bridge.send('POST', `Assistance/Problem/${mine}/TeamMember`, { type: 'User', id: 13, role: 3 })).status).toBe(201);
    const observed = (await bridge.send('GET', `Assistance/Problem/${mine}`)).body as { team: { role: string; href: string }[] };
    expect(observed.team.map((m) => [m.role, m.href]).sort()).toEqual([['observer', '/front/user.form.php?id=13'], ['requester', '/front/user.form.php?id=12']]);
    expectError(await bridge.send('GET', 'Assistance/Problem_Ticket'), 404, 'ERROR_ITEM_NOT_FOUND', 'Not found');
    expectError(await bridge.send('GET', `Assistance/Problem/${mine}/Ticket`), 404, 'ERROR_ITEM_NOT_FOUND', 'Not found');
    expectError(await bridge.send('POST', 'Assistance/Ticket_Ticket', { tickets_id_1: 1, tickets_id_2: 2, link: 1 }), 404, 'ERROR_ITEM_NOT_FOUND', 'Not found');
    expectError(await bridge.send('GET', 'Assistance/Problem/999999'), 404, 'ERROR_ITEM_NOT_FOUND', 'Not found');
  });

  it('read-back: the bridge\'s markers by like, modified after a date (the column\'s text), sorted by date_mod; a follow-up says who wrote it', async () => {
    const g = await open('readback');
    const bridge = new Api(g, (await login(g, BRIDGE)).access);
    const alice = new Api(g, (await login(g, ALICE)).access);
    const mine = await bridge.create('Assistance/Ticket', { name: 'Disk full on db1', content: 'x', external_id: M1 });
    await alice.create('Assistance/Ticket', { name: 'Printer', content: 'y', external_id: 'ext-123' });
    const q = (after: string) => `Assistance/Ticket?filter=${encodeURIComponent(`external_id=like="[zbx:*";is_deleted==false;date_mod=gt="${after}"`)}&sort=${encodeURIComponent('date_mod:asc')}&start=0&limit=1000`;
    const recent = await bridge.send('GET', q('2026-01-01 00:00:00'));
    expect({ status: recent.status, ids: (recent.body as { id: number }[]).map((r) => r.id), range: recent.headers['content-range'] }).toEqual({ status: 200, ids: [mine], range: '0-0/1' });
    expect((recent.body as { date_mod: string }[])[0]!.date_mod).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$/);
    const none = await bridge.send('GET', q('2099-01-01 00:00:00'));
    expect({ status: none.status, body: none.body }).toEqual({ status: 200, body: [] });
    const fup = await alice.create(`Assistance/Ticket/${mine}/Timeline/Followup`, { content: 'Rebooted & watching', is_private: false });
    const list = await bridge.send('GET', `Assistance/Ticket/${mine}/Timeline/Followup`);
    expect(list.body).toEqual([{ type: 'Followup', item: expect.objectContaining({ id: fup, content: 'Rebooted & watching', is_private: false, user: { id: 13, name: 'alice' } }) }]);
  });

  it('a web server that strips Authorization: the token request works, every API call is "not authenticated"', async () => {
    const g = await open('authorization-stripped');
    const api = new Api(g, (await login(g, BRIDGE)).access);
    const res = await api.send('GET', 'session');
    expect({ status: res.status, body: res.body }).toEqual({ status: 401, body: { title: 'You are not authenticated', detail: 'The Authorization header is missing or invalid', status: 'ERROR_UNAUTHENTICATED' } });
  });

  it('entities: a create in an entity the user cannot see is a 403; without an entity, the active one', async () => {
    const g = await open('entities');
    const api = new Api(g, (await login(g, BRIDGE)).access);
    expectError(await api.send('POST', 'Assistance/Ticket', { name: 'Elsewhere', content: 'x', entity: { id: 0 } }), 403, 'ERROR_RIGHT_MISSING', RIGHTS);
    const id = await api.create('Assistance/Ticket', { name: 'Here', content: 'x' });
    expect(id).toBeGreaterThan(0);
  });
});

/**
 * Every recorded exchange, replayed on the fake: same status, same headers named in the recording (and no
 * Location or Content-Range the recording lacks), same body once ids and tokens are mapped to the fake's;
 * dates are compared by type only.
 */
describe('the fake answers every recorded v2 exchange like GLPI', () => {
  const VOLATILE = new Set(['date', 'date_mod', 'date_creation', 'current_time']);

  function mapDeep(v: unknown, text: (s: string) => string, ids: Map<number, number>): unknown {
    if (typeof v === 'number') return ids.get(v) ?? v;
    if (typeof v === 'string') return text(v);
    if (Array.isArray(v)) return v.map((x) => mapDeep(x, text, ids));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, mapDeep(x, text, ids)]));
    return v;
  }

  function sameShape(actual: unknown, expected: unknown, path: string, key = ''): string[] {
    if (VOLATILE.has(key)) return typeof actual === typeof expected ? [] : [`${path}: ${JSON.stringify(actual)} is not a ${typeof expected}`];
    if (Array.isArray(expected)) {
      if (!Array.isArray(actual) || actual.length !== expected.length) return [`${path}: ${JSON.stringify(actual)?.slice(0, 300)} ≠ ${JSON.stringify(expected).slice(0, 300)}`];
      return expected.flatMap((e, i) => sameShape(actual[i], e, `${path}[${i}]`));
    }
    if (expected && typeof expected === 'object') {
      if (!actual || typeof actual !== 'object' || Array.isArray(actual)) return [`${path}: ${JSON.stringify(actual)} is not an object`];
      const a = Object.keys(actual).sort();
      const e = Object.keys(expected).sort();
      const keys = JSON.stringify(a) === JSON.stringify(e) ? [] : [`${path}: keys ${a.join(',')} ≠ ${e.join(',')}`];
      return [...keys, ...e.flatMap((k) => sameShape((actual as Record<string, unknown>)[k], (expected as Record<string, unknown>)[k], `${path}.${k}`, k))];
    }
    return actual === expected ? [] : [`${path}: ${JSON.stringify(actual)} ≠ ${JSON.stringify(expected)}`];
  }

  it.each(V2_SCENARIOS.map((s) => [s.name, s] as const))('%s', async (_name, s) => {
    const g = await fakeV2Target.open(s);
    const ids = new Map<number, number>();
    const tokens = new Map<string, string>();
    const text = (v: string) => {
      let out = v.split(s.root).join(g.root);
      for (const [from, to] of tokens) out = out.split(from).join(to);
      // Ids inside paths and hrefs (/Ticket/4711, ?id=12 stays: user ids are the site's).
      return out.replace(/\/(\d{3,})\b/g, (whole, n: string) => `/${ids.get(Number(n)) ?? n}`);
    };
    const problems: string[] = [];
    try {
      for (const [n, step] of s.steps.entries()) {
        if ('technician' in step) {
          await g.setTicketStatus(ids.get(step.technician.ticket) ?? step.technician.ticket, step.technician.status);
          continue;
        }
        if ('expireTokens' in step) {
          await g.expireTokens();
          continue;
        }
        const r = step.request;
        const req: V2Request = { ...r, path: text(r.path), ...(r.headers ? { headers: mapDeep(r.headers, text, ids) as Record<string, string> } : {}) };
        if (r.body !== undefined) req.body = mapDeep(r.body, text, ids);
        if (r.form !== undefined) req.form = mapDeep(r.form, text, ids) as Record<string, string>;
        const res = await g.send(req);
        const rec = step.answer.body as Record<string, unknown> | undefined;
        // Learn the fake's ids and tokens from what it made.
        if (res.status === 200 && step.answer.status === 200 && rec && typeof rec.href === 'string') ids.set(rec.id as number, (res.body as { id: number }).id);
        if (r.path === 'api.php/token' && res.status === 200 && rec) {
          tokens.set(rec.access_token as string, (res.body as { access_token: string }).access_token);
          tokens.set(rec.refresh_token as string, (res.body as { refresh_token: string }).refresh_token);
        }
        const where = `${s.name} step ${n + 1} (${r.method} ${r.path}${step.source ? `; ${step.source}` : ''})`;
        if (res.status !== step.answer.status) problems.push(`${where}: status ${res.status}, recorded ${step.answer.status}: ${JSON.stringify(res.body)?.slice(0, 300)}`);
        for (const [k, v] of Object.entries(step.answer.headers ?? {})) {
          if (res.headers[k.toLowerCase()] !== text(v)) problems.push(`${where}: header ${k} is ${res.headers[k.toLowerCase()]}, recorded ${text(v)}`);
        }
        for (const k of ['content-range', 'location']) {
          if (res.headers[k] !== undefined && !Object.keys(step.answer.headers ?? {}).some((h) => h.toLowerCase() === k)) problems.push(`${where}: header ${k} (${res.headers[k]}) is not in the recording`);
        }
        problems.push(...sameShape(res.body, mapDeep(rec, text, ids), where));
      }
    } finally {
      await g.close();
    }
    expect(problems).toEqual([]);
  });
});
