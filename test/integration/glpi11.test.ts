import { afterEach, describe, expect, it } from '@jest/globals';
import { FakeGlpi } from '../../src/glpi-fake/server.js';
import { Daemon, runCli, waitFor, CONFIG_ENV } from '../helpers/daemon.js';
import { zabbixBody } from '../helpers/fixtures.js';

/**
 * The built daemon against GLPI 11 (no HTML encoding; the legacy API at /api.php/v1) behind a web
 * server that strips the Authorization header, as Apache in front of PHP-FPM does without
 * `CGIPassAuth On`: GLPI answers initSession with ERROR_LOGIN_PARAMETERS_MISSING.
 */
let glpi: FakeGlpi | undefined;
let daemon: Daemon | undefined;

afterEach(async () => {
  await daemon?.stop();
  await glpi?.close();
  daemon = undefined;
  glpi = undefined;
});

async function stripping(): Promise<FakeGlpi> {
  glpi = new FakeGlpi({ version: '11', stripAuthorization: true, userTokens: ['user-token'] });
  await glpi.listen();
  return glpi;
}

const TYPED = 'disk &lt; 10% on /var & rising';

describe('GLPI 11 on the legacy API, Authorization stripped by the web server', () => {
  it('not opted in: /readyz says GLPI_LOGIN_FAILED (ERROR_LOGIN_PARAMETERS_MISSING), the log names the web-server fix, no ticket', async () => {
    const g = await stripping();
    daemon = new Daemon({ glpiUrl: g.urlV1 });
    await daemon.start();
    const d = daemon;
    expect((await d.post(zabbixBody('problem'))).status).toBe(202);
    await waitFor(() => d.logs.some((l) => l.code === 'GLPI_LOGIN_FAILED'), 'login failure logged');
    let body = '';
    await waitFor(async () => {
      const r = await d.get('/readyz');
      body = await r.text();
      return r.status === 503 && body.includes('GLPI_LOGIN_FAILED');
    }, '/readyz reports the login failure');
    expect((JSON.parse(body) as { checks: { glpi: { detail: string } } }).checks.glpi.detail).toBe('GLPI_LOGIN_FAILED (ERROR_LOGIN_PARAMETERS_MISSING): see the log');
    const failure = d.logs.find((l) => l.code === 'GLPI_LOGIN_FAILED')!;
    expect(failure.glpi_code).toBe('ERROR_LOGIN_PARAMETERS_MISSING');
    expect(String(failure.err)).toContain('strips that header');
    expect(String(failure.err)).toContain('CGIPassAuth On');
    expect(String(failure.err)).toContain('fastcgi_param HTTP_AUTHORIZATION $http_authorization;');
    expect(String(failure.err)).toContain('glpi.user_token_in_query: true');
    expect(d.output.join('\n')).not.toContain('user_token=');
    expect(g.tickets.size).toBe(0);
    // Only the header was tried.
    expect(g.requests.filter((r) => r.path === 'initSession').every((r) => r.status === 400)).toBe(true);
  }, 30_000);

  it('opted in (glpi.user_token_in_query: true): tickets are created through /api.php/v1, text stays as typed', async () => {
    const g = await stripping();
    daemon = new Daemon({ glpiUrl: g.urlV1, glpiExtra: '  timeout: 2s\n  user_token_in_query: true' });
    await daemon.start();
    const d = daemon;
    const problem = { event_id: '9101', trigger_id: '9101', host_host: 'db-11', host_name: 'db-11', event_name: TYPED, trigger_name: `${TYPED} on db-11` };
    expect((await d.post(zabbixBody('problem', problem))).status).toBe(202);
    await waitFor(() => g.tickets.size === 1, 'ticket created');
    await waitFor(() => d.logs.some((l) => l.msg === 'GLPI job done'), 'create recorded');
    const ticket = [...g.tickets.values()][0]!;
    // GLPI 11 stores text as sent: none of GLPI 10's entities.
    expect(`${ticket.name} ${ticket.content}`).not.toMatch(/&#(38|60|62);/);
    expect(ticket.name).toContain('db-11');
    expect(g.requests.filter((r) => r.path === 'initSession').map((r) => r.status)).toEqual([400, 200]);
    expect(d.logs.filter((l) => l.authorization_stripped === true)).toHaveLength(1);
    expect((await d.get('/readyz')).status).toBe(200);
  }, 30_000);

  it('check-config --online names the stripped header and the fix; opted in it logs in and warns', async () => {
    const g = await stripping();
    const off = new Daemon({ glpiUrl: g.urlV1 });
    const failed = await runCli(['check-config', '--config', off.configFile, '--online'], CONFIG_ENV);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('ERROR_LOGIN_PARAMETERS_MISSING');
    expect(failed.stderr).toContain('CGIPassAuth On');
    expect(failed.stderr).toContain('SetEnvIf Authorization "(.*)" HTTP_AUTHORIZATION=$1');
    const on = new Daemon({ glpiUrl: g.urlV1, glpiExtra: '  timeout: 2s\n  user_token_in_query: true' });
    const ok = await runCli(['check-config', '--config', on.configFile, '--online'], CONFIG_ENV);
    expect(ok.stdout).toContain('GLPI: legacy API (v1): session opened');
    expect(ok.stdout).toContain('(GLPI 11: text as stored)');
    expect(ok.stderr).toContain('strips the Authorization header');
    expect(ok.stderr).toContain('access log');
    expect(ok.stderr).not.toContain('user-token');
  }, 30_000);
});
