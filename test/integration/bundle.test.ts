import { afterEach, describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { FakeGlpi } from '../../src/glpi-fake/server.js';
import { Daemon, MAIN, waitFor } from '../helpers/daemon.js';
import { ROOT, zabbixBody } from '../helpers/fixtures.js';

/**
 * The daemon ships as a bundle, dist/bridge (scripts/bundle.mjs, issue 16: about 4 MB less heap per thread than
 * loading dist/src's files). Every integration test runs it (test/helpers/daemon.ts MAIN); these check that it is
 * what users start, and that bundling kept what the file layout gave: the processing thread still loads axios
 * without Node's fetch implementation (adapters/axios/fetch-globals.ts relies on module evaluation order, which a
 * bundler could change; test/integration/module-loading.test.ts checks dist/src's files).
 */
let glpi: FakeGlpi | undefined;
let daemon: Daemon | undefined;

afterEach(async () => {
  await daemon?.stop();
  await glpi?.close();
  daemon = undefined;
  glpi = undefined;
});

describe('the daemon as it ships (dist/bridge)', () => {
  it('is what the package, the systemd unit, the operator\'s command and npm start run', () => {
    const bundle = relative(ROOT, MAIN);
    expect(bundle).toBe(join('dist', 'bridge', 'main.js'));
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string>; scripts: Record<string, string> };
    expect(pkg.bin['zabbix-glpi-bridge']).toBe('dist/bridge/main.js');
    expect(pkg.scripts['start']).toContain(' dist/bridge/main.js run ');
    const unit = readFileSync(join(ROOT, 'systemd', 'zabbix-glpi-bridge.service'), 'utf8');
    expect(unit).toMatch(/^ExecStart=\S+ .*\/opt\/zabbix-glpi-bridge\/dist\/bridge\/main\.js run /m);
    expect(readFileSync(join(ROOT, 'systemd', 'zabbix-glpi-bridge.sh'), 'utf8')).toContain('/dist/bridge/main.js"');
    // One file per thread's entry, beside the chunks they share: the processing thread's is found from there.
    for (const entry of ['main.js', 'processing-worker.js']) expect(readFileSync(join(ROOT, 'dist', 'bridge', entry), 'utf8').length).toBeGreaterThan(0);
  });

  it("carries zod's English messages but not its other locales (zod imported as a namespace, `import * as z`)", () => {
    // `import { z } from 'zod'` takes a namespace object the bundler cannot see into: every zod module comes with
    // it, its 64 locales too (about 360 KB of each thread's code). German stands for the others here.
    const bundle = readdirSync(join(ROOT, 'dist', 'bridge')).filter((f) => f.endsWith('.js')).map((f) => readFileSync(join(ROOT, 'dist', 'bridge', f), 'utf8')).join('\n');
    expect(bundle).toContain('Invalid input: expected');
    expect(bundle).not.toContain('Eingabe: erwartet');
  });

  it("neither thread loads Node's fetch implementation, even after GLPI calls through axios", async () => {
    glpi = new FakeGlpi({ userTokens: ['user-token'] });
    await glpi.listen();
    daemon = new Daemon({ glpiUrl: glpi.url, env: { NODE_OPTIONS: `--require ${join(ROOT, 'test', 'fixtures', 'threads', 'report-undici.cjs')}` } });
    await daemon.start();
    const reports = (thread: string) =>
      daemon!.stderr.map((l) => /^undici-report (\w+) \d+ (true|false)$/.exec(l)).filter((m) => m !== null && m[1] === thread).map((m) => m![2]);
    const res = await daemon.post(zabbixBody('problem'));
    expect(res.status).toBe(202);
    await waitFor(() => glpi!.tickets.size === 1, 'the ticket');
    // Reports written after the GLPI calls: the check sees both threads (a check that sees nothing proves nothing).
    const seen = { main: reports('main').length, worker: reports('worker').length };
    await waitFor(() => reports('main').length > seen.main + 1 && reports('worker').length > seen.worker + 1, 'each thread reporting after the ticket');
    expect(new Set(reports('main'))).toEqual(new Set(['false']));
    expect(new Set(reports('worker'))).toEqual(new Set(['false']));
  });
});
