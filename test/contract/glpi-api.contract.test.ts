/**
 * The GLPI legacy API contract the bridge relies on, asserted against two targets with the same code:
 * the recorded answers of real GLPI (test/fixtures/glpi/recorded.ts, each exchange citing its source)
 * and the fake (src/glpi-fake) over HTTP. A test that passes on "recorded" and fails on "fake" is a
 * place where the fake is kinder (or harsher) than GLPI.
 *
 * Expected texts are written here from GLPI's source, independently of the fake's message table.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { SCENARIOS, scenario } from '../fixtures/glpi/recorded.js';
import { fakeTarget, recordedTarget, type Glpi, type Req, type Res, type Target } from './harness.js';

const EN = {
  rights: "You don't have permission to perform this action.",
  notFound: 'Item not found',
  tokenInvalid: 'session_token seems invalid',
  tokenMissing: 'parameter session_token is missing or empty',
  loginMissing: 'parameter(s) login, password or user_token are missing',
  userTokenInvalid: 'parameter user_token seems invalid',
  badArray: 'input parameter must be an array of objects',
  notCommonDbtm: 'resource not found or not an instance of CommonDBTM',
  noDescription: "You can't add a followup without description",
  alreadySolved: 'The item is already solved, did anyone pushed a solution before you?',
  badField: 'Bad field ID in search criteria',
  malformed: 'Malformed search criteria',
  doc: (api: string, code: string) => `; view documentation in your browser at ${api}/#${code}`,
};

// locales/fr_FR.po @ 7e4d3bea532dd2b44f2a87a644aa0f51ceefc771
const FR = {
  rights: "Vous n'avez pas les droits requis pour réaliser cette action.",
  notFound: 'Élément introuvable',
  tokenInvalid: 'session_token semble incorrect',
  tokenMissing: 'le paramètre session_token est manquant ou vide',
  noDescription: 'Vous ne pouvez pas ajouter de suivi sans une description',
  alreadySolved: "Cet élément a déjà été résolu, quelqu'un n'aurait-il pas écrit une solution avant vous ?",
  doc: (api: string, code: string) => `; Afficher la documentation dans votre navigateur à ${api}/#${code}`,
};

/** glpi_tickets columns of GLPI 10.0 (install/mysql/glpi-empty.sql @ 0041a2e0b7624e723d3488ec51988c3203ead0f8). */
const TICKET_COLUMNS_10 = [
  'id', 'entities_id', 'name', 'date', 'closedate', 'solvedate', 'takeintoaccountdate', 'date_mod', 'users_id_lastupdater', 'status',
  'users_id_recipient', 'requesttypes_id', 'content', 'urgency', 'impact', 'priority', 'itilcategories_id', 'type', 'global_validation',
  'slas_id_ttr', 'slas_id_tto', 'slalevels_id_ttr', 'time_to_resolve', 'time_to_own', 'begin_waiting_date', 'sla_waiting_duration',
  'ola_waiting_duration', 'olas_id_tto', 'olas_id_ttr', 'olalevels_id_ttr', 'ola_ttr_begin_date', 'internal_time_to_resolve',
  'internal_time_to_own', 'waiting_duration', 'close_delay_stat', 'solve_delay_stat', 'takeintoaccount_delay_stat', 'actiontime',
  'is_deleted', 'locations_id', 'validation_percent', 'date_creation',
];

function expectError(res: Res, status: number, code: string, message: unknown): void {
  expect({ status: res.status, body: res.body }).toEqual({ status, body: [code, message] });
}

const auth = (token: string) => ({ Authorization: `user_token ${token}` });

