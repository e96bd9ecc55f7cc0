import { afterEach, describe, expect, it } from '@jest/globals';
import { decodeHtml, FakeGlpi } from '../../src/glpi-fake/server.js';
import { Daemon, TOKEN, waitFor } from '../helpers/daemon.js';
import { zabbixBody } from '../helpers/fixtures.js';

let glpi: FakeGlpi;
let daemon: Daemon;

afterEach(async () => {
  await daemon?.stop();
  await glpi?.close();
});

async function setup(extra: Partial<ConstructorParameters<typeof Daemon>[0]> = {}): Promise<void> {
  glpi = new FakeGlpi({ userTokens: ['user-token'] });
  await glpi.listen();
  daemon = new Daemon({ glpiUrl: glpi.url, ...extra });
  await daemon.start();
}

const problem = zabbixBody('problem');

/** Hundreds of bad bodies: truncated, wrongly typed, broken tags, unknown severities, not objects. */
function hostileBodies(): string[] {
  const text = JSON.stringify(problem);
  const out: string[] = [];
  for (let i = 1; i < 120; i++) out.push(text.slice(0, Math.floor((text.length * i) / 120)));
  for (const key of Object.keys(problem)) {
    for (const value of [42, null, { a: 1 }, ['x'], true]) out.push(JSON.stringify({ ...problem, [key]: value }));
  }
  for (const sev of ['6', '-1', 'High', '', '4.5']) out.push(JSON.stringify({ ...problem, event_nseverity: sev }));
  for (const tags of ['[{"tag":', 'not json', '{"tag":"a"}', '[1,2]', '[{"tag":5}]', 'null']) out.push(JSON.stringify({ ...problem, event_tags: tags }));
  for (const v of ['2', 'yes', '']) out.push(JSON.stringify({ ...problem, event_value: v }));
  out.push('null', '[]', '"just a string"', '12', 'true', '{}', '<html><script>alert(1)</script></html>');
  return out;
}

describe('bad input never crashes the bridge', () => {
  it('hundreds of malformed, truncated, wrongly typed and oversized bodies → 4xx with a clear message; nothing stored', async () => {
    await setup();
    const bodies = hostileBodies();
    expect(bodies.length).toBeGreaterThan(300);
    const statuses = new Map<number, number>();
    for (const raw of bodies) {
      const res = await daemon.post(undefined, TOKEN, raw);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toMatch(/^BRIDGE_/);
      expect(body.error.message.length).toBeGreaterThan(5);
    }
    const huge = await daemon.post({ ...problem, trigger_name: 'x'.repeat(1024 * 1024) });
    expect(huge.status).toBe(413);
    const plain = await fetch(`${daemon.url}/zabbix/webhook`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'text/plain' }, body: 'hello' });
    expect(plain.status).toBe(415);
    expect((await daemon.get('/healthz')).status).toBe(200);
    expect(daemon.decisions()).toHaveLength(0);
    const ok = await daemon.post(problem);
    expect(ok.status).toBe(202);
    expect(await ok.json()).toEqual({ status: 'accepted', delivery_id: 1 });
  });

  it('markup and script in fields are neutralised; title and body are capped', async () => {
    await setup();
    const res = await daemon.post({
      ...problem,
      trigger_name: `<script>alert("x")</script><b>CPU</b> & ${'very long '.repeat(100)}`,
      host_name: '<img src=x onerror=alert(1)>',
      item_value: '<iframe src="http://evil"></iframe> 97 %',
      event_opdata: 'y'.repeat(60_000),
    });
    expect(res.status).toBe(202);
    await waitFor(() => glpi.tickets.size === 1, 'ticket');
    const t = glpi.tickets.get(1)!;
    // GLPI's name column: 255 characters as stored (GLPI 10 stores it HTML-encoded).
    expect(t.name.length).toBeLessThanOrEqual(255);
    expect(t.name).not.toMatch(/<|>/);
    expect(t.name).toMatch(/^\[zbx:[0-9a-f]{20}\] /);
    expect(t.content).not.toMatch(/<script|<img|<iframe/i);
    // The fake keeps GLPI 10's stored form (HTML-encoded once more); decode it as GLPI's UI does.
    expect(decodeHtml(t.content)).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(t.content.length).toBeLessThanOrEqual(60_000);
  });
});

describe('store faults', () => {
  it('a full store answers 503 (Zabbix retries) and /readyz says why; nothing is acknowledged that was not stored', async () => {
    await setup({ extra: 'store:\n  max_size: 160000' });
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < 400 && refused === 0; i++) {
      const res = await daemon.post({ ...problem, event_id: String(10_000 + i), host_host: `h${i}`, event_opdata: 'z'.repeat(2000) });
      if (res.status === 202) accepted++;
      else {
        expect(res.status).toBe(503);
        expect(await res.json()).toMatchObject({ error: { code: 'BRIDGE_STORE_UNAVAILABLE' } });
        refused++;
      }
    }
    expect(refused).toBe(1);
    expect(accepted).toBeGreaterThan(0);
    const ready = await daemon.get('/readyz');
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ checks: { store: { ok: false, detail: expect.stringMatching(/store\.max_size/) } } });
    await waitFor(() => glpi.tickets.size === accepted, 'every accepted alert became a ticket', 20_000);
  });
});

describe('graceful shutdown', () => {
  it('SIGTERM with jobs in flight loses nothing; a restart resumes the rest', async () => {
    await setup();
    glpi.setFaults({ latencyMs: 150 });
    for (let i = 0; i < 20; i++) {
      const res = await daemon.post({ ...problem, event_id: String(300 + i), host_host: `sd-${i}` });
      expect(res.status).toBe(202);
    }
    await waitFor(() => glpi.tickets.size >= 1, 'some tickets');
    expect(await daemon.stop()).toBe(0);
    const before = glpi.tickets.size;
    expect(before).toBeLessThan(20);
    daemon = new Daemon({ glpiUrl: glpi.url, dataDir: daemon.dataDir });
    await daemon.start();
    await waitFor(() => glpi.tickets.size === 20, 'all tickets after restart', 30_000);
    expect(new Set([...glpi.tickets.values()].map((t) => t.name)).size).toBe(20);
  });
});

describe('hold-down', () => {
  it('a problem that recovers within the hold-down never becomes a ticket, and is counted', async () => {
    await setup({ correlation: '  coalesce_window: 0\n  hold_down: 1500ms' });
    await daemon.post(problem);
    await daemon.post(zabbixBody('recovery'));
    await daemon.post({ ...problem, event_id: '77', trigger_id: '99', host_host: 'other' });
    await waitFor(() => glpi.tickets.size === 1, 'the problem that did not recover', 10_000);
    expect(glpi.tickets.get(1)!.name).toContain('High CPU');
    const metrics = await (await daemon.get('/metrics')).text();
    expect(metrics).toContain('zgb_hold_down_suppressed_total 1');
    expect(daemon.decisions().map((d) => d.action)).toEqual(['open', 'suppress', 'open']);
  });
});
