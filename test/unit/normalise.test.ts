import { describe, expect, it } from '@jest/globals';
import { deliveryKey } from '../../src/core/fingerprint.js';
import { kindOf, normalise, present, zabbixTime } from '../../src/core/normalise.js';
import { parseWebhookBody } from '../../src/adapters/zabbix/webhook-body.js';
import { zabbixBody } from '../helpers/fixtures.js';
import { nodeDigests } from '../../src/adapters/digests.js';

function alertOf(body: Record<string, string>) {
  const r = parseWebhookBody(body);
  if (!r.ok) throw new Error(r.message);
  return normalise(r.event);
}

describe('normalise: real Zabbix 6.0 bodies', () => {
  it('reads a problem: kind, severity, tags parsed twice, macros absent, time in UTC', () => {
    const a = alertOf(zabbixBody('problem'));
    expect(a).toMatchObject({
      kind: 'problem',
      eventId: '1',
      severity: 'high',
      host: 'bridge-test-01',
      triggerId: '23133',
      triggerName: 'High CPU utilization on bridge-test-01',
      itemKey: 'system.cpu.util',
      itemValue: '97 %',
      occurredAt: '2026-11-23T06:18:41.000Z',
    });
    expect(a.tags).toEqual([
      { tag: 'component', value: 'cpu' },
      { tag: 'scope', value: 'performance' },
      { tag: 'bridge', value: 'test' },
    ]);
    expect(a.recoveryEventId).toBeUndefined();
    expect(a.update).toBeUndefined();
  });

  it('reads an update: who, what, acknowledged', () => {
    const a = alertOf(zabbixBody('update-acknowledged'));
    expect(a.kind).toBe('update');
    expect(a.update).toEqual({
      action: 'acknowledged and commented',
      message: 'GLPI ticket #4242 opened by the bridge',
      user: 'Zabbix Administrator (Admin)',
      at: '2026-11-23T06:18:46.000Z',
      acknowledged: true,
      severityChanged: false,
      closed: false,
    });
  });

  it('reads a recovery: the problem event id, the recovery event id', () => {
    const a = alertOf(zabbixBody('recovery'));
    expect(a).toMatchObject({ kind: 'recovery', eventId: '1', recoveryEventId: '2', recoveredAt: '2026-11-23T06:18:51.000Z' });
  });
});

describe('normalise: what the ticket body shows (issue 14 item 7)', () => {
  it("reads the trigger's description (lines kept) and the item's name", () => {
    const a = alertOf(zabbixBody('problem', { trigger_description: 'CPU above 90 % for 5 minutes.\r\nCheck the top processes.\n', item_name: 'CPU utilization' }));
    expect(a).toMatchObject({ triggerDescription: 'CPU above 90 % for 5 minutes.\r\nCheck the top processes.', itemName: 'CPU utilization' });
  });

  it('an empty description, an unexpanded macro or a media type without the parameters means absent', () => {
    expect(alertOf(zabbixBody('problem', { trigger_description: '', item_name: '{ITEM.NAME1}' }))).not.toHaveProperty('triggerDescription');
    expect(alertOf(zabbixBody('problem', { trigger_description: '{TRIGGER.DESCRIPTION}' }))).not.toHaveProperty('triggerDescription');
    const old = alertOf(zabbixBody('problem'));
    expect(old).not.toHaveProperty('triggerDescription');
    expect(old).not.toHaveProperty('itemName');
  });

  it('a long description or item name is truncated with its marker', () => {
    const a = alertOf(zabbixBody('problem', { trigger_description: 'd'.repeat(60_000), item_name: `Log ${'n'.repeat(400)}` }));
    expect(a.triggerDescription).toMatch(/^d+… \[truncated 58,\d{3} characters\]$/);
    expect(a.triggerDescription!.length).toBeLessThanOrEqual(1_900);
    expect(a.itemName).toMatch(/^Log n+… \[truncated \d+ characters\]$/);
    expect(a.itemName!.length).toBeLessThanOrEqual(255);
  });
});

describe('normalise: bounded fields', () => {
  it('truncates long text with a visible marker and leaves the identity fields as Zabbix sent them', () => {
    const a = alertOf(zabbixBody('problem', { item_value: 'x'.repeat(60_000), event_opdata: 'y'.repeat(60_000), trigger_name: `Log: ${'z'.repeat(1000)}` }));
    expect(a.itemValue).toMatch(/^x+… \[truncated 58,\d{3} characters\]$/);
    expect(a.itemValue!.length).toBeLessThanOrEqual(1_900);
    expect(a.opdata!.length).toBeLessThanOrEqual(1_900);
    expect(a.triggerName.length).toBeLessThanOrEqual(255);
    expect(a.triggerName).toMatch(/^Log: z+… \[truncated/);
    expect(a).toMatchObject({ host: 'bridge-test-01', triggerId: '23133', itemKey: 'system.cpu.util' });
  });

  it('a body within every limit comes out as before', () => {
    expect(alertOf(zabbixBody('problem')).itemValue).toBe('97 %');
  });
});

describe('kindOf', () => {
  it.each([
    ['problem', { event_value: '1', event_update_status: '0' }],
    ['update', { event_value: '1', event_update_status: '1' }],
    ['update', { event_value: '0', event_update_status: '1' }],
    ['recovery', { event_value: '0', event_update_status: '0' }],
    ['problem', { event_value: '1', event_update_status: '{EVENT.UPDATE.STATUS}' }],
  ] as const)('%s from %j', (kind, e) => {
    expect(kindOf(e)).toBe(kind);
  });
});

describe('present / zabbixTime', () => {
  it.each([
    ['{EVENT.RECOVERY.ID}', undefined],
    ['{USER.FULLNAME}', undefined],
    ['  ', undefined],
    ['{not a macro}', '{not a macro}'],
    ['42', '42'],
  ])('%j → %j', (v, expected) => expect(present(v)).toBe(expected));

  it('applies the server UTC offset', () => {
    expect(zabbixTime('2026.11.23', '08:00:00', 120)).toBe('2026-11-23T06:00:00.000Z');
    expect(zabbixTime('2026-11-23', '08:00:00')).toBeUndefined();
  });
});

describe('deliveryKey', () => {
  it('is the same for a redelivery, differs by kind and by update', () => {
    const p = alertOf(zabbixBody('problem'));
    const r = alertOf(zabbixBody('recovery'));
    const u1 = alertOf(zabbixBody('update-acknowledged'));
    const u2 = alertOf(zabbixBody('update-acknowledged', { event_update_time: '06:20:00', event_update_message: 'second' }));
    expect(deliveryKey(p, nodeDigests)).toBe(deliveryKey(alertOf(zabbixBody('problem')), nodeDigests));
    expect(new Set([deliveryKey(p, nodeDigests), deliveryKey(r, nodeDigests), deliveryKey(u1, nodeDigests), deliveryKey(u2, nodeDigests)]).size).toBe(4);
    expect(deliveryKey({ ...p, source: 'poller' }, nodeDigests)).toBe(deliveryKey(p, nodeDigests));
  });
});
