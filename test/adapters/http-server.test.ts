import { afterEach, describe, expect, it } from '@jest/globals';
import { RejectionLog, pathOf } from '../../src/adapters/http/rejection-log.js';
import type { Accepted } from '../../src/core/ports.js';
import type { Metrics } from '../../src/observability/metrics.js';
import { zabbixBody } from '../helpers/fixtures.js';
import { captureLogger, startServer as start, stopServer, WEBHOOK_TOKEN as TOKEN, type ServerHarness as Harness } from '../helpers/http-server.js';
import { postHead, rawConnect, trickle, within } from '../helpers/raw-http.js';

/**
 * The HTTP listener on a real loopback socket (free port): timeouts, the
 * connection cap, connections closed after a refusal, stop with slow, idle
 * and accepted requests, the admin token, and rate-limited rejection logs.
 */

const ADMIN = 'admin-token-9876543210';

afterEach(stopServer);

async function counter(metrics: Metrics, code: string): Promise<number> {
  const m = (await metrics.webhookRejected.get()).values.find((v) => v.labels.code === code);
  return m?.value ?? 0;
}

describe('HTTP limits on a real socket', () => {
  it('a body trickled slower than request_timeout gets 408 and its connection closed', async () => {
    const h = await start({}, { requestTimeoutMs: 1000, headerTimeoutMs: 1000 });
    const c = await rawConnect(h.port);
    c.socket.write(postHead(TOKEN, 10_000));
    const stop = trickle(c);
    const ms = await within(c.closed, 4000, 'the slow sender is disconnected');
    stop();
    expect(ms).toBeGreaterThanOrEqual(900);
    expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
    expect(c.received()).toContain('BRIDGE_REQUEST_TIMEOUT');
    expect(await counter(h.metrics, 'BRIDGE_REQUEST_TIMEOUT')).toBe(1);
  });

  it('headers trickled slower than header_timeout get 408 and the connection closed', async () => {
    const h = await start({}, { requestTimeoutMs: 5000, headerTimeoutMs: 1000 });
    const c = await rawConnect(h.port);
    c.socket.write('POST /zabbix/webhook HTTP/1.1\r\nX-Slow: ');
    const stop = trickle(c);
    const ms = await within(c.closed, 3500, 'the slow header sender is disconnected');
    stop();
    expect(ms).toBeLessThan(3500);
    expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('a client that keeps sending its body after a 401 is disconnected at once', async () => {
    const h = await start({}, { requestTimeoutMs: 20_000, headerTimeoutMs: 10_000 });
    const c = await rawConnect(h.port);
    c.socket.write(postHead('wrong-token-but-long-enough', 100_000));
    const stop = trickle(c, 50);
    const ms = await within(c.closed, 3000, 'the connection is closed after the 401');
    stop();
    expect(ms).toBeLessThan(3000);
    expect(c.received()).toMatch(/^HTTP\/1\.1 401 /);
    expect(c.received().toLowerCase()).toContain('connection: close');
  });

  it('connections over max_connections are closed at accept and counted', async () => {
    const h = await start({}, { maxConnections: 3 });
    const held = await Promise.all([0, 1, 2].map(() => rawConnect(h.port)));
    // Let the server see the three before the rest arrive.
    await new Promise((r) => setTimeout(r, 100));
    const extra = await Promise.all([0, 1, 2, 3, 4].map(() => rawConnect(h.port)));
    await within(Promise.all(extra.map((c) => c.closed)), 2000, 'the extra connections are closed');
    expect(held.every((c) => !c.isClosed())).toBe(true);
    expect(await counter(h.metrics, 'BRIDGE_TOO_MANY_CONNECTIONS')).toBe(5);
    // A held one still works.
    held[0]!.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await within(
      (async () => {
        while (!held[0]!.received().includes('"ok"')) await new Promise((r) => setTimeout(r, 20));
      })(),
      2000,
      'a held connection is served',
    );
  });

  it('an idle kept-alive connection is closed after keep_alive_timeout', async () => {
    const h = await start({}, { keepAliveTimeoutMs: 300 });
    const c = await rawConnect(h.port);
    c.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    const ms = await within(c.closed, 3000, 'idle connection closed');
    expect(ms).toBeLessThan(3000);
    expect(c.received()).toMatch(/^HTTP\/1\.1 200 /);
  });

  it('max_requests_per_socket closes a connection after that many requests', async () => {
    const h = await start({}, { maxRequestsPerSocket: 2 });
    const c = await rawConnect(h.port);
    c.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await within(c.closed, 3000, 'closed after two requests');
    expect(c.received().match(/HTTP\/1\.1 200 /g)).toHaveLength(2);
  });
});

describe('stop', () => {
  it('closes idle and slow connections at once, and an accepted webhook still gets its 202', async () => {
    let release: (a: Accepted) => void = () => undefined;
    let accepting = 0;
    let stopping = false;
    const h = await start(
      {
        isStopping: () => stopping,
        intake: {
          accept: () =>
            new Promise<Accepted>((r) => {
              accepting++;
              release = r;
            }),
        },
      },
      { requestTimeoutMs: 30_000, headerTimeoutMs: 10_000, keepAliveTimeoutMs: 30_000 },
    );
    const idle = await rawConnect(h.port);
    idle.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    const slow = await rawConnect(h.port);
    slow.socket.write(postHead(TOKEN, 10_000));
    const stopTrickle = trickle(slow);
    const fresh = await rawConnect(h.port);
    const body = JSON.stringify(zabbixBody('problem'));
    const accepted = await rawConnect(h.port);
    accepted.socket.write(postHead(TOKEN, Buffer.byteLength(body)) + body);
    await within(
      (async () => {
        while (accepting === 0 || !idle.received().includes('"ok"')) await new Promise((r) => setTimeout(r, 10));
      })(),
      2000,
      'the webhook is being committed',
    );

    const t0 = Date.now();
    stopping = true;
    const closing = h.app.close();
    await within(Promise.all([idle.closed, slow.closed, fresh.closed]), 1000, 'idle, slow and fresh connections closed at once');
    stopTrickle();
    expect(accepted.isClosed()).toBe(false);
    release({ deliveryId: 7, duplicate: false });
    await within(accepted.closed, 1000, 'the accepted connection is closed after its answer');
    await within(closing, 1000, 'the listener is closed');
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(accepted.received()).toMatch(/^HTTP\/1\.1 202 /);
    expect(accepted.received()).toContain('"delivery_id":7');
    expect(accepted.received().toLowerCase()).toContain('connection: close');
  });
});

describe('tokens', () => {
  const reload = () => ({ ok: true as const, summary: { categories: ['cpu'] } });
  const call = (h: Harness, method: string, path: string, token?: string, body?: unknown) =>
    fetch(`http://127.0.0.1:${h.port}${path}`, {
      method,
      headers: { ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });

  it('reload: 403 without an admin token, 401 with the webhook token, 200 with the admin token', async () => {
    let admin = '';
    const h = await start({ reload, adminToken: () => admin });
    const off = await call(h, 'POST', '/-/reload', TOKEN);
    expect(off.status).toBe(403);
    expect(await off.json()).toMatchObject({ error: { code: 'BRIDGE_ADMIN_DISABLED', message: expect.stringContaining('admin.token') } });
    admin = ADMIN;
    const wrong = await call(h, 'POST', '/-/reload', TOKEN);
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ error: { code: 'BRIDGE_UNAUTHORIZED' } });
    expect((await call(h, 'POST', '/-/reload')).status).toBe(401);
    const ok = await call(h, 'POST', '/-/reload', ADMIN);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ reloaded: true, categories: ['cpu'] });
    // The admin token does not open the webhook either.
    expect((await call(h, 'POST', '/zabbix/webhook', ADMIN, zabbixBody('problem'))).status).toBe(401);
    expect((await call(h, 'POST', '/zabbix/webhook', TOKEN, zabbixBody('problem'))).status).toBe(202);
  });

  it('metrics.auth puts /metrics and /readyz (GET and HEAD) behind the admin token; /healthz stays open', async () => {
    let auth = false;
    let admin = ADMIN;
    const h = await start({ adminToken: () => admin, metricsAuth: () => auth });
    expect((await call(h, 'GET', '/metrics')).status).toBe(200);
    expect((await call(h, 'GET', '/readyz')).status).toBe(200);
    auth = true;
    for (const path of ['/metrics', '/readyz']) {
      expect((await call(h, 'GET', path)).status).toBe(401);
      expect((await call(h, 'HEAD', path)).status).toBe(401);
      expect((await call(h, 'GET', path, TOKEN)).status).toBe(401);
      expect((await call(h, 'GET', path, ADMIN)).status).toBe(200);
    }
    expect((await call(h, 'GET', '/healthz')).status).toBe(200);
    admin = '';
    expect((await call(h, 'GET', '/metrics', ADMIN)).status).toBe(403);
  });
});

