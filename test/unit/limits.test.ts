import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseWebhookBody } from '../../src/adapters/zabbix/webhook-body.js';
import type { Alert } from '../../src/core/alert.js';
import { boundAlert, characters, LIMITS, truncate, truncateAlert, truncationMarker, type LimitedField } from '../../src/core/limits.js';
import { normalise } from '../../src/core/normalise.js';
import { polledProblemAlert } from '../../src/core/reconcile.js';
import { cpuAlert, ROOT, zabbixBody } from '../helpers/fixtures.js';

const MARKER = /… \[truncated [\d,]+ characters\]$/;
const problem = zabbixBody('problem');
const update = zabbixBody('update-acknowledged');

function parsed(body: Record<string, string>): Alert {
  const r = parseWebhookBody(body);
  if (!r.ok) throw new Error(r.message);
  return normalise(r.event);
}

function refusal(body: Record<string, string>): { field: string; message: string } {
  const r = parseWebhookBody(body);
  if (r.ok) throw new Error('accepted');
  return { field: r.field, message: r.message };
}

describe('truncate', () => {
  it('keeps text at its maximum as it is, and cuts one character over to the maximum with a marker saying how much went', () => {
    expect(truncate('x'.repeat(300), 300)).toBe('x'.repeat(300));
    const cut = truncate('x'.repeat(301), 300);
    expect(cut).toMatch(MARKER);
    expect(characters(cut)).toBe(300);
    const removed = Number(/truncated ([\d,]+)/.exec(cut)![1]!.replace(/,/g, ''));
    expect(cut.length - truncationMarker(removed).length + removed).toBe(301);
  });

  it('bounds any length: 60,000 characters become the maximum, the count with thousands separators', () => {
    const cut = truncate('v'.repeat(60_000), 1_900);
    expect(characters(cut)).toBeLessThanOrEqual(1_900);
    expect(cut).toMatch(/… \[truncated 58,1\d\d characters\]$/);
    expect(truncationMarker(1_234_567)).toBe('… [truncated 1,234,567 characters]');
  });

  it('counts characters as Zabbix does (code points), and never cuts a surrogate pair in two', () => {
    const emoji = '😀'.repeat(255);
    expect(emoji.length).toBe(510);
    expect(truncate(emoji, 255)).toBe(emoji);
    const cut = truncate(`${emoji}😀`, 255);
    expect(characters(cut)).toBeLessThanOrEqual(255);
    expect(cut).toMatch(MARKER);
    expect(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/.test(cut)).toBe(false);
  });
});

describe('fields Zabbix bounds: at the maximum accepted, one over refused naming the parameter', () => {
  const refused = (Object.keys(LIMITS) as LimitedField[]).filter((f) => LIMITS[f].over === 'refuse' && !f.startsWith('tag'));
  it.each(refused.map((f) => [f, LIMITS[f].parameters[0]!, LIMITS[f].max] as const))('%s (%s, %d)', (field, parameter, max) => {
    const digits = 'unit' in LIMITS[field] && LIMITS[field].unit === 'digits';
    const value = (n: number) => (digits ? '9'.repeat(n) : 'é'.repeat(n));
    const body = field === 'recoveryEventId' ? zabbixBody('recovery') : problem;
    const ok = parsed({ ...body, [parameter]: value(max) });
    expect(ok[field as keyof Alert]).toBe(value(max));
    expect(refusal({ ...body, [parameter]: value(max + 1) })).toEqual({ field: parameter, message: `${parameter} is longer than ${max.toLocaleString('en-US')} ${digits ? 'digits' : 'characters'}` });
  });

  it('an attacker\'s 60,000-character host name is refused, and the message does not echo it', () => {
    const r = refusal({ ...problem, host_host: 'h'.repeat(60_000) });
    expect(r).toEqual({ field: 'host_host', message: 'host_host is longer than 128 characters' });
  });

  it('counts what is kept: surrounding blanks do not count, a macro left unexpanded is absent', () => {
    expect(parsed({ ...problem, host_host: `  ${'h'.repeat(128)}  ` }).host).toBe('h'.repeat(128));
    expect(parsed({ ...problem, host_name: '{HOST.NAME}' }).hostName).toBe(problem.host_host);
  });

  it('tag names and values: 255 accepted, 256 refused naming the tag by its place', () => {
    const tags = (tag: string, value: string) => JSON.stringify([{ tag: 'component', value: 'cpu' }, { tag, value }]);
    expect(parsed({ ...problem, event_tags: tags('t'.repeat(255), 'v'.repeat(255)) }).tags[1]).toEqual({ tag: 't'.repeat(255), value: 'v'.repeat(255) });
    expect(refusal({ ...problem, event_tags: tags('t'.repeat(256), 'v') })).toEqual({ field: 'event_tags[1].tag', message: 'event_tags[1].tag is longer than 255 characters' });
    expect(refusal({ ...problem, event_tags: tags('t', 'v'.repeat(256)) })).toEqual({ field: 'event_tags[1].value', message: 'event_tags[1].value is longer than 255 characters' });
  });

  it('a parameter over 64 KiB is refused whatever it is (no Zabbix alert parameter is longer)', () => {
    expect(refusal({ ...problem, item_value: 'x'.repeat(65_536) })).toMatchObject({ field: 'item_value', message: 'item_value is longer than 65535 characters' });
  });
});

