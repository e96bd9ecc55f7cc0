import { describe, expect, it } from '@jest/globals';
import { parseWebhookBody } from '../../src/adapters/zabbix/webhook-body.js';
import { normalise } from '../../src/core/normalise.js';
import { zabbixBody } from '../helpers/fixtures.js';

describe('webhook body validation names the offending field', () => {
  const base = zabbixBody('problem');
  const { event_id: _id, ...noEventId } = base;
  const { host_host: _h, ...noHost } = base;
  it.each([
    ['missing event_id', noEventId, 'event_id', /event_id is required/],
    ['numeric event_id', { ...base, event_id: 12 }, 'event_id', /must be a string/],
    ['event_id not a number', { ...base, event_id: 'abc' }, 'event_id', /number in a string/],
    ['bad event_value', { ...base, event_value: '2' }, 'event_value', /"1" \(problem\) or "0"/],
    ['unknown severity', { ...base, event_nseverity: '9' }, 'event_nseverity', /severity number/],
    ['broken event_tags JSON', { ...base, event_tags: '[{"tag":' }, 'event_tags', /not valid JSON/],
    ['event_tags of the wrong shape', { ...base, event_tags: '{"tag":"x"}' }, 'event_tags', /JSON array/],
    ['missing host', noHost, 'host_host', /is required/],
    ['host still a macro', { ...base, host_host: '{HOST.HOST}' }, 'host_host', /must name the host/],
    ['no trigger name at all', { ...base, trigger_name: '{TRIGGER.NAME}', event_name: '' }, 'trigger_name', /is required/],
    ['oversized value', { ...base, item_value: 'x'.repeat(70_000) }, 'item_value', /longer than/],
    ['host name longer than Zabbix allows', { ...base, host_host: 'h'.repeat(129) }, 'host_host', /^host_host is longer than 128 characters$/],
    ['visible name longer than Zabbix allows', { ...base, host_name: 'n'.repeat(129) }, 'host_name', /^host_name is longer than 128 characters$/],
    ['item key longer than Zabbix allows', { ...base, item_key: 'k'.repeat(2049) }, 'item_key', /longer than 2,048 characters/],
    ['event id of 21 digits', { ...base, event_id: '1'.repeat(21) }, 'event_id', /^event_id is longer than 20 digits$/],
    ['trigger id not a number', { ...base, trigger_id: '12a' }, 'trigger_id', /number in a string/],
    ['trigger description not a string', { ...base, trigger_description: ['Check the CPU'] }, 'trigger_description', /must be a string/],
    ['trigger description past any media type parameter', { ...base, trigger_description: 'd'.repeat(70_000) }, 'trigger_description', /longer than 65535/],
    ['item name not a string', { ...base, item_name: 5 }, 'item_name', /must be a string/],
    ['tag value longer than Zabbix allows', { ...base, event_tags: JSON.stringify([{ tag: 'component', value: 'v'.repeat(256) }]) }, 'event_tags[0].value', /longer than 255 characters/],
  ])('%s', (_name, body, field, message) => {
    const r = parseWebhookBody(body);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.field).toBe(field);
      expect(r.message).toMatch(message);
    }
  });

  it.each([[null], [[]], ['text'], [42]])('rejects a body that is not an object: %j', (body) => {
    const r = parseWebhookBody(body);
    expect(r).toEqual({ ok: false, field: '(body)', message: 'body must be a JSON object of media type parameters' });
  });

  it('accepts extra parameters and unexpanded macros in optional ones', () => {
    const r = parseWebhookBody({ ...base, custom_param: 'x', event_recovery_id: '{EVENT.RECOVERY.ID}', event_tags: '{EVENT.TAGSJSON}' });
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.event.tags).toEqual([]);
  });
});

describe('bodies a real Zabbix 7.0.22 sent (test/fixtures/zabbix/7.0/, recorded from the end-to-end scenario)', () => {
  it.each([
    ['problem', 'problem'],
    ['update-acknowledged', 'update'],
    ['recovery', 'recovery'],
  ] as const)('%s: accepted, and what Zabbix could not resolve ("*UNKNOWN*") is absent', (name, kind) => {
    const body = zabbixBody(`7.0/${name}`);
    // What the recording shows: a host without interfaces, an event that is no symptom.
    expect([body.host_ip, body.event_cause_id]).toEqual(['*UNKNOWN*', '*UNKNOWN*']);
    const r = parseWebhookBody(body);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const alert = normalise(r.event);
    expect(alert.kind).toBe(kind);
    expect(alert.hostIp).toBeUndefined();
    expect(alert.causeEventId).toBeUndefined();
    expect(alert.host).toBe(body.host_host);
    if (kind === 'update') expect(alert.update).toMatchObject({ message: 'Looking into it', acknowledged: true, user: 'Zabbix Administrator (Admin)' });
    if (kind === 'recovery') expect(alert.recoveryEventId).toMatch(/^\d+$/);
  });
});
