import { afterEach, describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FakeGlpi } from '../../src/glpi-fake/server.js';
import { Daemon, TOKEN, waitFor } from '../helpers/daemon.js';
import { zabbixBody } from '../helpers/fixtures.js';
import { destroyRawSockets, postHead, rawConnect, trickle, within } from '../helpers/raw-http.js';

/**
 * Attacks on the listener of the real daemon (loopback, free ports, fresh
 * data dir, each bounded in time): slow senders, bodies sent after a 401,
 * more connections than allowed, SIGTERM with connections held open, floods
 * of unauthorised requests, the admin token, and /readyz probes.
 */

const ADMIN = 'admin-token-0123456789abcdef';

let glpi: FakeGlpi | undefined;
let daemon: Daemon | undefined;

afterEach(async () => {
  destroyRawSockets();
  await daemon?.stop();
  await glpi?.close();
  daemon = undefined;
  glpi = undefined;
});

interface Setup {
  /** Lines under `webhook:` (indented by two spaces). */
  readonly webhook?: readonly string[];
  /** Top-level YAML. */
  readonly extra?: string;
  readonly env?: Record<string, string>;
  readonly userTokens?: readonly string[];
}

async function setup(opt: Setup = {}): Promise<Daemon> {
  glpi = new FakeGlpi({ userTokens: opt.userTokens ?? ['user-token'] });
  await glpi.listen();
  const d = new Daemon({ glpiUrl: glpi.url, ...(opt.extra !== undefined ? { extra: opt.extra } : {}), ...(opt.env ? { env: opt.env } : {}) });
  if (opt.webhook) writeFileSync(d.configFile, readFileSync(d.configFile, 'utf8').replace(/^webhook:\n/m, `webhook:\n${opt.webhook.map((l) => `  ${l}\n`).join('')}`));
  daemon = d;
  await d.start();
  return d;
}

function portOf(d: Daemon): number {
  return Number(new URL(d.url).port);
}

async function metric(d: Daemon, line: RegExp, headers: Record<string, string> = {}): Promise<string | undefined> {
  const text = await (await fetch(`${d.url}/metrics`, { headers })).text();
  return text.split('\n').find((l) => line.test(l));
}

describe('slow and stubborn clients', () => {
  it('a client trickling its body is disconnected after request_timeout', async () => {
    const d = await setup({ webhook: ['request_timeout: 1s', 'header_timeout: 1s'] });
    const c = await rawConnect(portOf(d));
    c.socket.write(postHead(TOKEN, 50_000));
    const stop = trickle(c);
    const ms = await within(c.closed, 5000, 'the slow sender is disconnected');
    stop();
    expect(ms).toBeGreaterThanOrEqual(900);
    expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
    expect(await metric(d, /^zgb_webhook_rejected_total\{code="BRIDGE_REQUEST_TIMEOUT"\}/)).toBe('zgb_webhook_rejected_total{code="BRIDGE_REQUEST_TIMEOUT"} 1');
    // Nothing was stored for it, and the daemon still serves.
    expect((await d.post(zabbixBody('problem'))).status).toBe(202);
  });

  it('a connection that sends nothing is closed after header_timeout', async () => {
    const d = await setup({ webhook: ['request_timeout: 2s', 'header_timeout: 1s'] });
    const c = await rawConnect(portOf(d));
    const ms = await within(c.closed, 5000, 'the silent connection is closed');
    expect(ms).toBeLessThan(5000);
  });

  it('a client that keeps sending its body after its 401 is disconnected (long before request_timeout)', async () => {
    const d = await setup();
    const c = await rawConnect(portOf(d));
    c.socket.write(postHead('not-the-token-but-long-enough', 1_000_000));
    const stop = trickle(c, 20);
    const ms = await within(c.closed, 3000, 'disconnected after the 401');
    stop();
    expect(ms).toBeLessThan(3000);
    expect(c.received()).toMatch(/^HTTP\/1\.1 401 /);
  });

  it('connections over max_connections are closed at accept; the ones held and later ones work', async () => {
    const d = await setup({ webhook: ['max_connections: 4'] });
    const port = portOf(d);
    const held = await Promise.all([0, 1, 2, 3].map(() => rawConnect(port)));
    await new Promise((r) => setTimeout(r, 200));
    const extra = await Promise.all(Array.from({ length: 10 }, () => rawConnect(port)));
    await within(Promise.all(extra.map((c) => c.closed)), 3000, 'the extra connections are closed');
    expect(extra.every((c) => c.received() === '')).toBe(true);
    expect(held.every((c) => !c.isClosed())).toBe(true);
    held[0]!.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => held[0]!.received().includes('"ok"'), 'a held connection is served', 3000);
    for (const c of held) c.socket.destroy();
    await waitFor(async () => (await fetch(`${d.url}/healthz`).catch(() => undefined))?.status === 200, 'new connections once the held ones are gone', 3000);
    // The ten, and maybe a probe of the wait above that came before the server saw the held ones go.
    const dropped = await metric(d, /^zgb_webhook_rejected_total\{code="BRIDGE_TOO_MANY_CONNECTIONS"\}/);
    expect(Number(dropped?.split(' ')[1])).toBeGreaterThanOrEqual(10);
  });
});

