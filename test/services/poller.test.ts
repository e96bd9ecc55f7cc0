import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nock from 'nock';
import { pino } from 'pino';
import { systemClock } from '../../src/adapters/clock.js';
import { PollCursor, SqliteStore } from '../../src/adapters/store/sqlite/index.js';
import { ZabbixApi } from '../../src/adapters/zabbix/api-client.js';
import { Secret } from '../../src/config/secret.js';
import type { Alert } from '../../src/core/alert.js';
import { polledProblemAlert } from '../../src/core/reconcile.js';
import { createMetrics, type Metrics } from '../../src/observability/metrics.js';
import { Intake } from '../../src/services/intake.js';
import { Poller } from '../../src/services/poller.js';
import { useNock } from '../helpers/nock.js';
import { nodeDigests } from '../../src/adapters/digests.js';

const BASE = 'http://zabbix.test';

useNock();

interface Rpc {
  method: string;
  params: Record<string, unknown>;
}

/** A Zabbix 6.0 API that answers each method with the given rows (every call), and records what it was asked. */
function zabbix(answers: Record<string, unknown[]>): Rpc[] {
  const calls: Rpc[] = [];
  nock(BASE)
    .persist()
    .post('/api_jsonrpc.php')
    .reply(200, (_uri, body) => {
      const b = body as Rpc & { id: number };
      calls.push({ method: b.method, params: b.params });
      // The client asks the version first (apiinfo.version, as Zabbix 6.0.14 answers it) to shape its requests.
      return { jsonrpc: '2.0', id: b.id, result: b.method === 'apiinfo.version' ? '6.0.14' : (answers[b.method] ?? []) };
    });
  return calls;
}

function problemAlert(eventId: string, triggerId = '23133'): Alert {
  const a = polledProblemAlert({
    eventId,
    triggerId,
    name: 'High CPU utilization on web-01',
    severity: '4',
    clock: '1795414091',
    tags: [{ tag: 'component', value: 'cpu' }],
    trigger: { description: 'High CPU utilization on web-01', host: { host: 'web-01' } },
  });
  if (!a) throw new Error('no alert');
  return { ...a, source: 'webhook' };
}

let store: SqliteStore;
let intake: Intake;
let metrics: Metrics;
let logs: { msg: string; event_id?: string }[];
/** Problem events of the bridge's open incidents (what the processing thread would have recorded). */
let openEvents: string[];

function poller(): Poller {
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as { msg: string }) });
  const api = new ZabbixApi({ url: `${BASE}/api_jsonrpc.php`, token: new Secret('zbx-token'), authMode: 'body', timeoutMs: 2000, logger });
  return new Poller(api, store, new PollCursor(store), intake, logger, metrics);
}

async function metric(name: string): Promise<number> {
  const m = (await metrics.registry.getMetricsAsJSON()).find((x) => x.name === name);
  return (m?.values ?? []).reduce((s, v) => s + v.value, 0);
}

beforeEach(() => {
  const dir = mkdtempSync(join(tmpdir(), 'zgb-poller-'));
  // As in the daemon: the main thread's connection to the inbox does not wait for locks.
  store = new SqliteStore(join(dir, 'bridge.db'), { synchronous: 'normal', inboxCheckpoint: 'external' });
  metrics = createMetrics({ processMetrics: false });
  intake = new Intake(store, systemClock, nodeDigests, pino({ level: 'silent' }), metrics, () => {});
  logs = [];
  openEvents = [];
  // The incidents are the processing thread's business; the poller only asks which events are open.
  jest.spyOn(store, 'openIncidentEvents').mockImplementation(() => [...openEvents]);
});

afterEach(() => {
  nock.cleanAll();
  store.close();
});

/** The bridge has a ticket open for event 27 (its problem delivered by the webhook). */
async function openIncidentFor27(): Promise<void> {
  await intake.accept(problemAlert('27'));
  openEvents.push('27');
}