class Session {
  constructor(
    readonly glpi: Glpi,
    readonly token: string,
  ) {}
  static async open(glpi: Glpi, userToken: string): Promise<Session> {
    const res = await glpi.send({ method: 'GET', path: 'initSession', headers: auth(userToken) });
    expect(res.status).toBe(200);
    const token = (res.body as { session_token: string }).session_token;
    expect(typeof token).toBe('string');
    expect(token.length).toBeGreaterThan(0);
    return new Session(glpi, token);
  }
  send(req: Req): Promise<Res> {
    return this.glpi.send({ ...req, headers: { 'Session-Token': this.token, ...req.headers } });
  }
  get(path: string, headers?: Record<string, string>): Promise<Res> {
    return this.send({ method: 'GET', path, ...(headers ? { headers } : {}) });
  }
  post(path: string, body: unknown): Promise<Res> {
    return this.send({ method: 'POST', path, body });
  }
  async createTicket(input: Record<string, unknown>): Promise<number> {
    const res = await this.post('Ticket', { input });
    expect(res.status).toBe(201);
    const id = (res.body as { id: number }).id;
    expect(Number.isInteger(id) && id > 0).toBe(true);
    expect(res.headers.location).toBe(`${this.glpi.apiUrl}/Ticket/${id}`);
    return id;
  }
  followup(ticket: number, extra: Record<string, unknown>): Promise<Res> {
    return this.post(`Ticket/${ticket}/ITILFollowup`, { input: { itemtype: 'Ticket', items_id: ticket, ...extra } });
  }
  async ticket(id: number, headers?: Record<string, string>): Promise<Record<string, unknown>> {
    const res = await this.get(`Ticket/${id}?get_hateoas=false`, headers);
    expect(res.status).toBe(200);
    return res.body as Record<string, unknown>;
  }
}

const targets: Target[] = [recordedTarget, fakeTarget];