describe('SIGTERM with connections held open', () => {
  it('exits 0 within a few seconds, closing idle, slow and silent connections; the webhook accepted just before is ticketed', async () => {
    const d = await setup();
    const port = portOf(d);
    const idle = await rawConnect(port);
    idle.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => idle.received().includes('"ok"'), 'idle connection served');
    const slow = await rawConnect(port);
    slow.socket.write(postHead(TOKEN, 100_000));
    const stopTrickle = trickle(slow);
    const silent = await rawConnect(port);
    expect((await d.post({ ...zabbixBody('problem'), event_id: '9001', host_host: 'sigterm-host', host_name: 'sigterm-host' })).status).toBe(202);

    const t0 = Date.now();
    const code = await within(d.stop(), 8000, 'the daemon exits');
    const ms = Date.now() - t0;
    stopTrickle();
    expect(code).toBe(0);
    expect(ms).toBeLessThan(5000);
    await within(Promise.all([idle.closed, slow.closed, silent.closed]), 1000, 'every connection closed');
    expect(d.logs.some((l) => l.msg === 'bridge stopped' && l.exit_code === 0)).toBe(true);

    // Decided and ticketed before the exit, or after the restart: never lost.
    if (glpi!.tickets.size === 0) await d.start();
    await waitFor(() => glpi!.tickets.size === 1, 'the accepted webhook became a ticket');
    expect([...glpi!.tickets.values()][0]!.content).toContain('sigterm-host');
  });
});

describe('rejection logs', () => {
  it('500 unauthorised requests: a handful of log lines, all 500 counted, the query string never logged', async () => {
    const d = await setup();
    const rejectionLines = () => d.logs.filter((l) => l.code === 'BRIDGE_UNAUTHORIZED' || typeof l.total === 'number');
    for (let i = 0; i < 500; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: 50 }, (_, j) =>
          fetch(`${d.url}/zabbix/webhook?token=secretvalue${i + j}`, { method: 'POST', headers: { Authorization: 'Bearer wrong-token-wrong-token', 'Content-Type': 'application/json' }, body: '{}' }).then((r) => r.status),
        ),
      );
      expect(batch.every((s) => s === 401)).toBe(true);
    }
    expect(await metric(d, /^zgb_webhook_rejected_total\{code="BRIDGE_UNAUTHORIZED"\}/)).toBe('zgb_webhook_rejected_total{code="BRIDGE_UNAUTHORIZED"} 500');
    expect(rejectionLines().length).toBeLessThanOrEqual(2);
    expect(rejectionLines()[0]).toMatchObject({ code: 'BRIDGE_UNAUTHORIZED', path: '/zabbix/webhook', ip: '127.0.0.1' });
    expect(await d.stop()).toBe(0);
    // The rest are summed up at the end of the minute, or at stop.
    expect(rejectionLines().length).toBeLessThanOrEqual(3);
    expect(d.logs.find((l) => typeof l.total === 'number')).toMatchObject({ rejected: { BRIDGE_UNAUTHORIZED: 499 }, total: 499, sources: { '127.0.0.1': 499 } });
    expect(d.output.join('\n')).not.toContain('secretvalue');
    expect(d.output.join('\n')).not.toContain('token=');
  });
});