describe('Poller: open events that Zabbix does not list', () => {
  it('an event event.get does not return is unknown: no recovery, the incident stays open', async () => {
    await openIncidentFor27();
    zabbix({ 'problem.get': [], 'event.get': [] });
    const p = poller();
    const first = await p.sweep();
    expect(first).toMatchObject({ recoveries: 0 });
    expect(store.hasDelivery('zbx:0:27:recovery')).toBe(false);
    await p.sweep();
    expect(store.hasDelivery('zbx:0:27:recovery')).toBe(false);
    // Counted and logged once for the event, not once per sweep.
    expect(await metric('zgb_zabbix_unknown_events_total')).toBe(1);
    expect(logs.filter((l) => l.event_id === '27' && /not returned by the Zabbix API/.test(l.msg))).toHaveLength(1);
  });

  it('an event returned with r_eventid set is a recovery; one with r_eventid 0 is still a problem', async () => {
    await openIncidentFor27();
    await intake.accept(problemAlert('28', '23134'));
    openEvents.push('28');
    zabbix({
      'problem.get': [],
      'event.get': [
        { eventid: '27', value: '1', r_eventid: '31', clock: '1795414091' },
        { eventid: '28', value: '1', r_eventid: '0', clock: '1795414091' },
      ],
    });
    const r = await poller().sweep();
    expect(r).toMatchObject({ recoveries: 1 });
    expect(store.deliveryAlert('zbx:0:27:recovery')).toMatchObject({ kind: 'recovery', source: 'poller', recoveryEventId: '31' });
    expect(store.hasDelivery('zbx:0:28:recovery')).toBe(false);
  });
});

/** A problem as problem.get returns it. */
function row(eventid: string, objectid: string, extra: Record<string, string> = {}) {
  return { eventid, source: '0', object: '0', objectid, clock: '1795414091', name: `problem ${eventid}`, severity: '4', r_eventid: '0', tags: [], ...extra };
}

function trigger(triggerid: string, host: string) {
  return { triggerid, description: `trigger ${triggerid} on ${host}`, priority: '4', status: '0', hosts: [{ hostid: '1', host }], items: [] };
}

const TRIGGERS = [trigger('100', 'db-01'), trigger('101', 'db-02'), trigger('102', 'db-03')];

function poller2(baseline?: 'skip' | 'import', hostGroups: string[] = []): Poller {
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as { msg: string }) });
  const api = new ZabbixApi({ url: `${BASE}/api_jsonrpc.php`, token: new Secret('zbx-token'), authMode: 'body', timeoutMs: 2000, logger });
  return new Poller(api, store, new PollCursor(store), intake, logger, metrics, { hostGroups, minSeverity: 'not_classified', ...(baseline ? { baseline } : {}) });
}

