import { describe, expect, it } from '@jest/globals';
import type { Alert } from '../../src/core/alert.js';
import { classify } from '../../src/core/classify.js';
import { parseQuantity } from '../../src/core/units.js';
import { exampleRules } from '../helpers/fixtures.js';

const rules = exampleRules();

function alert(over: Partial<Alert>): Alert {
  return {
    source: 'webhook',
    eventSource: '0',
    eventId: '1',
    kind: 'problem',
    severity: 'average',
    eventName: 'x',
    host: 'srv-01',
    hostName: 'srv-01',
    triggerName: 'Something happened',
    tags: [],
    ...over,
  };
}

describe('classify with the example rules', () => {
  it.each([
    ['cpu by tag', alert({ tags: [{ tag: 'component', value: 'cpu' }] }), 'cpu', /tag component=cpu/],
    ['memory by item key', alert({ itemKey: 'vm.memory.util' }), 'memory', /item key vm.memory.util/],
    ['memory by tag list value', alert({ tags: [{ tag: 'component', value: 'swap' }] }), 'memory', /tag component=swap/],
    ['disk by item key with brackets', alert({ itemKey: 'vfs.fs.size[/var,pused]' }), 'disk', /item key/],
    ['network by trigger name', alert({ triggerName: 'Interface eth0: Link down' }), 'network', /trigger name/],
    ['temperature by item key glob', alert({ itemKey: 'hw.cpu.temperature[0]' }), 'temperature', /item key/],
    ['fallback when nothing matches', alert({ triggerName: 'Backup job failed' }), 'other', /fallback/],
  ])('%s', (_n, a, category, why) => {
    const c = classify(rules, a);
    expect(c.category).toBe(category);
    expect(c.matchedBy).toMatch(why);
  });

  it('takes the first category that matches, in file order', () => {
    const c = classify(rules, alert({ tags: [{ tag: 'component', value: 'cpu' }], itemKey: 'vfs.fs.size[/,pused]' }));
    expect(c.category).toBe('cpu');
  });

  it.each([
    ['cpu 97 % above 95 → disaster', 'cpu', '97 %', 'high', 'disaster'],
    ['cpu 92 % above 90 → high', 'cpu', '92 %', 'average', 'high'],
    ['cpu 50 % no threshold → Zabbix severity', 'cpu', '50 %', 'warning', 'warning'],
    ['temperature 88 °C above "85 °C" → disaster', 'temperature', '88 °C', 'warning', 'disaster'],
    ['unparseable value → Zabbix severity', 'cpu', 'n/a', 'average', 'average'],
  ] as const)('%s', (_n, component, value, zabbix, expected) => {
    const c = classify(rules, alert({ tags: [{ tag: 'component', value: component }], itemValue: value, severity: zabbix }));
    expect(c.severity).toBe(expected);
  });

  it('does not recompute severity from the value of a recovery', () => {
    const c = classify(rules, alert({ kind: 'recovery', tags: [{ tag: 'component', value: 'cpu' }], itemValue: '99 %', severity: 'high' }));
    expect(c.severity).toBe('high');
  });

  it.each([
    ['disaster cpu', 'cpu', 'disaster', { ticket: true, urgency: 5, impact: 5, itilcategories_id: 11, groups_id_assign: 3, type: 1 }],
    ['warning disk', 'storage', 'warning', { ticket: true, urgency: 2, impact: 2, itilcategories_id: 13, groups_id_assign: 4 }],
    ['information: no ticket', 'cpu', 'information', { ticket: false }],
  ] as const)('GLPI fields for %s', (_n, component, severity, expected) => {
    const c = classify(rules, alert({ tags: [{ tag: 'component', value: component }], severity }));
    expect(c.glpi).toMatchObject(expected);
  });
});

describe('parseQuantity (Zabbix units)', () => {
  it.each([
    ['97 %', 97, '%'],
    ['950 Mbps', 950e6, 'bps'],
    ['1.5 GB', 1.5 * 1024 ** 3, 'B'],
    ['85 °C', 85, '°C'],
    ['12', 12, ''],
    ['-3.5 ms', -3.5, 'ms'],
    ['2 KBps', 2048, 'Bps'],
  ])('%s', (text, value, unit) => {
    expect(parseQuantity(text)).toEqual({ value, unit });
  });

  it.each(['', 'abc', '97 % extra'])('rejects %j', (text) => expect(parseQuantity(text)).toBeUndefined());
});