describe('text Zabbix may send long: truncated to its maximum with a marker, never refused', () => {
  const cases: readonly [LimitedField, string, (a: Alert) => string | undefined, Record<string, string>][] = [
    ['triggerName', 'trigger_name', (a) => a.triggerName, problem],
    ['hostIp', 'host_ip', (a) => a.hostIp, problem],
    ['itemValue', 'item_value', (a) => a.itemValue, problem],
    ['opdata', 'event_opdata', (a) => a.opdata, problem],
    ['updateMessage', 'event_update_message', (a) => a.update?.message, update],
    ['updateAction', 'event_update_action', (a) => a.update?.action, update],
    ['updateUser', 'user_fullname', (a) => a.update?.user, update],
  ];
  it.each(cases)('%s (%s)', (field, parameter, read, body) => {
    const max = LIMITS[field].max;
    expect(LIMITS[field].parameters).toEqual([parameter]);
    expect(read(parsed({ ...body, [parameter]: 'a'.repeat(max) }))).toBe('a'.repeat(max));
    for (const length of [max + 1, 60_000]) {
      const kept = read(parsed({ ...body, [parameter]: 'a'.repeat(length) }))!;
      expect(kept).toMatch(MARKER);
      expect(characters(kept)).toBeLessThanOrEqual(max);
      expect(kept.startsWith('a'.repeat(max - 40))).toBe(true);
    }
  });

  it('an update\'s flags are read from the whole action before it is cut', () => {
    const a = parsed({ ...update, event_update_action: `acknowledged, ${'commented, '.repeat(100)}closed` });
    expect(a.update).toMatchObject({ acknowledged: true, closed: true });
    expect(a.update!.action).toMatch(MARKER);
  });

  it('keeps the first 50 tags of a longer list', () => {
    const many = Array.from({ length: 80 }, (_v, i) => ({ tag: `t${i}`, value: 'v' }));
    const a = parsed({ ...problem, event_tags: JSON.stringify(many) });
    expect(a.tags).toHaveLength(LIMITS.tagCount.max);
    expect(a.tags[49]).toEqual({ tag: 't49', value: 'v' });
  });

  it('leaves an alert within every limit untouched (same object)', () => {
    const a = cpuAlert('problem', { itemValue: '97 %' });
    expect(truncateAlert(a)).toBe(a);
  });
});

describe('alerts from the Zabbix API get the same bounds (boundAlert, used by the poller)', () => {
  const polled = (host: string, description: string, opdata?: string) =>
    polledProblemAlert({
      eventId: '501',
      triggerId: '23133',
      name: 'High CPU',
      severity: '4',
      clock: '1795414091',
      tags: [],
      ...(opdata ? { opdata } : {}),
      trigger: { description, host: { host } },
    })!;

  it('a trigger name expanded past 255 characters and long operational data are truncated', () => {
    const r = boundAlert(polled('web-01', `Log line: ${'x'.repeat(5_000)}`, 'o'.repeat(10_000)));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(characters(r.alert.triggerName)).toBeLessThanOrEqual(255);
    expect(r.alert.triggerName).toMatch(MARKER);
    expect(characters(r.alert.opdata!)).toBeLessThanOrEqual(LIMITS.opdata.max);
  });

  it('a host name longer than Zabbix allows is refused with the field named, as the webhook does', () => {
    expect(boundAlert(polled('h'.repeat(128), 'CPU')).ok).toBe(true);
    expect(boundAlert(polled('h'.repeat(129), 'CPU'))).toEqual({ ok: false, field: 'host', parameter: 'host_host', message: 'is longer than 128 characters' });
    expect(boundAlert({ ...polled('web-01', 'CPU'), tags: [{ tag: 'x'.repeat(256), value: '' }] })).toMatchObject({ ok: false, field: 'tags[0].tag' });
  });
});

describe('the README documents every limit', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### Field limits'));
  const rows = section.slice(0, section.search(/\n#{2,3} (?!Field limits)/)).split('\n').filter((l) => l.startsWith('| `'));

  it.each(Object.keys(LIMITS) as LimitedField[])('%s: its parameter, maximum and what happens past it', (field) => {
    const limit = LIMITS[field];
    const max = limit.max.toLocaleString('en-US');
    const past = limit.over === 'refuse' ? /\| refused \|/ : /\| (truncated|the first \d+ kept)/;
    const row = rows.find((r) => r.includes(`\`${limit.parameters[0]!}\``) && new RegExp(`\\| ${max}( digits| each)? \\|`).test(r) && past.test(r));
    expect(row).toBeDefined();
  });
});
