import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseWebhookBody } from '../../src/adapters/zabbix/webhook-body.js';
import { explainAlert } from '../../src/composition/explain.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import type { Alert } from '../../src/core/alert.js';
import { normalise } from '../../src/core/normalise.js';
import { ROOT } from '../helpers/fixtures.js';

// What `explain` (and the status page's Try a rule: the same builder) tells an operator tuning
// zabbix.poll.on_maintenance / on_disabled and zabbix.value_history: what the ticket would get, whether it is solved.

const ENV = { GLPI_URL: 'https://glpi.example.org/apirest.php', GLPI_USER_TOKEN: 'u-token', ZABBIX_URL: 'https://zabbix.example.org/api_jsonrpc.php', ZABBIX_API_TOKEN: 'z-token' };

function config(over: { zabbixUrl?: boolean; poll?: Partial<Config['zabbix']['poll']>; valueHistory?: Partial<Config['zabbix']['value_history']> } = {}): Config {
  const c = loadConfig(join(ROOT, 'config', 'bridge.example.yaml'), { ...ENV, BRIDGE_DATA_DIR: mkdtempSync(join(tmpdir(), 'zgb-explain-')), ...(over.zabbixUrl === false ? { ZABBIX_URL: '' } : {}) });
  return { ...c, zabbix: { ...c.zabbix, poll: { ...c.zabbix.poll, ...over.poll }, value_history: { ...c.zabbix.value_history, ...over.valueHistory } } };
}

function alert(overrides: Record<string, string> = {}): Alert {
  const body = { ...(JSON.parse(readFileSync(join(ROOT, 'test', 'fixtures', 'zabbix', 'problem.json'), 'utf8')) as Record<string, string>), ...overrides };
  const parsed = parseWebhookBody(body);
  if (!parsed.ok) throw new Error(parsed.message);
  return normalise(parsed.event, 'webhook', 0);
}

interface Explained {
  readonly jobs: string[];
  readonly poller_notes: Record<string, string> | string;
  readonly value_history: string;
}

const explain = (c: Config, a: Alert = alert()): Explained => explainAlert(c, a, Date.now()).out as unknown as Explained;

describe('explain: maintenance and disabled notes (zabbix.poll.on_maintenance / on_disabled)', () => {
  it('note (default): one follow-up on entering a maintenance, one on leaving it, one per thing disabled; the ticket stays open', () => {
    const notes = explain(config()).poller_notes as Record<string, string>;
    expect(notes.maintenance).toMatch(/^host bridge-test-01 enters a maintenance while the ticket is open: one follow-up \("Host bridge-test-01 entered maintenance <name>/);
    expect(notes.maintenance).toContain('"Host bridge-test-01 left maintenance <name>; the problem is still open in Zabbix."');
    expect(notes.maintenance).toContain('the ticket stays open');
    expect(notes.maintenance).toMatch(/\(zabbix\.poll\.on_maintenance: note\)$/);
    expect(notes.disabled).toMatch(/^its trigger, host bridge-test-01 or item system\.cpu\.util disabled in Zabbix while the ticket is open/);
    expect(notes.disabled).toContain('the ticket stays open (zabbix.poll.on_disabled: note)');
    expect(notes.schedule).toContain('zabbix.poll.schedule (*/1 * * * *)');
  });

  it('solve: the ticket is solved, and the solution says why', () => {
    const notes = explain(config({ poll: { on_maintenance: 'solve', on_disabled: 'solve' } })).poller_notes as Record<string, string>;
    expect(notes.maintenance).toMatch(/the ticket is solved with a solution saying so .*"Ticket solved by the bridge: zabbix\.poll\.on_maintenance is solve\."/);
    expect(notes.maintenance).not.toContain('left maintenance');
    expect(notes.disabled).toMatch(/the ticket is solved .*"Ticket solved by the bridge: zabbix\.poll\.on_disabled is solve\."/);
  });

  it('no poller (no zabbix.url, or zabbix.poll.enabled false): nothing is added, and explain says why', () => {
    expect(explain(config({ zabbixUrl: false })).poller_notes).toBe('none: the poller is off (no zabbix.url), and Zabbix sends no webhook when a host enters a maintenance or a trigger is disabled');
    expect(explain(config({ poll: { enabled: false } })).poller_notes).toMatch(/^none: the poller is off \(zabbix\.poll\.enabled: false\)/);
  });

  it('an alert that opens no ticket gets no note and no history', () => {
    const out = explain(config({ valueHistory: { enabled: true } }), alert({ event_nseverity: '0', event_severity: 'Not classified', item_value: '1 %' }));
    expect(out.jobs).not.toContain('create_ticket');
    expect(out.poller_notes).toBe('none: this alert opens no ticket');
    expect(out.value_history).toBe('none: this alert opens no ticket');
  });
});

describe('explain: value history (zabbix.value_history)', () => {
  it('off by default: said so', () => {
    expect(explain(config()).value_history).toBe('off (zabbix.value_history.enabled: false): no value history in the ticket body');
  });

  it('on: which item, how many values, and how long the create waits for them', () => {
    const out = explain(config({ valueHistory: { enabled: true, count: 5, timeout: 3000 } }));
    expect(out.value_history).toMatch(/^the last 5 values of item \d+ \(system\.cpu\.util\), newest first, read from the Zabbix API when the create runs and added to the ticket body; waited for at most 3s, then the ticket is created without them$/);
  });

  it('on, but the alert names no item: none', () => {
    expect(explain(config({ valueHistory: { enabled: true } }), alert({ item_id: '' })).value_history).toBe('none: the alert names no item (item_id), so the ticket body carries no value history');
  });
});
