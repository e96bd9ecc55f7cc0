import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { buildApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import { FakeGlpi } from '../../src/glpi-fake/server.js';
import { createLogger } from '../../src/observability/logger.js';
import { waitFor } from '../helpers/daemon.js';
import { ROOT, zabbixBody } from '../helpers/fixtures.js';

// The whole app built in this process (processing side included, no worker thread) from one configuration:
// what composition/ builds for the daemon, testable without spawning it.

const TOKEN = 'in-process-token-0123456789';
let app: App | undefined;
let glpi: FakeGlpi | undefined;

afterEach(async () => {
  await app?.stop();
  await glpi?.close();
  app = undefined;
});

function captured(): { stream: Writable; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { stream, lines };
}

describe('the app built in-process', () => {
  it('a problem becomes a ticket, its recovery solves it, a reload applies new rules; stop drains and exits 0', async () => {
    glpi = new FakeGlpi({ userTokens: ['user-token'] });
    await glpi.listen();
    const dir = mkdtempSync(join(tmpdir(), 'zgb-inproc-'));
    const file = join(dir, 'bridge.yaml');
    const yaml = (rules: string) =>
      [
        'listen: 127.0.0.1:0',
        `data_dir: ${dir}`,
        'webhook:',
        `  token: ${TOKEN}`,
        'glpi:',
        `  url: ${glpi!.url}`,
        '  user_token: user-token',
        'correlation:',
        '  coalesce_window: 0',
        rules,
      ].join('\n');
    writeFileSync(file, yaml(`rules_file: ${join(ROOT, 'config', 'rules.example.yaml')}`));
    const log = captured();
    app = buildApp(loadConfig(file, {}), { logger: createLogger('debug', log.stream), logDestination: log.stream, processing: 'in-process', loadConfig: () => loadConfig(file, {}) });
    const address = await app.start();
    const post = (body: unknown) => fetch(`${address}/zabbix/webhook`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` }, body: JSON.stringify(body) });

    expect((await post(zabbixBody('problem'))).status).toBe(202);
    await waitFor(() => glpi!.tickets.size === 1, 'the ticket');
    expect(glpi.tickets.get(1)!.itilcategories_id).toBe(11);
    expect((await post(zabbixBody('recovery'))).status).toBe(202);
    await waitFor(() => glpi!.tickets.get(1)!.status === 5 || glpi!.tickets.get(1)!.status === 6, 'the ticket solved');

    const ready = await fetch(`${address}/readyz`);
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as { checks: { glpi: { detail: string } } }).checks.glpi.detail).toBe('session open');
    expect(await (await fetch(`${address}/metrics`)).text()).toMatch(/^zgb_tickets_total\{operation="opened"\} 1$/m);

    writeFileSync(file, yaml('rules:\n  defaults: { itilcategories_id: 77 }'));
    expect(app.reloadFromFile()).toMatchObject({ ok: true });
    expect(log.lines.some((l) => l.msg === 'configuration reloaded')).toBe(true);
    expect((await post({ ...zabbixBody('problem'), event_id: '70', trigger_id: '71' })).status).toBe(202);
    await waitFor(() => glpi!.tickets.size === 2, 'the second ticket');
    expect(glpi.tickets.get(2)!.itilcategories_id).toBe(77);
    expect(await app.stop()).toBe(0);
    expect(log.lines.some((l) => l.msg === 'bridge stopped' && l.exit_code === 0)).toBe(true);
    // Every component logged through the one logger (the processing side included).
    expect(new Set(log.lines.map((l) => l.component).filter(Boolean))).toEqual(expect.objectContaining(new Set(['processor', 'dispatcher', 'glpi', 'intake', 'http'])));
  });
});
