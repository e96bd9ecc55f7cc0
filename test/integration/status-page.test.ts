import { afterEach, describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { FakeGlpi } from '../../src/glpi-fake/server.js';
import { CONFIG_ENV, Daemon, runCli, waitFor } from '../helpers/daemon.js';
import { exampleRulesYaml, exampleRulesYamlUnknownCpuCategory, ROOT, zabbixBody } from '../helpers/fixtures.js';

/**
 * The status page in a real browser: Debian's chromium (never one playwright downloads) driven by
 * playwright-core, against the built daemon and the GLPI fake. Signs in with the admin token, checks a
 * hostile host name renders as text, filters the decisions, tries a rule (the answer explain gives),
 * retries a dead letter after the rule is fixed and checks the ticket, and saves a screenshot in the
 * artifacts folder (ZGB_ARTIFACTS, default artifacts/ in the repository). Then `status` asks the running
 * daemon, and reads the store once it is stopped.
 */

const ADMIN = 'status-admin-token-0123456789';
const HOSTILE = '<script>alert(1)</script>';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = process.env.ZGB_ARTIFACTS ?? join(ROOT, 'artifacts');

let glpi: FakeGlpi | undefined;
let daemon: Daemon | undefined;
let browser: Browser | undefined;

afterEach(async () => {
  await browser?.close();
  await daemon?.stop();
  await glpi?.close();
  browser = undefined;
  daemon = undefined;
  glpi = undefined;
});

function launch(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`chromium not found at ${CHROMIUM}: install Debian's package (apt-get install --no-install-recommends chromium; .ci/run does) or set CHROMIUM_PATH`);
  }
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}

async function post(body: Record<string, string>): Promise<void> {
  const res = await daemon!.post(body);
  expect(res.status).toBe(202);
}