describe.each(targets)('GLPI legacy API contract — $name', (target) => {
  let glpi: Glpi | undefined;
  const open = async (name: string) => {
    glpi = await target.open(scenario(name));
    return glpi;
  };
  afterEach(async () => {
    const g = glpi;
    glpi = undefined;
    await g?.close();
  });

  it('sessions: missing and invalid tokens, getFullSession, killSession', async () => {
    const g = await open('sessions');
    expectError(await g.send({ method: 'GET', path: 'initSession' }), 400, 'ERROR_LOGIN_PARAMETERS_MISSING', EN.loginMissing + EN.doc(g.apiUrl, 'ERROR_LOGIN_PARAMETERS_MISSING'));
    expectError(await g.send({ method: 'GET', path: 'initSession', headers: auth('nope') }), 401, 'ERROR_GLPI_LOGIN_USER_TOKEN', EN.userTokenInvalid);
    const s = await Session.open(g, 'tok-bridge');
    expectError(await g.send({ method: 'GET', path: 'Ticket/1' }), 400, 'ERROR_SESSION_TOKEN_MISSING', EN.tokenMissing + EN.doc(g.apiUrl, 'ERROR_SESSION_TOKEN_MISSING'));
    expectError(await g.send({ method: 'GET', path: 'Ticket/1', headers: { 'Session-Token': 'not-a-session' } }), 401, 'ERROR_SESSION_TOKEN_INVALID', EN.tokenInvalid);
    const full = await s.get('getFullSession');
    expect(full.status).toBe(200);
    const session = (full.body as { session: Record<string, unknown> }).session;
    expect(session).toMatchObject({ glpiID: 12, glpiname: 'zabbix-bridge', glpiactiveentities: [0], glpiactive_entity: 0 });
    const config = await s.get('getGlpiConfig');
    expect(config.status).toBe(200);
    expect((config.body as { cfg_glpi: Record<string, unknown> }).cfg_glpi).toMatchObject({ version: expect.stringMatching(/^10\.0\./), urgency_mask: 62, impact_mask: 62 });
    const killed = await s.get('killSession');
    expect({ status: killed.status, body: killed.body }).toEqual({ status: 200, body: true });
    expectError(await s.get('killSession'), 401, 'ERROR_SESSION_TOKEN_INVALID', EN.tokenInvalid);
    const withSession = await g.send({ method: 'GET', path: 'initSession?get_full_session=true', headers: auth('tok-bridge') });
    expect(withSession.status).toBe(200);
    expect(withSession.body).toMatchObject({ session_token: expect.any(String), session: { glpiID: 12, glpiname: 'zabbix-bridge' } });
  });

  it('create, read, update: status codes, bodies and error codes', async () => {
    const g = await open('crud');
    const s = await Session.open(g, 'tok-bridge');
    expectError(await s.post('Ticket', {}), 400, 'ERROR_BAD_ARRAY', EN.badArray + EN.doc(g.apiUrl, 'ERROR_BAD_ARRAY'));
    const create = await s.post('Ticket', { input: { name: 'Disk full on db1', content: 'Disk / is 97% full', urgency: 4, impact: 3, _groups_id_assign: 5 } });
    expect(create.status).toBe(201);
    expect(create.body).toEqual({ id: expect.any(Number), message: expect.any(String) });
    const id = (create.body as { id: number }).id;
    expect(create.headers.location).toBe(`${g.apiUrl}/Ticket/${id}`);
    const row = await s.ticket(id);
    expect(Object.keys(row).sort()).toEqual([...TICKET_COLUMNS_10].sort());
    expect(row).toMatchObject({ id, name: 'Disk full on db1', content: 'Disk / is 97% full', status: 2, urgency: 4, impact: 3, priority: 4, users_id_recipient: 12, is_deleted: 0 });
    const update = await s.send({ method: 'PUT', path: `Ticket/${id}`, body: { input: { urgency: 5 } } });
    expect({ status: update.status, body: update.body }).toEqual({ status: 200, body: [{ [String(id)]: true, message: '' }] });
    expectError(await s.send({ method: 'PUT', path: 'Ticket/999999', body: { input: { urgency: 5 } } }), 400, 'ERROR_GLPI_UPDATE', null);
    expectError(await s.get('Ticket/999999'), 404, 'ERROR_ITEM_NOT_FOUND', EN.notFound);
    expectError(await s.send({ method: 'GET', path: `Ticket/${id}`, body: { input: {} } }), 400, 'ERROR_JSON_PAYLOAD_FORBIDDEN', `GET Request should not have json payload (http body)${EN.doc(g.apiUrl, 'ERROR_JSON_PAYLOAD_FORBIDDEN')}`);
    expectError(await s.send({ method: 'POST', path: 'Ticket', raw: '{"input": ' }), 400, 'ERROR_JSON_PAYLOAD_INVALID', 'JSON payload seems not valid');
    expectError(await s.get('Computerz/1'), 400, 'ERROR_RESOURCE_NOT_FOUND_NOR_COMMONDBTM', EN.notCommonDbtm + EN.doc(g.apiUrl, 'ERROR_RESOURCE_NOT_FOUND_NOR_COMMONDBTM'));
    expectError(await s.post('ITILFollowup', { input: { itemtype: 'Ticket', items_id: 999999, content: 'x' } }), 400, 'ERROR_GLPI_ADD', EN.rights);
    expectError(await s.followup(id, { content: '' }), 400, 'ERROR_GLPI_ADD', EN.noDescription);
    const fup = await s.followup(id, { content: 'checked' });
    expect({ status: fup.status, body: fup.body }).toEqual({ status: 201, body: { id: expect.any(Number), message: '' } });
    const list = await s.get(`Ticket/${id}/ITILFollowup?get_hateoas=false`);
    expect(list.status).toBe(200);
    expect(list.headers['content-range']).toBe('0-0/1');
    expect(list.headers['accept-range']).toBe('ITILFollowup 1000');
    expect(list.body).toEqual([expect.objectContaining({ id: (fup.body as { id: number }).id, itemtype: 'Ticket', items_id: id, content: 'checked', users_id: 12, is_private: 0 })]);
  });

  it.each([
    ['10', 'CPU &#62; 90% &#38; "load" &#60;high&#62;', '&#60;p&#62;CPU &#62; 90%&#60;/p&#62;', 'a &#60; b'],
    ['11', 'CPU > 90% & "load" <high>', '<p>CPU > 90%</p>', 'a < b'],
  ])('GLPI %s stores and returns text: %s', async (version, storedName, storedContent, storedFollowup) => {
    const g = await open(`encoding-${version}`);
    const s = await Session.open(g, 'tok-bridge');
    const id = await s.createTicket({ name: 'CPU > 90% & "load" <high>', content: '<p>CPU > 90%</p>' });
    expect(await s.ticket(id)).toMatchObject({ name: storedName, content: storedContent });
    // X-GLPI-Sanitized-Content: false decodes getItem output (GLPI 10); GLPI 11 never encoded.
    expect(await s.ticket(id, { 'X-GLPI-Sanitized-Content': 'false' })).toMatchObject({ name: 'CPU > 90% & "load" <high>', content: '<p>CPU > 90%</p>' });
    const found = await s.get(`search/Ticket?criteria[0][field]=2&criteria[0][searchtype]=equals&criteria[0][value]=${id}&forcedisplay[0]=2`, { 'X-GLPI-Sanitized-Content': 'false' });
    expect(found.status).toBe(200);
    // Search results are never decoded.
    expect((found.body as { data: Record<string, unknown>[] }).data).toEqual([expect.objectContaining({ '1': storedName, '2': id })]);
    expect((await s.followup(id, { content: 'a < b' })).status).toBe(201);
    const list = await s.get(`Ticket/${id}/ITILFollowup?get_hateoas=false`);
    expect((list.body as { content: string }[]).map((f) => f.content)).toEqual([storedFollowup]);
  });

  it.each([
    ['10', `${'x'.repeat(240)} & <>`, `${'x'.repeat(240)} &#38; &#60;&#6`],
    ['11', 'y'.repeat(300), 'y'.repeat(255)],
  ])('GLPI %s keeps 255 characters of a long title (the encoded form in 10) and creates the ticket', async (version, name, stored) => {
    const g = await open(`long-name-${version}`);
    const s = await Session.open(g, 'tok-bridge');
    const id = await s.createTicket({ name, content: 'long title' });
    const row = await s.ticket(id);
    expect(row.name).toBe(stored);
    expect(Array.from(row.name as string)).toHaveLength(255);
  });

  it('a follow-up moves a Pending ticket back to Assigned (or New), unless it is itself pending', async () => {
    const g = await open('pending');
    const s = await Session.open(g, 'tok-bridge');
    const assigned = await s.createTicket({ name: 'assigned', content: 'x', _groups_id_assign: 5 });
    await g.setTicketStatus(assigned, 4);
    expect((await s.followup(assigned, { content: 'occurred again' })).status).toBe(201);
    expect((await s.ticket(assigned)).status).toBe(2);
    const unassigned = await s.createTicket({ name: 'unassigned', content: 'x' });
    await g.setTicketStatus(unassigned, 4);
    expect((await s.followup(unassigned, { content: 'occurred again' })).status).toBe(201);
    expect((await s.ticket(unassigned)).status).toBe(1);
    expect((await s.followup(assigned, { content: 'waiting for the vendor', pending: 1 })).status).toBe(201);
    expect((await s.ticket(assigned)).status).toBe(4);
    expect((await s.followup(assigned, { content: 'still waiting', pending: 1 })).status).toBe(201);
    expect((await s.ticket(assigned)).status).toBe(4);
    // src/Features/ParentStatus.php: a pending parent is reopened only when `_no_reopen` is not set.
    expect((await s.followup(assigned, { content: 'occurred again', _no_reopen: 1 })).status).toBe(201);
    expect((await s.ticket(assigned)).status).toBe(4);
  });

  it('a Closed ticket refuses follow-ups and solutions with the rights message', async () => {
    const g = await open('closed');
    const s = await Session.open(g, 'tok-bridge');
    const id = await s.createTicket({ name: 'to close', content: 'x' });
    await g.setTicketStatus(id, 6);
    expectError(await s.followup(id, { content: 'occurred again' }), 400, 'ERROR_GLPI_ADD', EN.rights);
    expectError(await s.post('ITILSolution', { input: { itemtype: 'Ticket', items_id: id, content: 'recovered' } }), 400, 'ERROR_GLPI_ADD', EN.rights);
    expect((await s.ticket(id)).status).toBe(6);
  });

  it.each([
    ['en_GB', EN.alreadySolved],
    ['fr_FR', FR.alreadySolved],
  ])('a second solution is refused as "already solved" (%s)', async (language, message) => {
    const g = await open(`already-solved-${language}`);
    const s = await Session.open(g, 'tok-bridge');
    const id = await s.createTicket({ name: 'cpu', content: 'x' });
    const first = await s.post('ITILSolution', { input: { itemtype: 'Ticket', items_id: id, content: 'recovered' } });
    expect(first.status).toBe(201);
    expect(first.body).toEqual({ id: expect.any(Number), message: expect.any(String) });
    expect((await s.ticket(id)).status).toBe(5);
    expectError(await s.post('ITILSolution', { input: { itemtype: 'Ticket', items_id: id, content: 'recovered again' } }), 400, 'ERROR_GLPI_ADD', message);
  });

  it('finds items by complete name, name and IP, and links an asset and an observer on create', async () => {
    const g = await open('directory');
    const s = await Session.open(g, 'tok-bridge');
    const list = '&range=0-99&expand_dropdowns=false&get_hateoas=false';
    const full = await s.get(`ITILCategory?searchText[completename]=^Monitoring > CPU$${list}`);
    expect(full.status).toBe(200);
    expect(full.body).toEqual([expect.objectContaining({ id: 21, name: 'CPU', completename: 'Monitoring > CPU' })]);
    const leaves = await s.get(`ITILCategory?searchText[name]=^CPU$${list}`);
    expect((leaves.body as { id: number; completename: string }[]).map((r) => [r.id, r.completename])).toEqual([[21, 'Monitoring > CPU'], [31, 'Hardware > CPU']]);
    expect(leaves.headers['content-range']).toBe('0-1/2');
    const byIp = await s.get('search/Computer?criteria[0][field]=126&criteria[0][searchtype]=contains&criteria[0][value]=^10.0.0.11$&forcedisplay[0]=2&range=0-49');
    expect(byIp.status).toBe(200);
    expect(byIp.body).toMatchObject({ totalcount: 1, data: [expect.objectContaining({ '2': 101, '126': '10.0.0.11' })] });
    const none = await s.get('search/Computer?criteria[0][field]=1&criteria[0][searchtype]=contains&criteria[0][value]=^nowhere$&forcedisplay[0]=2&range=0-49');
    expect(none.body).toMatchObject({ totalcount: 0 });
    expect((none.body as Record<string, unknown>).data).toBeUndefined();
    const created = await s.post('Ticket', { input: { name: 'cpu on web-01', content: 'x', items_id: { Computer: [101] }, _users_id_observer: [41] } });
    expect(created.status).toBe(201);
  });

  it('a status matrix without Solved: the solution is refused with the rights message, a status update to Solved is dropped', async () => {
    const g = await open('solve-refused');
    const s = await Session.open(g, 'tok-bridge');
    const id = await s.createTicket({ name: 'cpu', content: 'x' });
    expectError(await s.post('ITILSolution', { input: { itemtype: 'Ticket', items_id: id, content: 'recovered' } }), 400, 'ERROR_GLPI_ADD', EN.rights);
    const update = await s.send({ method: 'PUT', path: `Ticket/${id}`, body: { input: { status: 5 } } });
    expect({ status: update.status, body: update.body }).toEqual({ status: 200, body: [{ [String(id)]: true, message: '' }] });
    expect((await s.ticket(id)).status).toBe(1);
  });

  it('speaks French when GLPI does, before and after login', async () => {
    const g = await open('french');
    expectError(await g.send({ method: 'GET', path: 'Ticket/1' }), 400, 'ERROR_SESSION_TOKEN_MISSING', FR.tokenMissing + FR.doc(g.apiUrl, 'ERROR_SESSION_TOKEN_MISSING'));
    expectError(await g.send({ method: 'GET', path: 'Ticket/1', headers: { 'Session-Token': 'not-a-session' } }), 401, 'ERROR_SESSION_TOKEN_INVALID', FR.tokenInvalid);
    const s = await Session.open(g, 'tok-bridge');
    expectError(await s.get('Ticket/999999'), 404, 'ERROR_ITEM_NOT_FOUND', FR.notFound);
    expectError(await s.post('ITILFollowup', { input: { itemtype: 'Ticket', items_id: 999999, content: 'x' } }), 400, 'ERROR_GLPI_ADD', FR.rights);
    const id = await s.createTicket({ name: 'cpu', content: 'x' });
    expectError(await s.followup(id, { content: '' }), 400, 'ERROR_GLPI_ADD', FR.noDescription);
  });

  it('search, lists, reads and writes are scoped to the session\'s active entities', async () => {
    const g = await open('entities');
    const admin = await Session.open(g, 'tok-admin');
    const other = await admin.createTicket({ name: 'ticket in entity 1', content: 'x', entities_id: 1 });
    const root = await admin.createTicket({ name: 'ticket in root', content: 'x', entities_id: 0 });
    const bridge = await Session.open(g, 'tok-bridge');
    const found = await bridge.get('search/Ticket?criteria[0][field]=1&criteria[0][searchtype]=contains&criteria[0][value]=ticket&forcedisplay[0]=2');
    expect(found.status).toBe(200);
    expect(found.body).toMatchObject({ totalcount: 1, count: 1 });
    expect((found.body as { data: Record<string, unknown>[] }).data.map((r) => r['2'])).toEqual([root]);
    expectError(await bridge.get(`Ticket/${other}?get_hateoas=false`), 403, 'ERROR_RIGHT_MISSING', EN.rights);
    expectError(await bridge.followup(other, { content: 'x' }), 400, 'ERROR_GLPI_ADD', EN.rights);
    const list = await bridge.get('Ticket?get_hateoas=false&only_id=true');
    expect({ status: list.status, body: list.body, range: list.headers['content-range'] }).toEqual({ status: 200, body: [{ id: root }], range: '0-0/1' });
    expectError(await bridge.post('Ticket', { input: { name: 'elsewhere', content: 'x', entities_id: 1 } }), 400, 'ERROR_GLPI_ADD', EN.rights);
    const full = await bridge.get('getFullSession');
    expect((full.body as { session: Record<string, unknown> }).session).toMatchObject({ glpiID: 12, glpiactiveentities: [0] });
  });

  it('tickets record their writer (users_id_recipient), search option 22 shows and filters it', async () => {
    const g = await open('recipient');
    const bridge = await Session.open(g, 'tok-bridge');
    const mine = await bridge.createTicket({ name: '[zbx:abc] mine', content: 'x' });
    const alice = await Session.open(g, 'tok-alice');
    const spoofed = await alice.createTicket({ name: '[zbx:abc] spoofed', content: 'x' });
    const both = await bridge.get('search/Ticket?criteria[0][field]=1&criteria[0][searchtype]=contains&criteria[0][value]=[zbx:abc]&forcedisplay[0]=2&forcedisplay[1]=22');
    expect(both.status).toBe(200);
    const rows = (both.body as { data: Record<string, unknown>[] }).data.map((r) => [r['2'], r['22']]);
    expect(rows).toEqual(expect.arrayContaining([[mine, 'zabbix-bridge'], [spoofed, 'alice']]));
    expect(rows).toHaveLength(2);
    const onlyMine = await bridge.get('search/Ticket?criteria[0][field]=1&criteria[0][searchtype]=contains&criteria[0][value]=[zbx:abc]&criteria[1][link]=AND&criteria[1][field]=22&criteria[1][searchtype]=equals&criteria[1][value]=12&forcedisplay[0]=2');
    expect((onlyMine.body as { data: Record<string, unknown>[] }).data.map((r) => r['2'])).toEqual([mine]);
    expect((await bridge.ticket(spoofed)).users_id_recipient).toBe(13);
  });

  it('GLPI 10.0 has no ticket externalid: the input is dropped and search option 87 does not exist', async () => {
    const g = await open('externalid-10');
    const s = await Session.open(g, 'tok-bridge');
    const id = await s.createTicket({ name: 'with external id', content: 'x', externalid: 'zbx-4f2a' });
    expect(await s.ticket(id)).not.toHaveProperty('externalid');
    expectError(await s.get('search/Ticket?criteria[0][field]=87&criteria[0][searchtype]=equals&criteria[0][value]=zbx-4f2a&forcedisplay[0]=2'), 400, 'ERROR', EN.badField + EN.doc(g.apiUrl, 'ERROR'));
  });

  it('GLPI 11 stores externalid and searches it as option 87', async () => {
    const g = await open('externalid-11');
    const s = await Session.open(g, 'tok-bridge');
    const id = await s.createTicket({ name: 'with external id', content: 'x', externalid: 'zbx-4f2a' });
    expect((await s.ticket(id)).externalid).toBe('zbx-4f2a');
    const found = await s.get('search/Ticket?criteria[0][field]=87&criteria[0][searchtype]=equals&criteria[0][value]=zbx-4f2a&forcedisplay[0]=2');
    expect(found.status).toBe(200);
    expect((found.body as { data: Record<string, unknown>[] }).data).toEqual([expect.objectContaining({ '2': id, '87': 'zbx-4f2a' })]);
  });

  it('GLPI 11 at /api.php/v1 behind a web server that strips Authorization: "parameters missing" with the header, a session with ?user_token=', async () => {
    const g = await open('authorization-stripped-11');
    expectError(await g.send({ method: 'GET', path: 'initSession', headers: auth('tok-bridge') }), 400, 'ERROR_LOGIN_PARAMETERS_MISSING', EN.loginMissing + EN.doc(g.apiUrl, 'ERROR_LOGIN_PARAMETERS_MISSING'));
    const res = await g.send({ method: 'GET', path: 'initSession?user_token=tok-bridge' });
    expect(res.status).toBe(200);
    const s = new Session(g, (res.body as { session_token: string }).session_token);
    expectError(await s.get('Ticket/999'), 404, 'ERROR_ITEM_NOT_FOUND', EN.notFound);
    expect((await s.get('killSession')).body).toBe(true);
  });

  it('lists and search page with range: 206, Content-Range quirks, range errors', async () => {
    const g = await open('ranges');
    const s = await Session.open(g, 'tok-bridge');
    const many = Array.from({ length: 25 }, (_v, n) => ({ name: `bulk ${n + 1}`, content: 'x' }));
    const bulk = await s.post('Ticket', { input: many });
    expect(bulk.status).toBe(201);
    const ids = (bulk.body as { id: number }[]).map((r) => r.id);
    expect(ids).toHaveLength(25);
    expect(bulk.headers.link).toBe(ids.map((id) => `${g.apiUrl}/Ticket/${id}`).join(','));
    const page = await s.get('Ticket?get_hateoas=false');
    expect({ status: page.status, range: page.headers['content-range'], rows: (page.body as unknown[]).length }).toEqual({ status: 206, range: '0-20/25', rows: 20 });
    const all = await s.get('Ticket?get_hateoas=false&range=0-49');
    expect({ status: all.status, range: all.headers['content-range'], rows: (all.body as unknown[]).length }).toEqual({ status: 200, range: '0-24/25', rows: 25 });
    expectError(await s.get('Ticket?get_hateoas=false&range=30-40'), 400, 'ERROR_RANGE_EXCEED_TOTAL', `Provided range exceed total count of data: 25${EN.doc(g.apiUrl, 'ERROR_RANGE_EXCEED_TOTAL')}`);
    const atEnd = await s.get('Ticket?get_hateoas=false&range=25-30');
    expect({ status: atEnd.status, range: atEnd.headers['content-range'], body: atEnd.body }).toEqual({ status: 206, range: '25-24/25', body: [] });
    expectError(await s.get('Ticket?range=abc'), 400, 'ERROR', `range must be in format : [start-end] with integers${EN.doc(g.apiUrl, 'ERROR')}`);
    const q = 'search/Ticket?criteria[0][field]=1&criteria[0][searchtype]=contains&criteria[0][value]=bulk&forcedisplay[0]=2&sort=2&order=ASC';
    const first = await s.get(q);
    expect({ status: first.status, range: first.headers['content-range'] }).toEqual({ status: 206, range: '0-19/25' });
    expect(first.body).toMatchObject({ totalcount: 25, count: 20, 'content-range': '0-19/25' });
    expect((first.body as { data: Record<string, unknown>[] }).data.map((r) => r['2'])).toEqual(ids.slice(0, 20));
    const whole = await s.get(`${q}&range=0-99`);
    expect({ status: whole.status, range: whole.headers['content-range'] }).toEqual({ status: 200, range: '0-24/25' });
    expect(whole.body).toMatchObject({ totalcount: 25, count: 25, 'content-range': '0-24/25' });
    const none = await s.get('search/Ticket?criteria[0][field]=1&criteria[0][searchtype]=contains&criteria[0][value]=nothing-matches&forcedisplay[0]=2');
    expect(none.status).toBe(200);
    expect(none.headers['content-range']).toBeUndefined();
    expect(none.body).toMatchObject({ totalcount: 0, count: 0, 'content-range': '0--1/0' });
    expect(none.body).not.toHaveProperty('data');
    expectError(await s.get('search/Ticket?criteria[0][field]=abc&criteria[0][searchtype]=contains&criteria[0][value]=x'), 400, 'ERROR', EN.badField + EN.doc(g.apiUrl, 'ERROR'));
    expectError(await s.get('search/Ticket?criteria[0][field]=1&criteria[0][value]=x'), 400, 'ERROR', EN.malformed + EN.doc(g.apiUrl, 'ERROR'));
  });
});

