import { afterEach, describe, expect, it } from '@jest/globals';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FakeGlpi } from '../../src/glpi-fake/server.js';
import { CONFIG_ENV, Daemon, runCli, TOKEN, waitFor } from '../helpers/daemon.js';
import { ROOT, zabbixBody } from '../helpers/fixtures.js';

const EXAMPLE = join(ROOT, 'config', 'bridge.example.yaml');

describe('check-config', () => {
  it('exit 0 on the shipped example', async () => {
    const r = await runCli(['check-config', '--config', EXAMPLE], {});
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/OK/);
    expect(r.stdout).toMatch(/5 categories \(cpu, memory, disk, network, temperature\)/);
  });

  it('the shipped example with ZABBIX_URL: warns while no poll scope is set (exit 0), not once ZABBIX_POLL_HOST_GROUPS is', async () => {
    const zabbix = { ZABBIX_URL: 'http://zabbix.example.org/api_jsonrpc.php', ZABBIX_API_TOKEN: 'secret-zabbix-token' };
    const open = await runCli(['check-config', '--config', EXAMPLE], { ...zabbix, ZABBIX_POLL_HOST_GROUPS: '' });
    expect(open.code).toBe(0);
    expect(open.stderr).toMatch(/warning: .*zabbix\.poll: no host_groups scope/);
    const scoped = await runCli(['check-config', '--config', EXAMPLE], { ...zabbix, ZABBIX_POLL_HOST_GROUPS: 'Linux servers,Databases' });
    expect(scoped.code).toBe(0);
    expect(scoped.stderr).toBe('');
    expect(scoped.stdout).toMatch(/Zabbix polling .*host groups Linux servers, Databases.*baseline skip/);
    expect(open.stdout + open.stderr + scoped.stdout).not.toContain('secret-zabbix-token');
  });

  it('exit 1 with every problem, its line and YAML path, and no secret in the output', async () => {
    const dir = new Daemon({ glpiUrl: 'http://x/apirest.php' }).dataDir;
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'listen: nowhere\nglpi:\n  url: http://g/apirest.php\n  user_token: ${GLPI_USER_TOKEN}\n  timeout: soon\nrules:\n  categories:\n    - name: cpu\n      glpi: { urgency: 7 }\n');
    const r = await runCli(['check-config', '--config', file], { GLPI_USER_TOKEN: 'very-secret-user-token' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('CONFIG_INVALID');
    expect(r.stderr).toMatch(/bad\.yaml:1: listen: use host:port/);
    expect(r.stderr).toMatch(/bad\.yaml:5: glpi\.timeout: "soon" is not a duration/);
    expect(r.stderr).toMatch(/bad\.yaml:9: rules\.categories\[0\]\.glpi\.urgency/);
    expect(r.stdout + r.stderr).not.toContain('very-secret-user-token');
  });

  it('--help on every command; unknown commands exit 2', async () => {
    for (const cmd of ['run', 'check-config', 'explain', 'queue']) {
      const r = await runCli([cmd, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`Usage: zabbix-glpi-bridge ${cmd}`));
    }
    const bad = await runCli(['frobnicate']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('unknown command "frobnicate"');
  });
});

describe('check-config --online', () => {
  it('logs in to GLPI and checks every id the rules use; secrets are never printed', async () => {
    const glpi = new FakeGlpi({ userTokens: ['user-token'], categories: [11, 12, 13, 14], groups: [3, 4, 5, 6] });
    await glpi.listen();
    try {
      const d = new Daemon({ glpiUrl: glpi.url });
      const missing = await runCli(['check-config', '--config', d.configFile, '--online']);
      expect(missing.code).toBe(1);
      expect(missing.stdout).toContain('GLPI: legacy API (v1): session opened');
      expect(missing.stderr).toContain('itilcategories_id 15 (category temperature): ITILCategory 15 does not exist');
      expect(missing.stdout + missing.stderr).not.toMatch(/user-token|test-webhook-token/);
      glpi.allowCategories(15);
      const ok = await runCli(['check-config', '--config', d.configFile, '--online']);
      expect(ok.code).toBe(0);
      expect(ok.stdout).toMatch(/every id the rules use exists \(\d+ checked\)/);
      const refused = await runCli(['check-config', '--config', d.configFile, '--online'], { ...CONFIG_ENV, GLPI_USER_TOKEN: 'revoked-secret' });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('ERROR_GLPI_LOGIN_USER_TOKEN');
      expect(refused.stdout + refused.stderr).not.toContain('revoked-secret');
      expect(glpi.sessions.size).toBe(0);
    } finally {
      await glpi.close();
    }
  });
});

describe('explain', () => {
  it('prints the decision for a webhook body without side effects', async () => {
    const body = JSON.stringify(zabbixBody('problem'));
    const r = await runCli(['explain', '--config', EXAMPLE, '-'], {}, body);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(out).toMatchObject({
      category: 'cpu',
      severity: 'disaster',
      severity_reason: 'value 97 % above 95 → disaster',
      fingerprint: 'host=bridge-test-01|trigger=#23133',
      action: 'open',
      reason: 'new fingerprint',
      glpi: { urgency: 5, impact: 5, itilcategories_id: 11, groups_id_assign: 3 },
    });
    expect((out.ticket as { title: string }).title).toMatch(/^\[zbx:[0-9a-f]{20}\] \[cpu\] High CPU utilization on bridge-test-01$/);
  });

  it('names the bad field of an invalid body', async () => {
    const r = await runCli(['explain', '--config', EXAMPLE, '-'], {}, JSON.stringify({ ...zabbixBody('problem'), event_value: '7' }));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('BRIDGE_INVALID_FIELD: event_value must be "1" (problem) or "0" (recovery)');
  });
});

describe('reload (SIGHUP and POST /-/reload)', () => {
  const ADMIN = 'admin-token-0123456789abcdef';
  let glpi: FakeGlpi;
  let daemon: Daemon;
  afterEach(async () => {
    await daemon.stop();
    await glpi.close();
  });

  it('SIGHUP applies a valid config to new alerts and rejects an invalid one, keeping the running config', async () => {
    glpi = new FakeGlpi({ userTokens: ['user-token'] });
    await glpi.listen();
    daemon = new Daemon({ glpiUrl: glpi.url, extra: 'admin:\n  token: ${BRIDGE_ADMIN_TOKEN}', env: { BRIDGE_ADMIN_TOKEN: ADMIN } });
    await daemon.start();
    const original = readFileSync(daemon.configFile, 'utf8');
    writeFileSync(daemon.configFile, `${original.replace(/^rules_file: .*$/m, '')}\nrules:\n  defaults: { itilcategories_id: 77 }\n`);
    process.kill(daemon.pid, 'SIGHUP');
    await waitFor(() => daemon.logs.some((l) => l.msg === 'configuration reloaded'), 'reloaded');
    await daemon.post(zabbixBody('problem'));
    await waitFor(() => glpi.tickets.size === 1, 'ticket');
    expect(glpi.tickets.get(1)!.itilcategories_id).toBe(77);
    writeFileSync(daemon.configFile, `${original}\nbogus_key: 1\n`);
    process.kill(daemon.pid, 'SIGHUP');
    await waitFor(() => daemon.logs.some((l) => l.msg === 'configuration reload rejected; keeping the running configuration'), 'rejected');
    expect(JSON.stringify(daemon.logs.find((l) => String(l.msg).startsWith('configuration reload rejected')))).toContain('bogus_key: unknown key');
    await daemon.post({ ...zabbixBody('problem'), event_id: '50', trigger_id: '51' });
    await waitFor(() => glpi.tickets.size === 2, 'second ticket');
    expect(glpi.tickets.get(2)!.itilcategories_id).toBe(77);
    expect((await runCli(['queue', '--config', daemon.configFile], CONFIG_ENV)).code).toBe(1);

    const reload = (token: string) => fetch(`${daemon.url}/-/reload`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
    expect((await reload('nope')).status).toBe(401);
    // The webhook token (every Zabbix admin can read it in the media type) is not an admin token.
    expect((await reload(TOKEN)).status).toBe(401);
    const refused = await reload(ADMIN);
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ error: { code: 'CONFIG_INVALID', problems: [expect.stringContaining('bogus_key: unknown key')] } });
    writeFileSync(daemon.configFile, original);
    const accepted = await reload(ADMIN);
    expect(accepted.status).toBe(200);
    expect(await accepted.json()).toMatchObject({ reloaded: true, categories: ['cpu', 'memory', 'disk', 'network', 'temperature'] });
    await daemon.post({ ...zabbixBody('problem'), event_id: '60', trigger_id: '61' });
    await waitFor(() => glpi.tickets.size === 3, 'third ticket');
    expect(glpi.tickets.get(3)!.itilcategories_id).toBe(11);
    const metrics = await (await daemon.get('/metrics')).text();
    expect(metrics).toContain('zgb_config_reloads_total{result="success"} 2');
    expect(metrics).toContain('zgb_config_reloads_total{result="failure"} 2');
  });
});