describe('the status page in chromium', () => {
  it('signs in, filters, tries a rule, retries a dead letter once its rule is fixed; status from the daemon, then from the store', async () => {
    glpi = new FakeGlpi({ userTokens: ['user-token'], categories: [11, 12, 13, 14, 15] });
    await glpi.listen();
    const env = { ...CONFIG_ENV, BRIDGE_ADMIN_TOKEN: ADMIN };
    // Listens on a free port (the helper's 127.0.0.1:0); `status` finds it in the config once it is known, below.
    // The operator's rules name a CPU category GLPI does not have (111 for 11): CPU tickets are refused (400), dead letters.
    daemon = new Daemon({ glpiUrl: glpi.url, extra: 'admin:\n  token: ${BRIDGE_ADMIN_TOKEN}', env: { BRIDGE_ADMIN_TOKEN: ADMIN }, rulesYaml: exampleRulesYamlUnknownCpuCategory() });
    await daemon.start();

    const disk = (id: string, host: string) =>
      zabbixBody('problem', {
        event_id: id, trigger_id: String(7000 + Number(id)), host_host: host, host_name: host, event_name: `Free disk space is low on ${host}`, trigger_name: `Free disk space is low on ${host}`,
        item_key: 'vfs.fs.size[/,pused]', event_tags: JSON.stringify([{ tag: 'component', value: 'storage' }]),
      });
    await post(zabbixBody('problem', { host_host: HOSTILE, host_name: HOSTILE }));
    await post(disk('21', 'db-1'));
    await post(disk('22', 'web-2'));
    await waitFor(() => daemon!.logs.some((l) => l.msg === 'job moved to dead letters') && glpi!.tickets.size === 2, 'one dead letter (the CPU ticket) and two disk tickets', 20_000);
    const dialogs: string[] = [];

    browser = await launch();
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    // Not signed in: the sign-in form, not the page.
    const first = await page.goto(`${daemon.url}/status`);
    expect(first?.status()).toBe(401);
    await page.fill('input[name="token"]', 'wrong-token');
    await page.click('button[type="submit"]');
    await expect(page.textContent('.error')).resolves.toBe('Wrong admin token.');
    await page.fill('input[name="token"]', ADMIN);
    await page.click('button[type="submit"]');
    await page.waitForSelector('#incident-table');
    expect(await page.textContent('#count-open .n')).toBe('3');
    expect(await page.textContent('#count-dead .n')).toBe('1');
    // The hostile host name is text: in the incidents, the decisions, the dead letter; no script ran.
    expect(await page.locator('#decision-table td.host', { hasText: HOSTILE }).count()).toBe(1);
    expect(await page.locator('#incident-table td.fp', { hasText: HOSTILE }).count()).toBe(1);
    expect(await page.locator('#dead-table td.fp', { hasText: HOSTILE }).count()).toBe(1);
    expect(await page.locator('#dead-table td.err').textContent()).toMatch(/GLPI_PERMANENT ERROR_GLPI_ADD/);
    // Ticket links to GLPI's own page.
    const links = await page.locator('#incident-table a').evaluateAll((as) => as.map((a) => a.getAttribute('href') ?? ''));
    expect(links.sort()).toEqual([1, 2].map((id) => `${glpi!.url.replace(/\/apirest\.php$/, '')}/front/ticket.form.php?id=${id}`));
    // The connection state.
    expect(await page.textContent('table.conn')).toMatch(/glpi\s*ok\s*session open/);
    expect(await page.textContent('table.conn')).toMatch(/zabbix_webhook\s*ok\s*last alert accepted \d+ (s|min) ago/);

    // Filter the decisions by host.
    await page.fill('#decision-filter input[name="host"]', 'web-2');
    await page.click('#decision-filter button[type="submit"]');
    await page.waitForURL(/host=web-2/);
    const hosts = await page.locator('#decision-table td.host').allTextContents();
    expect(hosts).toEqual(['web-2']);
    expect(await page.locator('#decision-table td.reason').first().textContent()).not.toBe('');
    await page.selectOption('#decision-filter select[name="action"]', 'follow_up');
    await page.click('#decision-filter button[type="submit"]');
    await expect(page.textContent('#decision-table')).resolves.toBe('No decision matches.');
    await page.goto(`${daemon.url}/status`);

    // Try a rule: the answer explain gives for the same body.
    const tried = zabbixBody('problem', { host_host: 'app-7', host_name: 'app-7' });
    await page.fill('#try-form textarea[name="body"]', JSON.stringify(tried));
    await page.click('#try-form button[type="submit"]');
    await page.waitForSelector('#try-result');
    const shown = JSON.parse((await page.textContent('#try-result pre')) ?? '{}') as Record<string, unknown>;
    const explained = await runCli(['explain', '--config', daemon.configFile, '-'], env, JSON.stringify(tried));
    expect(explained.code).toBe(0);
    expect(shown).toEqual(JSON.parse(explained.stdout));
    expect(shown).toMatchObject({ category: 'cpu', action: 'open', glpi: { itilcategories_id: 111 } });

    // Fix the rule, reload, retry the dead letter from the page.
    writeFileSync(daemon.rulesFile, exampleRulesYaml());
    const reloaded = await fetch(`${daemon.url}/-/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
    expect(reloaded.status).toBe(200);
    await page.click('#dead-table button.retry');
    await page.waitForSelector('#flash');
    expect(await page.textContent('#flash')).toMatch(/^Dead letter #\d+ queued again/);
    await waitFor(() => glpi!.tickets.size === 3, 'the retried ticket', 20_000);
    expect(glpi.tickets.get(3)?.itilcategories_id).toBe(11);
    await waitFor(async () => {
      await page.goto(`${daemon!.url}/status`);
      return (await page.textContent('#count-dead .n')) === '0' && (await page.locator('#incident-table a').count()) === 3;
    }, 'the page shows no dead letter and three tickets');
    expect(await page.textContent('#dead-table')).toBe('No dead letter.');
    expect(dialogs).toEqual([]);

    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, 'status-page.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).toBeGreaterThan(10_000);

    // `status`: from the running daemon (its connections and history), then from the store once it is stopped.
    // It reaches the daemon at the config's listen address: the port the daemon took, as an operator's fixed one.
    writeFileSync(daemon.configFile, readFileSync(daemon.configFile, 'utf8').replace(/^listen: .*$/m, `listen: ${new URL(daemon.url).host}`));
    const running = await runCli(['status', '--config', daemon.configFile, '--json'], env);
    expect(running.code).toBe(0);
    const live = JSON.parse(running.stdout) as { source: string; connections: Record<string, { ok: boolean }>; counts: { openIncidents: number; dead: number }; history: { tickets: number[] } };
    expect(live).toMatchObject({ source: 'daemon', counts: { openIncidents: 3, dead: 0 } });
    expect(live.connections.glpi?.ok).toBe(true);
    expect(live.history.tickets.reduce((a, b) => a + b, 0)).toBe(3);
    const text = await runCli(['status', '--config', daemon.configFile], env);
    expect(text.stdout).toMatch(/^running: asked the daemon/);
    expect(text.stdout).toContain('open incidents 3 · pending jobs 0');
    await daemon.stop();
    const stopped = await runCli(['status', '--config', daemon.configFile, '--json'], env);
    expect(stopped.code).toBe(0);
    const fromStore = JSON.parse(stopped.stdout) as { source: string; connections?: unknown; counts: { openIncidents: number }; decisions: { rows: { host: string }[] }; daemon: string };
    expect(fromStore).toMatchObject({ source: 'store', counts: { openIncidents: 3 } });
    expect(fromStore.connections).toBeUndefined();
    expect(fromStore.daemon).toMatch(/no answer from http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED/);
    expect(fromStore.decisions.rows.map((r) => r.host)).toContain(HOSTILE);
  }, 120_000);
});
