import { afterEach, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import nock from 'nock';
import { pino } from 'pino';
import { useNock } from '../helpers/nock.js';
import { apiProfile, ZabbixApi, type AuthMode } from '../../src/adapters/zabbix/api-client.js';
import { Secret } from '../../src/config/secret.js';

/**
 * What the client sends to, and parses from, each Zabbix API version, against
 * the recorded answers in test/fixtures/zabbix/api/ (each file cites where its
 * answers come from: a real server, a documentation page, Zabbix's source).
 */

const BASE = 'http://zabbix.test';
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'zabbix', 'api');

interface Rpc {
  jsonrpc: string;
  method: string;
  params: Record<string, unknown>;
  id: number;
  auth?: string;
}
interface Fixture {
  version: string;
  sources: string[];
  expect: { auth: 'body' | 'header'; acknowledgesParam: 'select_acknowledges' | 'selectAcknowledges' };
  answers: Record<string, { result?: unknown }>;
  errors: Record<string, { error: { code: number; message: string; data: string } }>;
  eventGet?: { parameters: string[]; outputFields: string[]; acknowledgeFields: string[] };
}

const load = (v: string): Fixture => JSON.parse(readFileSync(join(FIXTURES, `${v}.json`), 'utf8')) as Fixture;
const VERSIONS = ['6.0', '6.4', '7.0', '7.2', '7.4'] as const;
/** The event.get parameters 7.2+ validates (CEvent::get), from the recorded 7.2 source. */
const EVENT_GET_7 = load('7.2').eventGet!;

interface Log {
  level: number;
  msg: string;
  treated_as?: string;
}

function client(authMode: AuthMode = 'auto', logs: Log[] = []): ZabbixApi {
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as Log) });
  return new ZabbixApi({ url: `${BASE}/api_jsonrpc.php`, token: new Secret('zbx-token'), authMode, timeoutMs: 2000, logger });
}

/** Every request the fake received, with its Authorization header. */
function recorder(): { seen: { body: Rpc; authorization: string | undefined }[]; scope: nock.Scope } {
  const seen: { body: Rpc; authorization: string | undefined }[] = [];
  const scope = nock(BASE);
  return { seen, scope };
}

/** The token is where the version wants it, and only there; apiinfo.version never carries it. */
function assertAuth(f: Fixture, body: Rpc, authorization: string | undefined): void {
  if (body.method === 'apiinfo.version') {
    expect(body.auth).toBeUndefined();
    expect(authorization).toBeUndefined();
  } else if (f.expect.auth === 'body') {
    expect(body.auth).toBe('zbx-token');
    expect(authorization).toBeUndefined();
  } else {
    expect('auth' in body).toBe(false);
    expect(authorization).toBe('Bearer zbx-token');
  }
}

useNock();
afterEach(() => nock.cleanAll());

