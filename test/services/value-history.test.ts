import { describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import type { TicketDraft } from '../../src/core/decide.js';
import type { ItemHistory, ValueHistoryReader } from '../../src/core/ports.js';
import { createMetrics, type Metrics } from '../../src/observability/metrics.js';
import { ValueHistory, type ValueHistorySettings } from '../../src/services/value-history.js';

// zabbix.value_history at create time: the item's last values appended to the body; a failing, slow or silent
// Zabbix leaves the ticket as it was (counted, logged once), never failing or holding it.

const draft: TicketDraft = {
  name: 'High CPU on web-01 [zbx:m1]', content: '<p>body</p>', marker: '[zbx:m1]', urgency: 4, impact: 4, type: 1,
  itilcategories_id: 0, entities_id: 0, requesttypes_id: 0, groups_id_assign: 0, item: { id: '44674' },
};
/** As recorded on Zabbix 6.0.14 (test/fixtures/zabbix/api/6.0.json, history.get). */
const recorded: ItemHistory = { units: '%', points: [{ at: 1796167796000, value: '98' }, { at: 1796167793000, value: '10' }, { at: 1796167781000, value: '97' }] };
const on: ValueHistorySettings = { enabled: true, count: 3, timeoutMs: 200 };

function setup(reader: ValueHistoryReader['itemHistory'], settings: ValueHistorySettings = on) {
  const logs: { msg: string; level: number }[] = [];
  const logger = pino({ level: 'info' }, { write: (l: string) => void logs.push(JSON.parse(l) as { msg: string; level: number }) });
  const metrics: Metrics = createMetrics({ processMetrics: false });
  const asked: [string, number][] = [];
  const vh = new ValueHistory({ itemHistory: (id, n) => (asked.push([id, n]), reader(id, n)) }, () => settings, logger, metrics);
  const count = async (result: string) => (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === 'zgb_zabbix_value_history_total')?.values.find((v) => v.labels.result === result)?.value ?? 0;
  return { vh, logs, asked, count };
}

describe('value history on new tickets', () => {
  it('appends the item\'s last values, newest first, with units; nothing else of the draft changes', async () => {
    const { vh, asked, count } = setup(async () => recorded);
    const t = await vh.withHistory(draft);
    expect(asked).toEqual([['44674', 3]]);
    expect(t).toEqual({ ...draft, content: '<p>body</p>\n<p>Last values:<br>\n2026-12-01 23:29:56 UTC: 98 %<br>\n2026-12-01 23:29:53 UTC: 10 %<br>\n2026-12-01 23:29:41 UTC: 97 %</p>' });
    expect(await count('added')).toBe(1);
  });

  it('off, or no item on the draft: not asked at all', async () => {
    const off = setup(async () => recorded, { ...on, enabled: false });
    expect(await off.vh.withHistory(draft)).toBe(draft);
    const { item: _i, ...noItem } = draft;
    const none = setup(async () => recorded);
    expect(await none.vh.withHistory(noItem)).toBe(noItem);
    expect([...off.asked, ...none.asked]).toEqual([]);
  });

  it('no values (a new item, another value type): the draft as it was, counted empty', async () => {
    const { vh, count } = setup(async () => ({ units: '', points: [] }));
    expect(await vh.withHistory(draft)).toBe(draft);
    expect(await count('empty')).toBe(1);
  });

  it('Zabbix failing: the draft as it was, counted each time, logged once per error', async () => {
    const { vh, logs, count } = setup(async () => {
      throw new Error('Zabbix API answered HTTP 500');
    });
    expect(await vh.withHistory(draft)).toBe(draft);
    expect(await vh.withHistory(draft)).toBe(draft);
    expect(await count('failed')).toBe(2);
    expect(logs.filter((l) => /value history not fetched/.test(l.msg))).toHaveLength(1);
  });

  it('Zabbix not answering within the timeout: the draft as it was (the create is not held)', async () => {
    const { vh, logs, count } = setup(() => new Promise<ItemHistory>(() => undefined), { ...on, timeoutMs: 50 });
    expect(await vh.withHistory(draft)).toBe(draft);
    expect(await count('failed')).toBe(1);
    expect(logs.find((l) => /value history not fetched/.test(l.msg))).toMatchObject({ err: 'no answer within 50 ms' });
  });

  it('the wrapped desk adds history to creates only', async () => {
    const created: TicketDraft[] = [];
    const followups: string[] = [];
    const desk = {
      findTicketByMarker: async () => undefined,
      createTicket: async (t: TicketDraft) => (created.push(t), 7),
      addFollowup: async (_id: number, content: string) => (followups.push(content), 1),
      followupContents: async () => [],
      addSolution: async () => 'added' as const,
      updateTicket: async () => undefined,
      ticketStatus: async () => 1,
      ticketUrl: (id: number) => `http://glpi/${id}`,
    };
    const { vh } = setup(async () => recorded);
    const wrapped = vh.desk(desk);
    expect(await wrapped.createTicket(draft)).toBe(7);
    await wrapped.addFollowup(7, 'x', { isPrivate: false });
    expect(created[0]!.content).toMatch(/Last values:/);
    expect(followups).toEqual(['x']);
    expect(wrapped.ticketUrl(7)).toBe('http://glpi/7');
  });
});
