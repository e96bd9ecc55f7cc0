import { describe, expect, it } from '@jest/globals';
import { parseWebhookBody } from '../../src/adapters/zabbix/webhook-body.js';
import { normalise } from '../../src/core/normalise.js';
import { zabbixBody } from '../helpers/fixtures.js';

/** event_cause_id ({EVENT.CAUSE.ID}, Zabbix 6.4+): a symptom's cause; 6.0 leaves the macro unexpanded. */
describe('the cause event id in the webhook body', () => {
  const causeOf = (v: string) => {
    const r = parseWebhookBody(zabbixBody('problem', { event_cause_id: v }));
    if (!r.ok) throw new Error(r.message);
    return normalise(r.event).causeEventId;
  };

  it('a symptom carries its cause; a cause ("0" or empty) and an unexpanded macro carry none', () => {
    expect(causeOf('701')).toBe('701');
    expect(causeOf('0')).toBeUndefined();
    expect(causeOf('')).toBeUndefined();
    expect(causeOf('{EVENT.CAUSE.ID}')).toBeUndefined();
  });

  it('Zabbix 7.0 resolves it to "*UNKNOWN*" for an event that is no symptom (seen on a real 7.0.22): accepted, no cause', () => {
    expect(causeOf('*UNKNOWN*')).toBeUndefined();
  });

  it('anything else is refused, naming the parameter', () => {
    const r = parseWebhookBody(zabbixBody('problem', { event_cause_id: 'abc' }));
    expect(r).toMatchObject({ ok: false, field: 'event_cause_id' });
  });
});