describe.each(VERSIONS)('Zabbix %s (recorded answers)', (v) => {
  const f = load(v);

  it('cites where its answers come from', () => {
    expect(f.sources.length).toBeGreaterThan(0);
    expect(f.version).toBe(v);
  });

  it(`asks the version once without auth, then sends the token in the ${f.expect.auth} on every request`, async () => {
    const { seen, scope } = recorder();
    scope
      .persist()
      .post('/api_jsonrpc.php')
      .reply(function (_uri, body) {
        const b = body as Rpc;
        seen.push({ body: b, authorization: this.req.headers.authorization as string | undefined });
        if (b.method === 'apiinfo.version') return [200, f.answers['apiinfo.version']];
        if (b.method === 'event.get') return [200, { ...f.answers['event.get'], id: b.id }];
        if (b.method === 'event.acknowledge') return [200, { ...f.answers['event.acknowledge'], id: b.id }];
        return [200, { jsonrpc: '2.0', result: [], id: b.id }];
      });
    const api = client();
    await api.problems();
    await api.triggers(['100']);
    await api.eventStates(['27']);
    await api.hasMessage('27', '[glpi-bridge] GLPI ticket #4242');
    await api.acknowledge(['27'], 'msg', true);
    expect(seen.map((s) => s.body.method)).toEqual(['apiinfo.version', 'problem.get', 'trigger.get', 'event.get', 'event.get', 'event.acknowledge']);
    for (const s of seen) assertAuth(f, s.body, s.authorization);
  });

  it(`reads acknowledges with ${f.expect.acknowledgesParam} only, and parses the answer`, async () => {
    const other = f.expect.acknowledgesParam === 'selectAcknowledges' ? 'select_acknowledges' : 'selectAcknowledges';
    const scope = nock(BASE)
      .post('/api_jsonrpc.php', (b: Rpc) => b.method === 'apiinfo.version')
      .reply(200, f.answers['apiinfo.version'])
      .post('/api_jsonrpc.php', (b: Rpc) => b.method === 'event.get' && f.expect.acknowledgesParam in b.params && !(other in b.params))
      .reply(200, f.answers['event.get']);
    const api = client();
    const [event] = await api.events(['27']);
    expect(scope.isDone()).toBe(true);
    expect(event?.acknowledges.map((a) => a.message)).toEqual(['[glpi-bridge] GLPI ticket #4242']);
  });

  it('sends event.get only parameters, output fields and acknowledge fields that Zabbix 7.x validates', async () => {
    const asked: Rpc[] = [];
    nock(BASE)
      .persist()
      .post('/api_jsonrpc.php')
      .reply(200, (_uri, body) => {
        const b = body as Rpc;
        if (b.method === 'apiinfo.version') return f.answers['apiinfo.version'];
        asked.push(b);
        return { jsonrpc: '2.0', result: [], id: b.id };
      });
    const api = client();
    await api.events(['27']);
    await api.eventStates(['27', '28']);
    expect(asked).toHaveLength(2);
    for (const { params } of asked) {
      // 6.x takes select_acknowledges (ignores what it does not know); 7.x refuses anything outside its rules.
      const allowed = v.startsWith('6.') ? [...EVENT_GET_7.parameters, 'select_acknowledges'] : EVENT_GET_7.parameters;
      expect(Object.keys(params).filter((k) => !allowed.includes(k))).toEqual([]);
      expect((params.output as string[]).filter((o) => !EVENT_GET_7.outputFields.includes(o))).toEqual([]);
      const acks = (params.selectAcknowledges ?? params.select_acknowledges) as string[] | undefined;
      expect((acks ?? []).filter((o) => !EVENT_GET_7.acknowledgeFields.includes(o))).toEqual([]);
    }
  });

  it('takes event.acknowledge’s event ids as numbers or strings', async () => {
    nock(BASE)
      .post('/api_jsonrpc.php', (b: Rpc) => b.method === 'apiinfo.version')
      .reply(200, f.answers['apiinfo.version'])
      .post('/api_jsonrpc.php', (b: Rpc) => b.method === 'event.acknowledge' && b.params.action === 4)
      .reply(200, f.answers['event.acknowledge'])
      .post('/api_jsonrpc.php', (b: Rpc) => b.method === 'event.acknowledge')
      .reply(200, { jsonrpc: '2.0', result: { eventids: ['27'] }, id: 3 });
    const api = client();
    expect(await api.acknowledgeEvents(['27'], 'msg', false)).toEqual(['27']);
    expect(await api.acknowledgeEvents(['27'], 'msg', true)).toEqual(['27']);
  });

  it('matches apiProfile', () => {
    const version = f.answers['apiinfo.version']!.result as string;
    expect(apiProfile(version, 'auto')).toMatchObject({ version, treatedAs: v, auth: f.expect.auth, acknowledgesParam: f.expect.acknowledgesParam });
    expect(apiProfile(version, 'auto').note).toBeUndefined();
  });
});

