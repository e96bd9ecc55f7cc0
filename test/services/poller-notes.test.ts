import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nock from 'nock';
import { pino } from 'pino';
import { systemClock } from '../../src/adapters/clock.js';
import { nodeDigests } from '../../src/adapters/digests.js';
import { PollCursor, SqliteStore } from '../../src/adapters/store/sqlite/index.js';
import { ZabbixApi } from '../../src/adapters/zabbix/api-client.js';
import { Secret } from '../../src/config/secret.js';
import { polledProblemAlert } from '../../src/core/reconcile.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { Intake } from '../../src/services/intake.js';
import { Poller, type PollScope } from '../../src/services/poller.js';
import { useNock } from '../helpers/nock.js';

// The poller's notes at the service level: what reaches the inbox for an open problem whose host is in a
// maintenance or whose trigger is disabled, against a Zabbix 6.0 API (nock) answering each method as given.

const BASE = 'http://zabbix.test';
useNock();

interface Rpc {
  method: string;
  params: Record<string, unknown>;
}

let store: SqliteStore;
let intake: Intake;
let logs: { msg: string; err?: string }[];

beforeEach(() => {
  const dir = mkdtempSync(join(tmpdir(), 'zgb-poller-notes-'));
  store = new SqliteStore(join(dir, 'bridge.db'), { synchronous: 'normal', inboxCheckpoint: 'external' });
  intake = new Intake(store, systemClock, nodeDigests, pino({ level: 'silent' }), createMetrics({ processMetrics: false }), () => {});
  logs = [];
  jest.spyOn(store, 'openIncidentEvents').mockImplementation(() => ['27']);
});

afterEach(() => {
  nock.cleanAll();
  store.close();
});

/** Answers per method; a function answers by the request (a thrown error becomes a JSON-RPC error). */
function zabbix(answers: Record<string, unknown | ((p: Record<string, unknown>) => unknown)>): Rpc[] {
  const calls: Rpc[] = [];
  nock(BASE)
    .persist()
    .post('/api_jsonrpc.php')
    .reply(200, (_uri, body) => {
      const b = body as Rpc & { id: number };
      calls.push(b);
      if (b.method === 'apiinfo.version') return { jsonrpc: '2.0', id: b.id, result: '6.0.14' };
      const a = answers[b.method];
      try {
        return { jsonrpc: '2.0', id: b.id, result: typeof a === 'function' ? (a as (p: Record<string, unknown>) => unknown)(b.params) : (a ?? []) };
      } catch (e) {
        return { jsonrpc: '2.0', id: b.id, error: { code: -32500, message: 'Application error.', data: (e as Error).message } };
      }
    });
  return calls;
}

function poller(scope: Partial<PollScope> = {}): Poller {
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as { msg: string }) });
  const api = new ZabbixApi({ url: `${BASE}/api_jsonrpc.php`, token: new Secret('zbx-token'), authMode: 'body', timeoutMs: 2000, logger });
  return new Poller(api, store, new PollCursor(store), intake, logger, createMetrics({ processMetrics: false }), { hostGroups: [], minSeverity: 'not_classified', ...scope }, nodeDigests);
}

/** Event 27 on db-01 was ticketed from the webhook. */
async function open27(): Promise<void> {
  const a = polledProblemAlert({ eventId: '27', triggerId: '100', name: 'MySQL down', severity: '4', clock: '1795414091', tags: [], trigger: { description: 'MySQL down', host: { host: 'db-01' } } });
  await intake.accept({ ...a!, source: 'webhook' });
}

const suppressed = { eventid: '27', objectid: '100', suppressed: '1', suppression_data: [{ maintenanceid: '3', suppress_until: '1800003600' }] };
const hostIn = { hostid: '1', host: 'db-01', name: 'db-01', status: '0', maintenance_status: '1', maintenanceid: '3', maintenance_type: '0', maintenance_from: '1799996400' };
const trigger = (status: string, host = hostIn) => ({ triggerid: '100', description: 'MySQL down', priority: '4', status, hosts: [host], items: [{ itemid: '9', key_: 'mysql.ping', name: 'MySQL ping', status: '0' }] });

