import { afterEach, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import nock from 'nock';
import { pino } from 'pino';
import { useNock } from '../helpers/nock.js';
import { ZabbixApi } from '../../src/adapters/zabbix/api-client.js';
import { Secret } from '../../src/config/secret.js';
import { RemoteError } from '../../src/core/remote-error.js';
import { maintenanceOf } from '../../src/services/poller.js';

/**
 * The calls behind poller notes (maintenance, disabled) and value history, against the answers recorded on the
 * real Zabbix 6.0.14 and 7.0.22 (test/fixtures/zabbix/api/6.0.json, 7.0.json: their `sources` say what was
 * recorded and what reconstructed).
 */

const BASE = 'http://zabbix.test';
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'zabbix', 'api');

interface Rpc {
  method: string;
  params: Record<string, unknown>;
  id: number;
}
interface Fixture {
  answers: Record<string, { result?: unknown }>;
  errors: Record<string, { error: { code: number; message: string; data: string } }>;
}
const load = (v: string): Fixture => JSON.parse(readFileSync(join(FIXTURES, `${v}.json`), 'utf8')) as Fixture;

useNock();
afterEach(() => nock.cleanAll());

function client(): ZabbixApi {
  return new ZabbixApi({ url: `${BASE}/api_jsonrpc.php`, token: new Secret('zbx-token'), authMode: 'auto', timeoutMs: 2000, logger: pino({ level: 'silent' }) });
}

/** A fake answering each method from the recording (`answer` picks the recorded key), recording what it was asked. */
function serve(f: Fixture, answer: (b: Rpc) => string): Rpc[] {
  const asked: Rpc[] = [];
  nock(BASE)
    .persist()
    .post('/api_jsonrpc.php')
    .reply(200, (_uri, body) => {
      const b = body as Rpc;
      if (b.method === 'apiinfo.version') return f.answers['apiinfo.version'];
      asked.push(b);
      const key = answer(b);
      const recorded = f.answers[key] ?? f.errors[key];
      if (!recorded) throw new Error(`no recorded answer ${key}`);
      return { ...recorded, id: b.id };
    });
  return asked;
}