/**
 * Every recorded exchange, replayed on the fake: same status, same headers (Location, Link,
 * Accept-Range, Content-Range), same body once ids, session tokens and the API URL are mapped to the
 * fake's; dates and free-text success messages are compared by type only.
 */
describe('the fake answers every recorded exchange like GLPI', () => {
  const VOLATILE = new Set(['date', 'date_mod', 'date_creation', 'solvedate', 'closedate', 'begin_waiting_date', 'glpi_currenttime', '15', '19']);

  function mapDeep(v: unknown, ids: Map<number, number>, text: (s: string) => string): unknown {
    if (typeof v === 'number') return ids.get(v) ?? v;
    if (typeof v === 'string') return text(v);
    if (Array.isArray(v)) return v.map((x) => mapDeep(x, ids, text));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [text(k), mapDeep(x, ids, text)]));
    return v;
  }

  function sameShape(actual: unknown, expected: unknown, path: string, key = ''): string[] {
    if (VOLATILE.has(key) || (key === 'message' && typeof expected === 'string' && expected.startsWith('Item successfully added')) || (key === 'message' && typeof expected === 'string' && expected.startsWith('Élément ajouté'))) {
      return typeof actual === typeof expected || actual === null || expected === null ? [] : [`${path}: ${JSON.stringify(actual)} is not a ${typeof expected}`];
    }
    if (Array.isArray(expected)) {
      if (!Array.isArray(actual) || actual.length !== expected.length) return [`${path}: ${JSON.stringify(actual)?.slice(0, 200)} ≠ ${JSON.stringify(expected).slice(0, 200)}`];
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

  it.each(SCENARIOS.map((s) => [s.name, s] as const))('%s', async (_name, s) => {
    const g = await fakeTarget.open(s);
    const ids = new Map<number, number>();
    const tokens = new Map<string, string>();
    const text = (v: string) => {
      let out = v.split(s.apiUrl).join(g.apiUrl);
      for (const [from, to] of tokens) out = out.split(from).join(to);
      return out.replace(/\b\d{3,}\b/g, (n) => String(ids.get(Number(n)) ?? n));
    };
    const problems: string[] = [];
    try {
      for (const [n, step] of s.steps.entries()) {
        if ('technician' in step) {
          await g.setTicketStatus(ids.get(step.technician.ticket) ?? step.technician.ticket, step.technician.status);
          continue;
        }
        const r = step.request;
        const req: Req = { method: r.method, path: text(r.path), headers: mapDeep(r.headers ?? {}, ids, text) as Record<string, string> };
        if (r.raw !== undefined) req.raw = r.raw;
        else if (r.body !== undefined) req.body = mapDeep(r.body, ids, text);
        const res = await g.send(req);
        // Learn the fake's ids and tokens from what it created.
        const rec = step.answer.body;
        if (res.status === 201 && step.answer.status === 201) {
          const pairs = Array.isArray(rec) ? (rec as { id: number }[]).map((x, i) => [x.id, (res.body as { id: number }[])[i]?.id] as const) : [[(rec as { id: number }).id, (res.body as { id: number }).id] as const];
          for (const [from, to] of pairs) if (typeof to === 'number') ids.set(from, to);
        }
        if (r.path.startsWith('initSession') && res.status === 200) tokens.set((rec as { session_token: string }).session_token, (res.body as { session_token: string }).session_token);
        const where = `${s.name} step ${n + 1} (${r.method} ${r.path}${step.source ? `; ${step.source}` : ''})`;
        if (res.status !== step.answer.status) problems.push(`${where}: status ${res.status}, recorded ${step.answer.status}: ${JSON.stringify(res.body).slice(0, 300)}`);
        for (const [k, v] of Object.entries(step.answer.headers ?? {})) {
          if (res.headers[k.toLowerCase()] !== text(v)) problems.push(`${where}: header ${k} is ${res.headers[k.toLowerCase()]}, recorded ${text(v)}`);
        }
        for (const k of ['content-range', 'location', 'link']) {
          if (res.headers[k] !== undefined && !Object.keys(step.answer.headers ?? {}).some((h) => h.toLowerCase() === k)) problems.push(`${where}: header ${k} (${res.headers[k]}) is not in the recording`);
        }
        problems.push(...sameShape(res.body, mapDeep(rec, ids, text), where));
      }
    } finally {
      await g.close();
    }
    expect(problems).toEqual([]);
  });
});