describe('Poller: only what Zabbix itself would send', () => {
  it('asks problem.get for problems not suppressed by a maintenance', async () => {
    const calls = zabbix({ 'problem.get': [] });
    await poller2().sweep();
    const get = calls.find((c) => c.method === 'problem.get');
    expect(get?.params).toMatchObject({ suppressed: false });
  });

  it('first start (baseline: skip): problems already open are recorded, never ticketed, even after a restart; new ones are', async () => {
    zabbix({ 'problem.get': [row('50', '100'), row('51', '101')], 'trigger.get': TRIGGERS, 'event.get': [] });
    const first = await poller2().sweep();
    expect(first).toMatchObject({ problems: 2, newProblems: 0, baselined: 2 });
    expect(store.hasDelivery('zbx:0:50:problem')).toBe(false);
    expect(store.hasDelivery('zbx:0:51:problem')).toBe(false);

    // Restart: a new poller on the same store; the baseline is on disk. Problem 52 started after the first sweep.
    nock.cleanAll();
    zabbix({ 'problem.get': [row('50', '100'), row('51', '101'), row('52', '102')], 'trigger.get': TRIGGERS, 'event.get': [] });
    const later = await poller2().sweep();
    expect(later).toMatchObject({ newProblems: 1, baselined: 0 });
    expect(store.hasDelivery('zbx:0:50:problem')).toBe(false);
    expect(store.hasDelivery('zbx:0:51:problem')).toBe(false);
    expect(store.deliveryAlert('zbx:0:52:problem')).toMatchObject({ kind: 'problem', source: 'poller', host: 'db-03' });
  });

  it('a baseline problem that recovers produces nothing, and is forgotten once Zabbix says it is resolved', async () => {
    zabbix({ 'problem.get': [row('50', '100')], 'trigger.get': TRIGGERS });
    await poller2().sweep();
    nock.cleanAll();
    const calls = zabbix({ 'problem.get': [], 'event.get': [{ eventid: '50', value: '1', r_eventid: '60', clock: '1795414091' }] });
    const p = poller2();
    const r = await p.sweep();
    expect(r).toMatchObject({ newProblems: 0, recoveries: 0 });
    expect(store.hasDelivery('zbx:0:50:recovery')).toBe(false);
    expect(calls.filter((c) => c.method === 'event.get')).toHaveLength(1);
    // Forgotten: the next sweep does not ask about it again.
    await p.sweep();
    expect(calls.filter((c) => c.method === 'event.get')).toHaveLength(1);
  });

  it('a baseline problem hidden for a while (maintenance) and listed again is still not ticketed', async () => {
    zabbix({ 'problem.get': [row('50', '100')], 'trigger.get': TRIGGERS });
    await poller2().sweep();
    nock.cleanAll();
    zabbix({ 'problem.get': [], 'event.get': [{ eventid: '50', value: '1', r_eventid: '0', clock: '1795414091' }] });
    const p = poller2();
    await p.sweep();
    nock.cleanAll();
    zabbix({ 'problem.get': [row('50', '100')], 'trigger.get': TRIGGERS });
    expect(await p.sweep()).toMatchObject({ newProblems: 0 });
    expect(store.hasDelivery('zbx:0:50:problem')).toBe(false);
  });

  it('baseline: import tickets the problems open at the first sweep', async () => {
    zabbix({ 'problem.get': [row('50', '100'), row('51', '101')], 'trigger.get': TRIGGERS });
    expect(await poller2('import').sweep()).toMatchObject({ newProblems: 2, baselined: 0 });
    expect(store.hasDelivery('zbx:0:50:problem')).toBe(true);
  });

  it('problems the webhook already delivered are not part of the baseline: they keep their incident and recover', async () => {
    await intake.accept(problemAlert('27'));
    openEvents.push('27');
    zabbix({ 'problem.get': [row('27', '23133')], 'trigger.get': TRIGGERS });
    expect(await poller2().sweep()).toMatchObject({ baselined: 0 });
    nock.cleanAll();
    zabbix({ 'problem.get': [], 'event.get': [{ eventid: '27', value: '1', r_eventid: '31', clock: '1795414091' }] });
    expect(await poller2().sweep()).toMatchObject({ recoveries: 1 });
  });

  it('a changed scope is a first sweep again: problems it brings in are baselined', async () => {
    const calls = zabbix({ 'hostgroup.get': [{ groupid: '7', name: 'Databases' }], 'problem.get': [row('50', '100')], 'trigger.get': TRIGGERS });
    expect(await poller2('skip', ['Databases']).sweep()).toMatchObject({ baselined: 1 });
    expect(calls.find((c) => c.method === 'problem.get')?.params).toMatchObject({ groupids: ['7'] });
    nock.cleanAll();
    zabbix({ 'problem.get': [row('50', '100'), row('51', '101')], 'trigger.get': TRIGGERS });
    expect(await poller2('skip', []).sweep()).toMatchObject({ baselined: 1, newProblems: 0 });
    expect(store.hasDelivery('zbx:0:51:problem')).toBe(false);
  });
});