describe.each(['6.0', '7.0'] as const)('Zabbix %s: open problems\' state, maintenances, value history (recorded answers)', (v) => {
  const f = load(v);

  it('problem.get by event ids: asks without the suppressed filter, with the suppression data; parses both an unsuppressed and a suppressed problem', async () => {
    let suppressed = false;
    const asked = serve(f, () => (suppressed ? 'problem.get by eventids, suppressed' : 'problem.get by eventids'));
    const api = client();
    const rows = await api.problemStates(['1', '2', '3']);
    expect(asked[0]).toMatchObject({ method: 'problem.get', params: { eventids: ['1', '2', '3'], source: 0, object: 0, selectSuppressionData: 'extend' } });
    expect('suppressed' in asked[0]!.params).toBe(false);
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect(r).toMatchObject({ suppressed: '0', suppression_data: [] });
    suppressed = true;
    const [row] = await api.problemStates(['1']);
    expect(row?.suppressed).toBe('1');
    expect(row?.suppression_data[0]?.maintenanceid).toMatch(/^[1-9]\d*$/);
    expect(maintenanceOf(row!, undefined)).toMatchObject({ maintenanceid: row!.suppression_data[0]!.maintenanceid, from: '0' });
  });

  it('a host in a maintenance: the problem\'s suppression and the host\'s fields name the same maintenance; suppress_until is the end of the running period', async () => {
    serve(f, (b) => (b.method === 'problem.get' ? 'problem.get by eventids, suppressed' : 'trigger.get states, host in maintenance'));
    const api = client();
    const [p] = await api.problemStates(['1']);
    const [t] = await api.triggerStates(['1']);
    const host = t!.hosts[0]!;
    const m = maintenanceOf(p!, host);
    expect(m).toEqual({ maintenanceid: host.maintenanceid, from: host.maintenance_from, until: p!.suppression_data[0]!.suppress_until, type: '0' });
    // The one-time period recorded was an hour: suppressed until the period ends.
    expect(Number(m!.until) - Number(m!.from)).toBe(3600);
  });

  it('a disabled trigger\'s problem stays open: problem.get still returns it, unresolved (so only a note tells the ticket)', async () => {
    serve(f, (b) => (b.method === 'problem.get' ? 'problem.get by eventids, trigger disabled' : 'event.get, trigger disabled'));
    const api = client();
    // Recorded with output eventid, r_eventid, suppressed: the problem is still in the problem table, unresolved.
    expect(await api.call('problem.get', { eventids: ['1'], output: ['eventid', 'r_eventid', 'suppressed'] })).toEqual([expect.objectContaining({ r_eventid: '0' })]);
    const [e] = await api.eventStates(['1']);
    expect(e?.r_eventid).toBe('0');
  });

  it('problem.get by event ids is asked in chunks of 500', async () => {
    const asked = serve(f, () => 'problem.get by eventids');
    await client().problemStates(Array.from({ length: 1001 }, (_x, i) => String(i + 1)));
    expect(asked.map((a) => (a.params.eventids as string[]).length)).toEqual([500, 500, 1]);
  });

  it('trigger.get states: the trigger\'s status, its hosts\' status and maintenance fields, its items\' status', async () => {
    const asked = serve(f, () => 'trigger.get states');
    const rows = await client().triggerStates(['1']);
    expect(asked[0]?.params).toMatchObject({ output: ['triggerid', 'description', 'status'], selectHosts: expect.arrayContaining(['maintenance_status', 'maintenanceid', 'maintenance_type', 'maintenance_from', 'status']) });
    expect(rows.length).toBeGreaterThan(0);
    for (const t of rows) {
      expect(t.status).toBe('0');
      expect(t.hosts[0]).toMatchObject({ status: '0', maintenance_status: '0', maintenanceid: '0', maintenance_type: '0', maintenance_from: '0' });
      expect(t.items[0]?.status).toBe('0');
      // A host not in maintenance, a problem not suppressed: no maintenance.
      expect(maintenanceOf({ eventid: '1', objectid: t.triggerid, suppression_data: [] }, t.hosts[0])).toBeUndefined();
    }
    expect(await client().triggerStates([])).toEqual([]);
    // Asked in chunks of 500, as the events are.
    await client().triggerStates(Array.from({ length: 501 }, (_x, i) => String(i + 1)));
    expect(asked.slice(1).map((a) => (a.params.triggerids as string[]).length)).toEqual([500, 1]);
  });

  it('auditlog.get: who disabled the trigger, from the update that set its status to 1', async () => {
    const asked = serve(f, () => 'auditlog.get trigger disabled');
    const by = await client().disabledBy('trigger', '1');
    expect(asked[0]?.params).toMatchObject({ filter: { resourcetype: 13, resourceid: '1', action: 1 }, sortfield: 'clock', sortorder: 'DESC' });
    expect(by).toEqual({ username: 'Admin', clock: expect.stringMatching(/^\d{10}$/) });
    // A host's status is another key of details: the trigger's record does not answer for a host.
    expect(await client().disabledBy('host', '1')).toBeUndefined();
  });

  it('maintenance.get: names and types', async () => {
    serve(f, () => 'maintenance.get');
    const [m] = await client().maintenances(['1']);
    expect(m).toMatchObject({ maintenanceid: expect.stringMatching(/^\d+$/), name: expect.any(String), maintenance_type: '0' });
  });

  it('value history: item.get for the value type and units, then history.get of that type, newest first, limited', async () => {
    const asked = serve(f, (b) => (b.method === 'item.get' ? 'item.get' : 'history.get'));
    const h = await client().itemHistory('44674', 3);
    expect(asked.map((a) => a.method)).toEqual(['item.get', 'history.get']);
    expect(asked[1]?.params).toEqual({ history: 0, itemids: ['44674'], output: 'extend', sortfield: 'clock', sortorder: 'DESC', limit: 3 });
    expect(h.units).toBe('%');
    expect(h.points.map((p) => p.value)).toEqual(['98', '10', '97']);
    expect(h.points[0]!.at).toBeGreaterThan(h.points[1]!.at);
    expect(h.points[0]!.at % 1000).toBe(0);
  });

  it('history.get of another value type answers nothing (so the item\'s own type must be asked)', async () => {
    serve(f, (b) => (b.method === 'item.get' ? 'item.get' : 'history.get of another value type'));
    expect((await client().itemHistory('44674', 3)).points).toEqual([]);
  });

  it('history.get refuses a sort field other than clock (and ns on 7.0): a permanent error', async () => {
    serve(f, () => 'history.get sortfield value');
    const err = await client().call('history.get', { history: 0, itemids: ['1'], sortfield: 'value', limit: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RemoteError);
    expect((err as RemoteError).message).toMatch(/sortfield/);
  });
});

describe('the maintenance of an open problem', () => {
  const host = { hostid: '1', host: 'db-01', status: '0', maintenance_status: '1', maintenanceid: '3', maintenance_type: '1', maintenance_from: '1799996400' };

  it('the problem\'s suppression by a maintenance, with the host\'s start and type when it is the same maintenance', () => {
    expect(maintenanceOf({ eventid: '1', objectid: '2', suppressed: '1', suppression_data: [{ maintenanceid: '3', suppress_until: '1800003600' }] }, host)).toEqual({
      maintenanceid: '3', from: '1799996400', until: '1800003600', type: '1',
    });
  });

  it('a host in maintenance whose problem is not suppressed (tags not matching) is in maintenance all the same', () => {
    expect(maintenanceOf({ eventid: '1', objectid: '2', suppression_data: [] }, host)).toEqual({ maintenanceid: '3', from: '1799996400', type: '1' });
  });

  it('a problem suppressed by hand (7.0: maintenanceid 0, a userid) on a host not in maintenance is no maintenance', () => {
    expect(maintenanceOf({ eventid: '1', objectid: '2', suppressed: '1', suppression_data: [{ maintenanceid: '0', suppress_until: '0', userid: '1' }] }, { ...host, maintenance_status: '0', maintenanceid: '0' })).toBeUndefined();
  });
});
