import { afterEach, describe, expect, it } from '@jest/globals';
import { FakeGlpi } from '../../src/glpi-fake/server.js';
import { Daemon, waitFor } from '../helpers/daemon.js';
import { FakeZabbix } from '../helpers/fake-zabbix.js';

let glpi: FakeGlpi | undefined;
let zabbix: FakeZabbix | undefined;
let daemon: Daemon | undefined;

afterEach(async () => {
  await daemon?.stop();
  await glpi?.close();
  await zabbix?.close();
});

/** Resolves once the daemon has completed at least one more sweep than when called (sweeps never overlap). */
async function nextSweep(z: FakeZabbix): Promise<void> {
  const seen = z.sweeps();
  await waitFor(() => z.sweeps() >= seen + 2, 'two more sweeps');
}

describe('poller in the daemon', () => {
  it('first start tickets nothing already open in Zabbix, only what starts later; an event Zabbix stops returning keeps its ticket open', async () => {
    glpi = new FakeGlpi({ userTokens: ['user-token'] });
    await glpi.listen();
    zabbix = new FakeZabbix();
    const url = await zabbix.listen();
    zabbix.problems.set('50', { trigger: '100' });
    zabbix.problems.set('51', { trigger: '101' });
    const extra = ['zabbix:', `  url: ${url}`, '  api_token: zbx-token', '  auth: body', '  poll:', "    schedule: '*/1 * * * * *'"].join('\n');
    daemon = new Daemon({ glpiUrl: glpi.url, extra });
    await daemon.start();

    await waitFor(() => daemon!.logs.some((l) => /^first sweep of this poll scope/.test(l.msg)), 'the baseline');
    expect(daemon.logs.find((l) => /^first sweep of this poll scope/.test(l.msg))).toMatchObject({ baseline: 'skip', baselined: 2 });
    expect(zabbix.calls.find((c) => c.method === 'problem.get')?.params).toMatchObject({ suppressed: false });

    // A problem that starts after the first sweep becomes a ticket (and is written back).
    zabbix.problems.set('52', { trigger: '102' });
    await waitFor(() => glpi!.tickets.size === 1 && zabbix!.acknowledged().includes('52'), 'a ticket for problem 52 and its write-back');

    // The API user loses sight of host-102: problem.get and event.get no longer return event 52.
    zabbix.problems.delete('52');
    await waitFor(() => daemon!.logs.some((l) => l.event_id === '52' && /not returned by the Zabbix API/.test(l.msg)), 'event 52 reported unknown');
    await nextSweep(zabbix);
    expect(daemon.logs.filter((l) => l.msg === 'alert caught up by the poller' && l.kind === 'recovery')).toEqual([]);
    expect(daemon.logs.filter((l) => l.event_id === '52' && /not returned by the Zabbix API/.test(l.msg))).toHaveLength(1);
    const ticket = [...glpi.tickets.values()][0]!;
    expect(ticket.status).not.toBe(5);
    expect(glpi.solutions).toEqual([]);
    const metrics = await (await daemon.get('/metrics')).text();
    expect(metrics).toMatch(/^zgb_zabbix_unknown_events_total 1$/m);

    // Restart: the baseline is on disk, so 50 and 51 are still not ticketed; the recovery Zabbix then reports solves 52.
    expect(await daemon.stop()).toBe(0);
    zabbix.events.set('52', { eventid: '52', value: '1', r_eventid: '60' });
    daemon = new Daemon({ glpiUrl: glpi.url, extra, dataDir: daemon.dataDir });
    await daemon.start();
    await waitFor(() => glpi!.tickets.get(ticket.id)!.status === 5, 'ticket of 52 solved once Zabbix reports its recovery');
    await nextSweep(zabbix);
    expect(daemon.logs.some((l) => /^first sweep of this poll scope/.test(l.msg))).toBe(false);
    expect(glpi.tickets.size).toBe(1);
    expect(zabbix.acknowledged().filter((id) => id === '50' || id === '51')).toEqual([]);
  });
});
