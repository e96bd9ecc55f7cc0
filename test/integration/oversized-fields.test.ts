import { afterEach, describe, expect, it } from '@jest/globals';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { decodeHtml, type FakeGlpi } from '../../src/glpi-fake/server.js';
import { Daemon, startWithGlpi, waitFor } from '../helpers/daemon.js';
import { FakeZabbix } from '../helpers/fake-zabbix.js';
import { zabbixBody } from '../helpers/fixtures.js';

/**
 * Issue 11, item 3: 3,000 alerts with 60,000-character host names took the
 * daemon from 106 to 932 MB, the state file to 1.1 GB and the log up 344 MiB.
 * Every field now has a maximum: what Zabbix bounds is refused, long text
 * is truncated with a marker, and neither reaches the store or the log at
 * its full length.
 */

const HUGE = 60_000;
const MARKER = /… \[truncated [\d,]+ characters\]/;
const MB = 1024 * 1024;

let glpi: FakeGlpi | undefined;
let daemon: Daemon | undefined;
let zabbix: FakeZabbix | undefined;

afterEach(async () => {
  await daemon?.stop();
  await glpi?.close();
  await zabbix?.close();
  daemon = undefined;
  glpi = undefined;
  zabbix = undefined;
});

/** Bytes of the store's files (state, inbox, their WALs; after a stop, the WALs are checkpointed into the files and gone). */
function storeBytes(d: Daemon): number {
  return readdirSync(d.dataDir)
    .filter((f) => f.includes('.db'))
    .reduce((n, f) => n + statSync(join(d.dataDir, f)).size, 0);
}

function longestLogLine(d: Daemon): number {
  return Math.max(0, ...d.output.map((l) => l.length));
}

describe('oversized fields', () => {
  it('300 alerts with 60,000-character host names are refused naming the field; nothing is stored, the log stays small', async () => {
    ({ glpi, daemon } = await startWithGlpi());
    const before = storeBytes(daemon);
    for (let i = 0; i < 300; i++) {
      const res = await daemon.post(zabbixBody('problem', { event_id: String(1000 + i), host_host: `${i}-${'h'.repeat(HUGE)}` }));
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({ error: expect.objectContaining({ code: 'BRIDGE_INVALID_FIELD', field: 'host_host', message: 'host_host is longer than 128 characters' }) });
    }
    // A host name at Zabbix's maximum still goes through.
    const atMax = await daemon.post(zabbixBody('problem', { event_id: '5000', host_host: 'h'.repeat(128) }));
    expect(atMax.status).toBe(202);
    await waitFor(() => glpi!.tickets.size === 1, 'the one ticket');
    expect(daemon.decisions()).toHaveLength(1);
    // 300 × 60 KB refused: the store grew by one alert, not by 18 MB; no log line carries a host name.
    expect(longestLogLine(daemon)).toBeLessThan(4096);
    expect(daemon.output.join('\n').length).toBeLessThan(1 * MB);
    expect(await daemon.stop()).toBe(0);
    expect(storeBytes(daemon) - before).toBeLessThan(1 * MB);
  });

  it('300 alerts with 60,000-character values and operational data are accepted, truncated with a marker in the tickets; the store stays small', async () => {
    ({ glpi, daemon } = await startWithGlpi());
    for (let i = 0; i < 300; i++) {
      // 30 incidents of 10 problems each: 30 tickets and their follow-ups.
      const res = await daemon.post(
        zabbixBody('problem', {
          event_id: String(2000 + i),
          host_host: `web-${i % 30}`,
          item_value: `${i} ${'v'.repeat(HUGE)}`,
          event_opdata: 'o'.repeat(HUGE),
          trigger_name: `Log line: ${'t'.repeat(HUGE)}`,
        }),
      );
      expect(res.status).toBe(202);
    }
    await waitFor(() => daemon!.decisions().length === 300, 'every alert decided', 30_000);
    await waitFor(() => glpi!.tickets.size === 30 && glpi!.followups.length >= 30, 'the tickets and follow-ups', 30_000);
    for (const t of glpi.tickets.values()) {
      const body = decodeHtml(t.content);
      expect(body).toMatch(new RegExp(`v+${MARKER.source}`));
      expect(body).toMatch(new RegExp(`o+${MARKER.source}`));
      expect(t.name.length).toBeLessThanOrEqual(255);
    }
    expect(glpi.followups.some((f) => MARKER.test(decodeHtml(f.content)))).toBe(true);
    expect(longestLogLine(daemon)).toBeLessThan(4096);
    // Unbounded, the inbox alone would hold 300 × 180 KB = 54 MB (and each job its share again).
    expect(await daemon.stop()).toBe(0);
    const bytes = storeBytes(daemon);
    process.stderr.write(`oversized fields: 300 alerts of 3 × 60,000 characters, store ${(bytes / MB).toFixed(2)} MB after a stop\n`);
    expect(bytes).toBeLessThan(4 * MB);
  });

  it('the poller bounds alerts from the Zabbix API the same way: a long expanded trigger name is truncated, a host name longer than Zabbix allows skips the problem', async () => {
    zabbix = new FakeZabbix();
    const url = await zabbix.listen();
    ({ glpi, daemon } = await startWithGlpi({ extra: ['zabbix:', `  url: ${url}`, '  api_token: zbx-token', '  auth: body', '  poll:', "    schedule: '*/1 * * * * *'"].join('\n') }));
    await waitFor(() => daemon!.logs.some((l) => /^first sweep of this poll scope/.test(l.msg)), 'the baseline');
    zabbix.problems.set('70', { trigger: '70', host: 'db-01', description: `Log line: ${'d'.repeat(HUGE)}`, opdata: 'p'.repeat(HUGE) });
    zabbix.problems.set('71', { trigger: '71', host: 'x'.repeat(HUGE), description: 'CPU' });
    await waitFor(() => glpi!.tickets.size === 1, 'a ticket for problem 70');
    await waitFor(() => daemon!.logs.some((l) => l.msg === 'polled alert skipped: a field is longer than Zabbix allows'), 'problem 71 skipped');
    expect(daemon.logs.find((l) => l.msg === 'polled alert skipped: a field is longer than Zabbix allows')).toMatchObject({ event_id: '71', field: 'host' });
    const ticket = [...glpi.tickets.values()][0]!;
    expect(ticket.name).toContain('Log line: ddd');
    expect(ticket.name.length).toBeLessThanOrEqual(255);
    expect(decodeHtml(ticket.content)).toMatch(new RegExp(`p+${MARKER.source}`));
    expect(daemon.decisions()).toHaveLength(1);
    expect(longestLogLine(daemon)).toBeLessThan(4096);
  });
});