describe('rejection logs', () => {
  it('500 unauthorised requests: a handful of log lines, all 500 counted, no query string in the log', async () => {
    const h = await start();
    for (let i = 0; i < 500; i++) {
      const r = await fetch(`http://127.0.0.1:${h.port}/zabbix/webhook?token=secretvalue${i}`, { method: 'POST', headers: { authorization: 'Bearer nope-nope-nope-nope', 'content-type': 'application/json' }, body: '{}' });
      expect(r.status).toBe(401);
    }
    await h.app.close();
    expect(await counter(h.metrics, 'BRIDGE_UNAUTHORIZED')).toBe(500);
    const warn = h.lines.filter((l) => l.level === 'warn');
    expect(warn.length).toBeLessThanOrEqual(3);
    expect(warn[0]).toMatchObject({ code: 'BRIDGE_UNAUTHORIZED', path: '/zabbix/webhook', method: 'POST' });
    // The rest are summed up when the window ends (here: at stop).
    expect(warn.find((l) => l.total !== undefined)).toMatchObject({ rejected: { BRIDGE_UNAUTHORIZED: 499 }, total: 499, sources: { '127.0.0.1': 499 } });
    expect(h.raw.join('\n')).not.toContain('secretvalue');
  });

  it('first rejection per code in full, then one summary per window with counts by code and source; a quiet code is logged in full again', () => {
    const { logger, lines } = captureLogger();
    let now = 1_000_000;
    const timers: { fn: () => void; at: number }[] = [];
    const log = new RejectionLog(logger, {
      windowMs: 60_000,
      maxSources: 2,
      clock: { now: () => now },
      schedule: (fn, ms) => {
        const t = { fn, at: now + ms };
        timers.push(t);
        return () => timers.splice(timers.indexOf(t), 1);
      },
    });
    const fire = () => {
      for (const t of timers.filter((x) => x.at <= now)) t.fn();
    };
    const r = (code: string, ip: string) => log.record({ code, ip, message: `refused ${code}`, method: 'POST', path: '/zabbix/webhook' });
    r('BRIDGE_UNAUTHORIZED', '10.0.0.1');
    r('BRIDGE_BAD_JSON', '10.0.0.1');
    for (let i = 0; i < 100; i++) r('BRIDGE_UNAUTHORIZED', `10.0.0.${(i % 4) + 1}`);
    r('BRIDGE_BAD_JSON', '10.0.0.2');
    expect(lines.map((l) => l.msg)).toEqual(['refused BRIDGE_UNAUTHORIZED', 'refused BRIDGE_BAD_JSON']);
    expect(lines[0]).toMatchObject({ code: 'BRIDGE_UNAUTHORIZED', ip: '10.0.0.1', path: '/zabbix/webhook' });
    now += 30_000;
    fire();
    r('BRIDGE_UNAUTHORIZED', '10.0.0.1');
    expect(lines).toHaveLength(2);
    now += 30_000;
    fire();
    expect(lines).toHaveLength(3);
    expect(lines[2]).toMatchObject({ rejected: { BRIDGE_UNAUTHORIZED: 101, BRIDGE_BAD_JSON: 1 }, total: 102, sources: { '10.0.0.1': 26, '10.0.0.2': 26 }, other_sources: 50, window_s: 60 });
    // Still going: counted into the next summary, not logged again in full.
    now += 1000;
    r('BRIDGE_UNAUTHORIZED', '10.0.0.1');
    expect(lines).toHaveLength(3);
    now += 60_000;
    fire();
    expect(lines).toHaveLength(4);
    expect(lines[3]).toMatchObject({ rejected: { BRIDGE_UNAUTHORIZED: 1 }, total: 1 });
    // Quiet for a window: the next one is logged in full again; no summary without counts.
    now += 120_000;
    fire();
    r('BRIDGE_UNAUTHORIZED', '10.0.0.9');
    expect(lines).toHaveLength(5);
    expect(lines[4]).toMatchObject({ code: 'BRIDGE_UNAUTHORIZED', ip: '10.0.0.9' });
    expect(timers.filter((t) => t.at > now)).toHaveLength(0);
  });

  it('the logged path never carries the query string and is bounded', () => {
    expect(pathOf('/zabbix/webhook?token=secret')).toBe('/zabbix/webhook');
    expect(pathOf('/x?')).toBe('/x');
    expect(pathOf(`/${'a'.repeat(10_000)}`).length).toBeLessThanOrEqual(201);
  });
});