describe('error answers, as each version gives them', () => {
  it('6.0: a Bearer header is not understood (Not authorized.): a refused token, permanent', async () => {
    const f = load('6.0');
    nock(BASE)
      .post('/api_jsonrpc.php', (b: Rpc) => b.method === 'apiinfo.version')
      .reply(200, f.answers['apiinfo.version'])
      .post('/api_jsonrpc.php', (b: Rpc) => b.method === 'problem.get' && b.auth === undefined)
      .matchHeader('authorization', 'Bearer zbx-token')
      .reply(200, f.errors['Bearer header (6.0 reads only the auth member)']);
    const logs: Log[] = [];
    await expect(client('header', logs).problems()).rejects.toMatchObject({ kind: 'permanent', code: 'ZABBIX_AUTH' });
    // The configured header is honoured, with a warning that 6.0 does not read it.
    expect(logs.some((l) => l.level === 40 && /does not read the Authorization header/.test(l.msg))).toBe(true);
  });

  it('6.0 silently ignores selectAcknowledges (why the client sends select_acknowledges there)', async () => {
    const f = load('6.0');
    expect(f.answers['event.get with selectAcknowledges (silently ignored)']!.result).toEqual([expect.not.objectContaining({ acknowledges: expect.anything() })]);
  });

  it('7.0: a request with both acknowledges selectors is refused, permanently, with Zabbix’s text', async () => {
    const f = load('7.0');
    const refusal = f.errors['both acknowledges selectors']!;
    nock(BASE)
      .post('/api_jsonrpc.php', (b: Rpc) => b.method === 'apiinfo.version')
      .reply(200, f.answers['apiinfo.version'])
      .post('/api_jsonrpc.php', (b: Rpc) => b.method === 'event.get' && 'select_acknowledges' in b.params && 'selectAcknowledges' in b.params)
      .reply(200, refusal);
    const err = client().call('event.get', { eventids: ['27'], select_acknowledges: ['message'], selectAcknowledges: ['message'] });
    await expect(err).rejects.toMatchObject({ kind: 'permanent', code: 'ZABBIX_API' });
    await expect(err).rejects.toThrow('Deprecated parameter "/select_acknowledges" cannot be used with "/selectAcknowledges".');
  });

  it('7.0: an unknown event.get parameter is refused, permanently', async () => {
    const f = load('7.0');
    nock(BASE)
      .post('/api_jsonrpc.php', (b: Rpc) => b.method === 'apiinfo.version')
      .reply(200, f.answers['apiinfo.version'])
      .post('/api_jsonrpc.php', (b: Rpc) => b.method === 'event.get')
      .reply(200, f.errors['unknown event.get parameter']);
    await expect(client().call('event.get', { eventids: ['27'], select_alert: 'extend' })).rejects.toMatchObject({ kind: 'permanent', code: 'ZABBIX_API' });
  });

  it('7.0: user.login refuses `user` (the client logs in with its token only; a login would take `username`)', () => {
    expect(load('7.0').errors['user.login with user instead of username']!.error.data).toBe('Invalid parameter "/": unexpected parameter "user".');
  });

  it('7.0 accepts the token in the body (zabbix.auth: body is honoured until 7.2)', async () => {
    const f = load('7.0');
    const scope = nock(BASE)
      .post('/api_jsonrpc.php', (b: Rpc) => b.method === 'apiinfo.version')
      .reply(200, f.answers['apiinfo.version'])
      .post('/api_jsonrpc.php', (b: Rpc) => b.method === 'problem.get' && b.auth === 'zbx-token')
      .matchHeader('authorization', (h) => h === undefined)
      .reply(200, { jsonrpc: '2.0', result: [], id: 2 });
    expect(await client('body').problems()).toEqual([]);
    expect(scope.isDone()).toBe(true);
  });

  it.each(['7.2', '7.4'])('%s: zabbix.auth: body is overridden — the token goes in the header, never in the body — with one warning', async (v) => {
    const f = load(v);
    const scope = nock(BASE)
      .post('/api_jsonrpc.php', (b: Rpc) => b.method === 'apiinfo.version')
      .reply(200, f.answers['apiinfo.version'])
      .post('/api_jsonrpc.php', (b: Rpc) => !('auth' in b))
      .times(2)
      .matchHeader('authorization', 'Bearer zbx-token')
      .reply(200, { jsonrpc: '2.0', result: [], id: 2 });
    const logs: Log[] = [];
    const api = client('body', logs);
    await api.problems();
    await api.problems();
    expect(scope.isDone()).toBe(true);
    expect(logs.filter((l) => l.level === 40 && /refuses the token in the request body/.test(l.msg))).toHaveLength(1);
  });

  it('7.2: Zabbix upgraded under a running bridge — the body auth it refuses is a clear permanent error, and the next call asks the version again', async () => {
    const old = load('6.0');
    const f = load('7.2');
    const scope = nock(BASE)
      .post('/api_jsonrpc.php', (b: Rpc) => b.method === 'apiinfo.version')
      .reply(200, old.answers['apiinfo.version'])
      .post('/api_jsonrpc.php', (b: Rpc) => b.method === 'problem.get' && b.auth === 'zbx-token')
      .reply(200, f.errors['auth in the body'])
      .post('/api_jsonrpc.php', (b: Rpc) => b.method === 'apiinfo.version')
      .reply(200, f.answers['apiinfo.version'])
      .post('/api_jsonrpc.php', (b: Rpc) => b.method === 'problem.get' && !('auth' in b))
      .matchHeader('authorization', 'Bearer zbx-token')
      .reply(200, { jsonrpc: '2.0', result: [], id: 3 });
    const api = client();
    const err = api.problems();
    await expect(err).rejects.toMatchObject({ kind: 'permanent', code: 'ZABBIX_AUTH' });
    await expect(err).rejects.toThrow(/unexpected parameter "auth".*only in the Authorization header/);
    expect(await api.problems()).toEqual([]);
    expect(scope.isDone()).toBe(true);
  });

  it('7.2: select_acknowledges is refused (removed), permanently', async () => {
    const f = load('7.2');
    nock(BASE)
      .post('/api_jsonrpc.php', (b: Rpc) => b.method === 'apiinfo.version')
      .reply(200, f.answers['apiinfo.version'])
      .post('/api_jsonrpc.php', (b: Rpc) => b.method === 'event.get' && 'select_acknowledges' in b.params)
      .reply(200, f.errors['select_acknowledges']);
    await expect(client().call('event.get', { eventids: ['27'], select_acknowledges: ['message'] })).rejects.toMatchObject({ kind: 'permanent', code: 'ZABBIX_API' });
  });
});