describe('demo', () => {
  it('runs the whole flow against the built-in GLPI fake and says what each alert became', async () => {
    const r = await runCli(['demo', '--pace', '0.4'], {});
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('▶ CPU spikes on web-01 that recover, and come back: a recurring incident becomes a GLPI Problem');
    expect(r.stdout.match(/suppress /g)).toHaveLength(4);
    for (const n of [1, 2, 3]) expect(r.stdout).toMatch(new RegExp(`#${n} {2}solved +urgency 5 {2}category 11 +\\[zbx:[0-9a-f]{20}\\] \\[cpu\\]`));
    expect(r.stdout).toMatch(/#4 {2}assigned urgency 5 {2}category 13 +\[zbx:[0-9a-f]{20}\] \[disk\]/);
    expect(r.stdout).toMatch(/#5 {2}assigned urgency 3 {2}category 14 +\[zbx:[0-9a-f]{20}\] \[network\]/);
    expect(r.stdout).toMatch(/#6 {2}solved +urgency 5 {2}category 15 +\[zbx:[0-9a-f]{20}\] \[temperature\]/);
    // The third CPU ticket cycle within the hour: one GLPI Problem linking the three tickets, left open for humans.
    expect(r.stdout).toContain('✔ opened a GLPI Problem for the recurring incident and linked its tickets, up to ticket #3');
    expect(r.stdout).toMatch(/Problem #1 {2}new +\[zbx:p[0-9a-f]{20}\] Recurring: \[cpu\] High CPU utilization on web-01\n +links tickets #1, #2, #3;/);
    // The host's asset on its tickets: by name, by IP (the switch GLPI knows under another name), or none.
    expect(r.stdout).toMatch(/\[cpu\] High CPU utilization on web-01\n +0 follow-up\(s\), 1 solution\(s\), asset: Computer "web-01" \(found by name\)/);
    expect(r.stdout).toMatch(/\[network\] Interface Gi0\/12: Link down\n +0 follow-up\(s\), 0 solution\(s\), asset: NetworkEquipment "core-switch-2" \(found by IP\)/);
    expect(r.stdout).toMatch(/^6 tickets and 1 problem from 10 Zabbix events/m);
    expect(r.stdout).not.toMatch(/\u001b\[/);
  }, 60_000);
});