describe('admin token', () => {
  const reload = (d: Daemon, token?: string) => fetch(`${d.url}/-/reload`, { method: 'POST', headers: token !== undefined ? { Authorization: `Bearer ${token}` } : {} });

  it('without an admin token, reload answers 403 and SIGHUP still reloads', async () => {
    const d = await setup();
    const r = await reload(d, TOKEN);
    expect(r.status).toBe(403);
    expect(await r.json()).toMatchObject({ error: { code: 'BRIDGE_ADMIN_DISABLED' } });
    process.kill(d.pid, 'SIGHUP');
    await waitFor(() => d.logs.some((l) => l.msg === 'configuration reloaded'), 'SIGHUP reloads');
  });

  it('reload takes the admin token, not the webhook token; a rotated admin token applies after a reload', async () => {
    const d = await setup({ extra: 'admin:\n  token: ${BRIDGE_ADMIN_TOKEN}', env: { BRIDGE_ADMIN_TOKEN: ADMIN } });
    const byWebhookToken = await reload(d, TOKEN);
    expect(byWebhookToken.status).toBe(401);
    expect(await byWebhookToken.json()).toMatchObject({ error: { code: 'BRIDGE_UNAUTHORIZED' } });
    expect((await reload(d)).status).toBe(401);
    const ok = await reload(d, ADMIN);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ reloaded: true });

    const rotated = 'rotated-admin-token-0123456789';
    writeFileSync(d.configFile, readFileSync(d.configFile, 'utf8').replace('token: ${BRIDGE_ADMIN_TOKEN}', `token: ${rotated}`));
    expect((await reload(d, ADMIN)).status).toBe(200);
    expect((await reload(d, ADMIN)).status).toBe(401);
    expect((await reload(d, rotated)).status).toBe(200);
    expect(d.output.join('\n')).not.toContain(ADMIN);
  });

  it('an admin token equal to the webhook token is refused: admin endpoints stay off, with an error in the log', async () => {
    const d = await setup({ extra: 'admin:\n  token: ${BRIDGE_ADMIN_TOKEN}', env: { BRIDGE_ADMIN_TOKEN: TOKEN } });
    expect((await reload(d, TOKEN)).status).toBe(403);
    expect(d.logs.some((l) => l.level === 'error' && l.code === 'BRIDGE_ADMIN_DISABLED')).toBe(true);
  });

  it('metrics.auth: /metrics and /readyz need the admin token; /healthz stays open', async () => {
    const d = await setup({ extra: 'admin:\n  token: ${BRIDGE_ADMIN_TOKEN}\nmetrics:\n  auth: true', env: { BRIDGE_ADMIN_TOKEN: ADMIN } });
    for (const path of ['/metrics', '/readyz']) {
      expect((await d.get(path)).status).toBe(401);
      expect((await fetch(`${d.url}${path}`, { headers: { Authorization: `Bearer ${TOKEN}` } })).status).toBe(401);
      expect((await fetch(`${d.url}${path}`, { headers: { Authorization: `Bearer ${ADMIN}` } })).status).toBe(200);
    }
    expect((await d.get('/healthz')).status).toBe(200);
    expect(await metric(d, /^zgb_webhook_rejected_total\{code="BRIDGE_UNAUTHORIZED"\}/, { Authorization: `Bearer ${ADMIN}` })).toBe('zgb_webhook_rejected_total{code="BRIDGE_UNAUTHORIZED"} 4');
  });
});

describe('/readyz', () => {
  /** Size and modification time of every SQLite file of the data dir (main files and their WAL). */
  const snapshot = (d: Daemon): Record<string, string> =>
    Object.fromEntries(
      readdirSync(d.dataDir)
        .filter((f) => /\.db(-wal)?$/.test(f))
        .map((f) => {
          const st = statSync(join(d.dataDir, f));
          return [f, `${st.size}@${st.mtimeMs}`];
        }),
    );

  it('20 probes do not write to the store', async () => {
    const d = await setup();
    expect((await d.get('/readyz')).status).toBe(200);
    // The first probe may write (at most one write per 30 s), and the processing thread checkpoints the inbox's
    // WAL every second (composition/processing.ts) after any write: the files are measured once they have not
    // changed for longer than that.
    let before = snapshot(d);
    await waitFor(async () => {
      await new Promise((r) => setTimeout(r, 1_500));
      const now = snapshot(d);
      const quiet = JSON.stringify(now) === JSON.stringify(before);
      before = now;
      return quiet;
    }, 'the store files stop changing', 20_000);
    expect(Object.keys(before).length).toBeGreaterThanOrEqual(2);
    for (let i = 0; i < 20; i++) expect((await d.get('/readyz')).status).toBe(200);
    expect(snapshot(d)).toEqual(before);
    // The measure sees writes: a webhook changes it.
    expect((await d.post(zabbixBody('problem'))).status).toBe(202);
    expect(snapshot(d)).not.toEqual(before);
  });

  it('a refused GLPI login is reported by its code, without GLPI\'s error text', async () => {
    const d = await setup({ env: { GLPI_USER_TOKEN: 'revoked-token' } });
    expect((await d.post(zabbixBody('problem'))).status).toBe(202);
    await waitFor(() => d.logs.some((l) => l.code === 'GLPI_LOGIN_FAILED'), 'login failure logged');
    let body = '';
    await waitFor(async () => {
      const r = await d.get('/readyz');
      body = await r.text();
      return r.status === 503 && body.includes('GLPI_LOGIN_FAILED');
    }, '/readyz reports the login failure');
    const glpiCheck = (JSON.parse(body) as { checks: { glpi: { detail: string } } }).checks.glpi.detail;
    expect(glpiCheck).toBe('GLPI_LOGIN_FAILED (ERROR_GLPI_LOGIN_USER_TOKEN): see the log');
    expect(body).not.toContain('seems invalid');
    // The log has the whole story.
    expect(d.output.join('\n')).toContain('seems invalid');
  });
});
