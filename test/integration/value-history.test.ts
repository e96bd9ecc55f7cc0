import { afterEach, describe, expect, it } from '@jest/globals';
import { FakeGlpi } from '../../src/glpi-fake/server.js';
import { currentTestFailed, Daemon, waitFor } from '../helpers/daemon.js';
import { FakeZabbix } from '../helpers/fake-zabbix.js';

// Issue 14 item 7, value history: with zabbix.value_history on, a new ticket's body ends with the item's last
// values from the Zabbix API (item.get, then history.get of the item's value type); when the API fails or does not
// answer in time, the ticket is made all the same, without them. Through the built daemon and the fake Zabbix API.

let glpi: FakeGlpi | undefined;
let zabbix: FakeZabbix | undefined;
let daemon: Daemon | undefined;

afterEach(async () => {
  await daemon?.stop();
  await glpi?.close();
  if (zabbix && currentTestFailed() !== false) process.stderr.write(`\n===== fake Zabbix calls =====\n${zabbix.calls.map((c) => JSON.stringify(c)).join('\n')}\n`);
  await zabbix?.close();
  glpi = zabbix = daemon = undefined;
});

/**
 * The daemon polling the fake every second with value_history as given, the fake arranged by `arrange`; problem 52
 * on db-01 (item 44674) raised after the first sweep. Answers the ticket's body.
 */
async function ticketFor52(valueHistory: string[], arrange: (z: FakeZabbix) => void = () => undefined): Promise<string> {
  glpi = new FakeGlpi({ userTokens: ['user-token'] });
  await glpi.listen();
  zabbix = new FakeZabbix();
  const url = await zabbix.listen();
  // As recorded on the real 6.0.14 (test/fixtures/zabbix/api/6.0.json): a float item in %, its last three values.
  zabbix.items.set('44674', { value_type: '0', units: '%', history: [{ clock: 1796167781, value: '97' }, { clock: 1796167793, value: '10' }, { clock: 1796167796, value: '98' }] });
  arrange(zabbix);
  const extra = ['zabbix:', `  url: ${url}`, '  api_token: zbx-token', '  auth: body', '  poll:', "    schedule: '*/1 * * * * *'", '  value_history:', ...valueHistory.map((l) => `    ${l}`)].join('\n');
  daemon = new Daemon({ glpiUrl: glpi.url, extra });
  await daemon.start();
  await waitFor(() => daemon!.logs.some((l) => /^first sweep of this poll scope/.test(l.msg)), 'the baseline');
  zabbix.problems.set('52', { trigger: '102', host: 'db-01', item: { itemid: '44674', key_: 'system.cpu.util' } });
  await waitFor(() => glpi!.tickets.size === 1, 'a ticket for problem 52');
  return [...glpi.tickets.values()][0]!.content;
}

async function counter(result: string): Promise<number> {
  const text = await (await daemon!.get('/metrics')).text();
  const m = new RegExp(`^zgb_zabbix_value_history_total\\{result="${result}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

describe('value history in new tickets', () => {
  it('enabled: the body ends with the item\'s last values, newest first, with its units', async () => {
    const content = await ticketFor52(['enabled: true', 'count: 2']);
    expect(content).toContain('Last values:');
    expect(content).toMatch(/2026-12-01 23:29:56 UTC: 98 %.*2026-12-01 23:29:53 UTC: 10 %/s);
    expect(content).not.toContain(': 97 %');
    const history = zabbix!.calls.filter((c) => c.method === 'history.get');
    expect(history).toHaveLength(1);
    expect(history[0]!.params).toMatchObject({ history: 0, itemids: ['44674'], sortfield: 'clock', sortorder: 'DESC', limit: 2 });
    expect(await counter('added')).toBe(1);
  });

  it('off (the default): no history asked, none in the body', async () => {
    const content = await ticketFor52(['enabled: false']);
    expect(content).not.toContain('Last values:');
    expect(zabbix!.count('history.get') + zabbix!.count('item.get')).toBe(0);
  });

  it('the Zabbix API failing: the ticket is made without history; counted and logged', async () => {
    const body = await ticketFor52(['enabled: true'], (z) => (z.historyFails = true));
    expect(body).not.toContain('Last values:');
    expect(body).toContain('db-01');
    expect(zabbix!.count('history.get')).toBe(1);
    expect(await counter('failed')).toBe(1);
    expect(daemon!.logs.filter((l) => /value history not fetched/.test(l.msg))).toHaveLength(1);
  });

  it('the Zabbix API not answering within value_history.timeout: the ticket is made without history', async () => {
    // history.get answers long after the create's wait (the daemon's own Zabbix timeout stays the default 10 s).
    const body = await ticketFor52(['enabled: true', 'timeout: 300ms'], (z) => (z.historyDelayMs = 8_000));
    expect(body).not.toContain('Last values:');
    expect(await counter('failed')).toBe(1);
    expect(daemon!.logs.find((l) => /value history not fetched/.test(l.msg))).toMatchObject({ err: 'no answer within 300 ms' });
  });
});
