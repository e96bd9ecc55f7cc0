import { describe, expect, it } from '@jest/globals';
import { FIELD_MAX, parseWebhookBody, quickParse, slowParse } from '../../src/adapters/zabbix/webhook-body.js';
import { normalise } from '../../src/core/normalise.js';
import { bodyVariants, RECORDED_BODIES as fixtures } from '../helpers/body-variants.js';
import { zabbixBody } from '../helpers/fixtures.js';

/**
 * parseWebhookBody takes a quick path without zod for bodies every check passes (issue 16). It must give
 * exactly what the zod schema gives — the same event (the same keys and values; their order is the body's, and
 * nothing reads it), the same alert after normalise, to the order of its keys — on the recorded bodies and on many variants of them; a body the quick path is not sure of goes
 * to zod, which decides and names the field.
 */

const tagsOf = (...t: unknown[]) => JSON.stringify(t);

/** Values at and around every check's edges. */
const values: unknown[] = [
  '',
  ' ',
  '0',
  '1',
  '2',
  '3',
  '4',
  '5',
  '6',
  '9',
  '01',
  ' 1',
  '1 ',
  '12',
  ' 12 ',
  '12a',
  '-1',
  '1'.repeat(20),
  '1'.repeat(21),
  ` ${'1'.repeat(20)} `,
  '{EVENT.ID}',
  ' {EVENT.RECOVERY.ID} ',
  '{event.id}',
  '*UNKNOWN*',
  ' *UNKNOWN* ',
  'h'.repeat(128),
  'h'.repeat(129),
  ` ${'h'.repeat(128)} `,
  '😀'.repeat(128),
  '😀'.repeat(129),
  'k'.repeat(2048),
  'k'.repeat(2049),
  'x'.repeat(FIELD_MAX),
  'x'.repeat(FIELD_MAX + 1),
  'é'.repeat(300),
  '2026.11.23',
  '06:18:41',
  'acknowledged',
  12,
  0,
  null,
  true,
  [],
  {},
  ['1'],
  '[]',
  'null',
  '{}',
  '"x"',
  '[{"tag":',
  tagsOf({ tag: 'a', value: 'b' }),
  tagsOf({ tag: 'a' }),
  tagsOf({ tag: 'a', value: null }),
  tagsOf({ tag: 'a', value: 1 }),
  tagsOf({ tag: 1, value: 'b' }),
  tagsOf({ value: 'b' }),
  tagsOf({ tag: 'a', value: 'b', extra: 1 }),
  tagsOf({ tag: 't'.repeat(255), value: 'v'.repeat(255) }),
  tagsOf({ tag: 't'.repeat(256), value: 'v' }),
  tagsOf({ tag: 't', value: 'v'.repeat(256) }),
  tagsOf({ tag: 't', value: '😀'.repeat(255) }),
  tagsOf(['a']),
  tagsOf(null),
  tagsOf('a'),
  `  ${tagsOf({ tag: 'a', value: 'b' })}  `,
  '[{"tag":"a","value":"b","__proto__":{"x":1}}]',
  tagsOf(...Array.from({ length: 60 }, (_, i) => ({ tag: `t${i}`, value: String(i) }))),
];

const params = [
  'event_id',
  'event_value',
  'event_source',
  'event_update_status',
  'event_nseverity',
  'event_recovery_id',
  'event_cause_id',
  'trigger_id',
  'item_id',
  'host_host',
  'event_tags',
  'event_name',
  'trigger_name',
  'host_name',
  'item_key',
  'item_value',
  'trigger_description',
  'event_update_action',
  'user_fullname',
  'event_date',
  'event_time',
  'alert_subject',
  'made_up_param',
];

const variants = (count: number, seed: number) => bodyVariants(count, seed, { keys: () => params, values, changes: { min: 0, spread: 4 }, deleteShare: 0.15 });

function expectSame(b: Record<string, unknown>): boolean {
  const zod = slowParse(b);
  const got = parseWebhookBody(b);
  expect(got).toStrictEqual(zod);
  if (got.ok && zod.ok) {
    expect(JSON.stringify(normalise(got.event, 'webhook', 60))).toBe(JSON.stringify(normalise(zod.event, 'webhook', 60)));
  }
  return quickParse(b) !== undefined;
}

describe('the quick path gives what the zod schema gives', () => {
  it('on the recorded bodies (Zabbix 6.0 and 7.0), which all take it', () => {
    for (const name of fixtures) expect(expectSame({ ...zabbixBody(name) })).toBe(true);
  });

  it('on 6,000 variants with values at and around every check\'s edges', () => {
    let quick = 0;
    let refused = 0;
    for (const b of variants(6000, 16)) {
      if (expectSame(b)) quick++;
      if (!slowParse(b).ok) refused++;
    }
    // Both outcomes are reached often, and the quick path only ever takes what zod accepts (expectSame).
    expect(quick).toBeGreaterThan(1000);
    expect(refused).toBeGreaterThan(1000);
  });

  it('a body with a "constructor" parameter: the same event both ways, never an alert field', () => {
    const b = JSON.parse(`{"constructor":"x",${JSON.stringify(zabbixBody('problem')).slice(1)}`) as Record<string, unknown>;
    expectSame(b);
    const r = parseWebhookBody(b);
    expect(r.ok).toBe(true);
    if (r.ok) expect(Object.prototype.hasOwnProperty.call(normalise(r.event), 'constructor')).toBe(false);
  });
});