describe('Poller notes', () => {
  it('a host in maintenance: one note in the inbox, keyed by the change; the next sweep adds nothing', async () => {
    await open27();
    zabbix({ 'problem.get': (p: Record<string, unknown>) => (p.eventids ? [suppressed] : []), 'event.get': [{ eventid: '27', value: '1', r_eventid: '0' }], 'trigger.get': [trigger('0')], 'maintenance.get': [{ maintenanceid: '3', name: 'Patch night', maintenance_type: '0' }] });
    const p = poller({ onMaintenance: 'solve' });
    expect(await p.sweep()).toMatchObject({ notes: 1, recoveries: 0 });
    const note = store.deliveryAlert('zbx:0:27:note:maintenance:3:1799996400');
    expect(note).toMatchObject({ kind: 'note', source: 'poller', eventId: '27', host: 'db-01', note: { reason: 'maintenance', solve: true } });
    expect(note?.note?.text).toBe('Host db-01 entered maintenance "Patch night" (with data collection, until 2027-01-15 09:00:00 UTC): Zabbix suppresses its problems meanwhile (no notifications).');
    expect(await p.sweep()).toMatchObject({ notes: 0 });
  });

  it('a trigger and its host disabled, the host in a maintenance without data collection: three notes, the maintenance saying the problem cannot recover meanwhile', async () => {
    await open27();
    const noData = { ...hostIn, status: '1', maintenance_type: '1' };
    zabbix({ 'problem.get': (p: Record<string, unknown>) => (p.eventids ? [{ ...suppressed, suppressed: '0', suppression_data: [] }] : [{ ...suppressed, r_eventid: '0', source: '0', object: '0', clock: '1', name: 'x', severity: '4', tags: [] }]), 'trigger.get': [trigger('1', noData)], 'maintenance.get': [] });
    expect(await poller().sweep()).toMatchObject({ notes: 3 });
    expect(store.deliveryAlert('zbx:0:27:note:disabled:trigger')?.note).toMatchObject({ reason: 'disabled', solve: false });
    expect(store.deliveryAlert('zbx:0:27:note:disabled:host:1')?.note?.text).toMatch(/^Host db-01 was disabled in Zabbix/);
    expect(store.deliveryAlert('zbx:0:27:note:maintenance:3:1799996400')?.note?.text).toMatch(/^Host db-01 entered maintenance #3 \(without data collection\): Zabbix collects no data/);
  });

  it('the notes\' check failing does not hold back the sweep\'s recoveries; logged once', async () => {
    await open27();
    // 27 recovered, 28 is still open: its check fails.
    jest.spyOn(store, 'openIncidentEvents').mockImplementation(() => ['27', '28']);
    const calls = zabbix({
      'problem.get': (p: Record<string, unknown>) => {
        if (p.eventids) throw new Error('Invalid parameter "/": unexpected parameter "selectSuppressionData".');
        return [];
      },
      'event.get': [{ eventid: '27', value: '1', r_eventid: '31' }, { eventid: '28', value: '1', r_eventid: '0' }],
    });
    const p = poller();
    expect(await p.sweep()).toMatchObject({ recoveries: 1, notes: 0 });
    expect(store.hasDelivery('zbx:0:27:recovery')).toBe(true);
    // The recovered event is not checked; the open one is.
    expect(calls.filter((c) => c.method === 'problem.get' && c.params.eventids).map((c) => c.params.eventids)).toEqual([['28']]);
    await p.sweep();
    expect(logs.filter((l) => /maintenance and disabled triggers failed/.test(l.msg))).toHaveLength(1);
  });

  it('a restart between the maintenance\'s start and end: the new poller reads the entry announced on the incident and notes the end, once', async () => {
    await open27();
    // What the decision core remembered of the earlier run: the entry note announced on event 27's ticket.
    store.putIncident({ fingerprint: 'db-01|#100', cycle: 1, status: 'open', marker: '[zbx:m]', category: 'database', severity: 'high', urgency: 4, impact: 4, openCount: 1, occurrences: 1, openedAt: 1, announced: ['27:maintenance:3:1799996400'] }, 1);
    store.putEvents('db-01|#100', [{ eventId: '27', cycle: 1, open: true }]);
    const out = { ...hostIn, maintenance_status: '0', maintenanceid: '0', maintenance_from: '0' };
    zabbix({ 'problem.get': (p: Record<string, unknown>) => (p.eventids ? [{ ...suppressed, suppressed: '0', suppression_data: [] }] : []), 'event.get': [{ eventid: '27', value: '1', r_eventid: '0' }], 'trigger.get': [trigger('0', out)], 'maintenance.get': [{ maintenanceid: '3', name: 'Patch night', maintenance_type: '0' }] });
    const p = poller();
    expect(await p.sweep()).toMatchObject({ notes: 1 });
    const end = store.deliveryAlert('zbx:0:27:note:maintenance_end:3:1799996400');
    expect(end?.note).toMatchObject({ reason: 'maintenance_end', after: 'maintenance:3:1799996400', solve: false });
    expect(end?.note?.text).toBe('Host db-01 left maintenance "Patch night"; the problem is still open in Zabbix.');
    expect(await p.sweep()).toMatchObject({ notes: 0 });
    // Once the end is announced too, a later run finds nothing to end.
    store.putIncident({ ...store.getIncident('db-01|#100')!, announced: ['27:maintenance:3:1799996400', '27:maintenance_end:3:1799996400'] }, 2);
    expect(await poller().sweep()).toMatchObject({ notes: 0 });
  });

  it('a restart during a maintenance: the same maintenance keeps its announced key, whatever half of it the first sweep sees', async () => {
    await open27();
    store.putIncident({ fingerprint: 'db-01|#100', cycle: 1, status: 'open', marker: '[zbx:m]', category: 'database', severity: 'high', urgency: 4, impact: 4, openCount: 1, occurrences: 1, openedAt: 1, announced: ['27:maintenance:3:1799996400'] }, 1);
    store.putEvents('db-01|#100', [{ eventId: '27', cycle: 1, open: true }]);
    // Only the problem's suppression says so (the host's maintenance status not written yet): its key would be maintenance:3:0.
    const notYet = { ...hostIn, maintenance_status: '0', maintenanceid: '0', maintenance_from: '0' };
    zabbix({ 'problem.get': (p: Record<string, unknown>) => (p.eventids ? [suppressed] : []), 'event.get': [{ eventid: '27', value: '1', r_eventid: '0' }], 'trigger.get': [trigger('0', notYet)], 'maintenance.get': [] });
    await poller().sweep();
    // The note goes under the key announced (the decision core ignores it: already announced), never as a new entry.
    expect(store.hasDelivery('zbx:0:27:note:maintenance:3:1799996400')).toBe(true);
    expect(store.hasDelivery('zbx:0:27:note:maintenance:3:0')).toBe(false);
  });

  it('a maintenance seen ending by this process is over, even while the incident does not say so yet: its next period is a new entry', async () => {
    await open27();
    // The entry was announced on the ticket; the end note this process is about to send is not decided yet.
    store.putIncident({ fingerprint: 'db-01|#100', cycle: 1, status: 'open', marker: '[zbx:m]', category: 'database', severity: 'high', urgency: 4, impact: 4, openCount: 1, occurrences: 1, openedAt: 1, announced: ['27:maintenance:3:1799996400'] }, 1);
    store.putEvents('db-01|#100', [{ eventId: '27', cycle: 1, open: true }]);
    let inMaintenance = false;
    const next = { ...hostIn, maintenance_from: '1800082800' };
    const out = { ...hostIn, maintenance_status: '0', maintenanceid: '0', maintenance_from: '0' };
    zabbix({
      'problem.get': (p: Record<string, unknown>) => (p.eventids ? [inMaintenance ? suppressed : { ...suppressed, suppressed: '0', suppression_data: [] }] : []),
      'event.get': [{ eventid: '27', value: '1', r_eventid: '0' }],
      'trigger.get': () => [trigger('0', inMaintenance ? next : out)],
      'maintenance.get': [{ maintenanceid: '3', name: 'Patch night', maintenance_type: '0' }],
    });
    const p = poller();
    expect(await p.sweep()).toMatchObject({ notes: 1 });
    expect(store.hasDelivery('zbx:0:27:note:maintenance_end:3:1799996400')).toBe(true);
    inMaintenance = true;
    expect(await p.sweep()).toMatchObject({ notes: 1 });
    expect(store.deliveryAlert('zbx:0:27:note:maintenance:3:1800082800')?.note).toMatchObject({ reason: 'maintenance' });
  });

  it('a problem whose check fails is still swept; the failure logged once across sweeps', async () => {
    await open27();
    zabbix({
      'problem.get': (p: Record<string, unknown>) => {
        if (p.eventids) throw new Error('No permissions to referred object or it does not exist!');
        return [];
      },
      'event.get': [{ eventid: '27', value: '1', r_eventid: '0' }],
    });
    const p = poller();
    expect(await p.sweep()).toMatchObject({ notes: 0 });
    expect(await p.sweep()).toMatchObject({ notes: 0 });
    expect(logs.filter((l) => /maintenance and disabled triggers failed/.test(l.msg))).toHaveLength(1);
  });
});