describe('versions outside what the client knows', () => {
  it.each([
    ['5.0.30', '6.0', 'body', 'select_acknowledges', /older than 6\.0/],
    ['5.4.12', '6.0', 'body', 'select_acknowledges', /older than 6\.0/],
    ['8.0.0', '7.4', 'header', 'selectAcknowledges', /newer than 7\.4/],
    ['7.6.0', '7.4', 'header', 'selectAcknowledges', /newer than 7\.4/],
  ] as const)('%s is treated like %s (auth in the %s, %s), logged once', async (version, treatedAs, auth, acks, note) => {
    expect(apiProfile(version, 'auto')).toMatchObject({ treatedAs, auth, acknowledgesParam: acks, note: expect.stringMatching(note) });
    const scope = nock(BASE)
      .post('/api_jsonrpc.php', (b: Rpc) => b.method === 'apiinfo.version')
      .reply(200, { jsonrpc: '2.0', result: version, id: 1 })
      .post('/api_jsonrpc.php', (b: Rpc) => b.method === 'event.get' && acks in b.params && (auth === 'body' ? b.auth === 'zbx-token' : !('auth' in b)))
      .times(3)
      .reply(200, { jsonrpc: '2.0', result: [], id: 2 });
    const logs: Log[] = [];
    const api = client('auto', logs);
    for (let i = 0; i < 3; i++) await api.events(['27']);
    expect(scope.isDone()).toBe(true);
    const warnings = logs.filter((l) => l.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ msg: expect.stringMatching(note), treated_as: treatedAs });
  });

  it.each([
    ['6.2.9', '6.2', 'body', 'select_acknowledges'],
    ['7.1.0alpha1', '7.0', 'header', 'selectAcknowledges'],
    ['7.3.0', '7.2', 'header', 'selectAcknowledges'],
  ] as const)('%s (between known versions) follows the release before it: %s', (version, treatedAs, auth, acks) => {
    const p = apiProfile(version, 'auto');
    expect(p).toMatchObject({ treatedAs, auth, acknowledgesParam: acks });
    expect(p.note).toBeUndefined();
  });

  it('auto needs a version: an answer that is none fails the call (retryable), and is asked again next time', async () => {
    const scope = nock(BASE)
      .post('/api_jsonrpc.php', (b: Rpc) => b.method === 'apiinfo.version')
      .reply(200, { jsonrpc: '2.0', result: [], id: 1 })
      .post('/api_jsonrpc.php', (b: Rpc) => b.method === 'apiinfo.version')
      .reply(200, { jsonrpc: '2.0', result: '7.0.22', id: 1 })
      .post('/api_jsonrpc.php', (b: Rpc) => b.method === 'problem.get')
      .reply(200, { jsonrpc: '2.0', result: [], id: 2 });
    const api = client();
    await expect(api.problems()).rejects.toMatchObject({ kind: 'retryable', code: 'BAD_ANSWER' });
    expect(await api.problems()).toEqual([]);
    expect(scope.isDone()).toBe(true);
  });

  it('a set zabbix.auth and an apiinfo.version that answers no version: 6.0 shapes with the configured auth, logged once', async () => {
    const scope = nock(BASE)
      .post('/api_jsonrpc.php', (b: Rpc) => b.method === 'apiinfo.version')
      .once()
      .reply(200, { jsonrpc: '2.0', result: [], id: 1 })
      .post('/api_jsonrpc.php', (b: Rpc) => b.method === 'event.get' && 'select_acknowledges' in b.params && b.auth === 'zbx-token')
      .times(2)
      .reply(200, { jsonrpc: '2.0', result: [], id: 2 });
    const logs: Log[] = [];
    const api = client('body', logs);
    await api.events(['27']);
    await api.events(['27']);
    expect(scope.isDone()).toBe(true);
    expect(logs.filter((l) => l.level === 40)).toHaveLength(1);
  });

  it('an unreachable API fails the call whatever zabbix.auth says', async () => {
    nock(BASE).post('/api_jsonrpc.php').reply(502, 'Bad Gateway');
    await expect(client('body').problems()).rejects.toMatchObject({ kind: 'retryable', code: 'HTTP_502' });
  });
});
