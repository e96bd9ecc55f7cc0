/**
 * normalise converts Zabbix's "YYYY.MM.DD" + "HH:MM:SS" once per distinct time in a burst: each time an alert
 * carries (when the problem occurred, recovered, was updated) keeps its own last conversion, so a burst of
 * recoveries sharing their problem's second and their own converts each once — with one entry for all, a
 * recovery's two times pushed each other out and every alert converted both. Counted by the conversions made
 * (Date.UTC calls), not timed. The values are checked as well: a cached time is the same as a fresh one.
 */
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { normalise, type ZabbixEvent } from '../../src/core/normalise.js';

const problem: ZabbixEvent = { event_id: '101', event_value: '1', event_nseverity: '4', trigger_id: '23133', trigger_name: 'High CPU', host_host: 'web-01', tags: [], event_date: '2026.12.02', event_time: '08:00:00' };

afterEach(() => {
  jest.restoreAllMocks();
});

describe('the time cache of normalise', () => {
  it('a burst of recoveries converts the problem\'s time and the recovery\'s once each, not twice per alert', () => {
    const recovery = (id: number): ZabbixEvent => ({ ...problem, event_id: String(id), event_value: '0', event_recovery_id: String(id + 1000), event_recovery_date: '2026.12.02', event_recovery_time: '08:05:00' });
    normalise({ ...problem, event_time: '07:00:00' }); // another second first: nothing of the burst is cached yet
    const conversions = jest.spyOn(Date, 'UTC');
    const alerts = Array.from({ length: 20 }, (_v, i) => normalise(recovery(200 + i)));
    expect(conversions).toHaveBeenCalledTimes(2);
    for (const a of alerts) expect(a).toMatchObject({ kind: 'recovery', occurredAt: '2026-12-02T08:00:00.000Z', recoveredAt: '2026-12-02T08:05:00.000Z' });
  });

  it('a burst of updates converts the problem\'s time and the update\'s once each', () => {
    const update = (id: number): ZabbixEvent => ({ ...problem, event_id: String(id), event_update_status: '1', event_update_action: 'acknowledged', event_update_date: '2026.12.02', event_update_time: '08:10:00' });
    normalise({ ...problem, event_time: '07:00:00' });
    const conversions = jest.spyOn(Date, 'UTC');
    const alerts = Array.from({ length: 20 }, (_v, i) => normalise(update(300 + i)));
    expect(conversions).toHaveBeenCalledTimes(2);
    for (const a of alerts) expect(a).toMatchObject({ kind: 'update', occurredAt: '2026-12-02T08:00:00.000Z', update: { at: '2026-12-02T08:10:00.000Z' } });
  });

  it('a cached time is read with the offset it was converted with: another offset converts again', () => {
    const first = normalise({ ...problem, event_time: '09:00:00' }, 'webhook', 0);
    const shifted = normalise({ ...problem, event_time: '09:00:00' }, 'webhook', 120);
    expect(first.occurredAt).toBe('2026-12-02T09:00:00.000Z');
    expect(shifted.occurredAt).toBe('2026-12-02T07:00:00.000Z');
  });
});
