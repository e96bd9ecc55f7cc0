import { afterEach, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FakeGlpi } from '../../src/glpi-fake/server.js';
import { Daemon, waitFor } from '../helpers/daemon.js';
import { zabbixBody } from '../helpers/fixtures.js';

/**
 * Issue 14 item 1, the race between a cause's create and its symptom's link (the built daemon against the
 * GLPI fake): Zabbix sends a cause and its symptom together, their creates run in parallel lanes, and the
 * symptom's create lands first. Its link job must wait for the cause's ticket, not give up for good.
 * The cause's create is made slower than the symptom's by a proxy in front of the fake that holds the causes'
 * POST /Ticket until the test lets them go, once every symptom's link job has run (the fake has no per-request
 * hold; its latency fault delays every request alike): the race is made to happen every time, not by timing.
 */
let glpi: FakeGlpi | undefined;
let daemon: Daemon | undefined;
let proxy: Server | undefined;
/** Lets the held creates go (also when a test fails before it does). */
let letGo: (() => void) | undefined;

afterEach(async () => {
  letGo?.();
  await daemon?.stop();
  await glpi?.close();
  if (proxy) {
    proxy.closeAllConnections();
    await new Promise((r) => proxy!.close(r));
  }
  letGo = undefined;
  daemon = undefined;
  glpi = undefined;
  proxy = undefined;
});

/** Holds every ticket create whose body matches `slow` until `release` settles, then forwards it; everything else goes straight through. */
async function slowCreates(target: string, slow: RegExp, release: Promise<void>, held: string[]): Promise<string> {
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks);
        const text = body.toString('utf8');
        if (req.method === 'POST' && /\/Ticket\/?$/.test(new URL(req.url ?? '/', 'http://p').pathname) && slow.test(text)) {
          held.push(slow.exec(text)?.[0] ?? '?');
          await release;
        }
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host' && k !== 'connection' && k !== 'content-length') headers[k] = v;
        const answer = await fetch(`${upstream.origin}${req.url ?? '/'}`, { method: req.method ?? 'GET', headers, ...(body.length > 0 ? { body } : {}) });
        const out: Record<string, string> = {};
        answer.headers.forEach((v, k) => {
          if (k !== 'content-length' && k !== 'connection' && k !== 'transfer-encoding' && k !== 'keep-alive') out[k] = v;
        });
        res.writeHead(answer.status, out);
        res.end(Buffer.from(await answer.arrayBuffer()));
      })().catch((e: unknown) => {
        res.statusCode = 502;
        res.end(String(e));
      });
    });
  });
  proxy = server;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}${upstream.pathname}`;
}

const PAIRS = 10;

describe('a cause and its symptom sent together', () => {
  it('every symptom\'s ticket ends linked to its cause\'s, though the symptom\'s create lands first (its link job waits, not a failure)', async () => {
    glpi = new FakeGlpi({ userTokens: ['user-token'] });
    await glpi.listen();
    const held: string[] = [];
    const url = await slowCreates(glpi.url, /cause-host-\d+/, new Promise<void>((r) => (letGo = r)), held);
    // Enough GLPI requests at once that every create runs at the same time, as independent incidents do; a timeout
    // longer than the causes' creates are held.
    daemon = new Daemon({
      glpiUrl: url,
      glpiExtra: '  timeout: 30s\n  max_concurrency: 32',
      rulesYaml: 'categories:\n  - name: cpu\n    match:\n      tags: [{ tag: component, value: cpu }]\n',
    });
    await daemon.start();

    // Each cause, then at once its symptom (Zabbix sends them in the same second); nothing waits for a ticket.
    for (let i = 0; i < PAIRS; i++) {
      const cause = await daemon.post(zabbixBody('problem', { host_host: `cause-host-${i}`, host_name: `cause-host-${i}`, trigger_id: String(100 + i), event_id: String(5000 + i) }));
      const symptom = await daemon.post(zabbixBody('problem', { host_host: `symptom-host-${i}`, host_name: `symptom-host-${i}`, trigger_id: String(200 + i), event_id: String(6000 + i), event_cause_id: String(5000 + i) }));
      expect([cause.status, symptom.status]).toEqual([202, 202]);
    }
    // Every symptom's ticket made, and its link job run, while every cause's create is held.
    const linkRuns = () => daemon!.logs.filter((l) => (l.job_type === 'link_ticket' && l.msg === 'GLPI job done') || (l.level === 'info' && /its cause's ticket is being created/.test(l.msg))).length;
    await waitFor(() => glpi!.tickets.size === PAIRS && held.length === PAIRS && linkRuns() >= PAIRS, 'the symptoms\' tickets and their link jobs run, the causes\' creates held');
    expect(held.sort()).toEqual(Array.from({ length: PAIRS }, (_, i) => `cause-host-${i}`).sort());
    letGo!();
    await waitFor(() => glpi!.tickets.size === 2 * PAIRS, 'every ticket');

    const ticketOf = (host: string): number => {
      const t = [...glpi!.tickets.values()].filter((x) => x.content.includes(host) || x.name.includes(host));
      expect(t).toHaveLength(1);
      return t[0]!.id;
    };
    // Every link job over (linked, or given up), then each pair looked at.
    const linkJobsDone = () => daemon!.logs.filter((l) => l.msg === 'GLPI job done' && l.job_type === 'link_ticket');
    await waitFor(() => linkJobsDone().length === PAIRS, 'every symptom\'s link job done', 20_000);
    expect(linkJobsDone().map((l) => l.operation)).toEqual(Array.from({ length: PAIRS }, () => 'ticket_linked'));
    for (let i = 0; i < PAIRS; i++) {
      expect({ pair: i, links: glpi.itil.linkedTickets(ticketOf(`symptom-host-${i}`)) }).toEqual({ pair: i, links: [{ id: ticketOf(`cause-host-${i}`), link: 1 }] });
    }
    expect(glpi.itil.ticketTickets).toHaveLength(PAIRS);
    // Their link jobs looked again instead of giving up.
    const waited = new Set(daemon.logs.filter((l) => /its cause's ticket is being created/.test(l.msg)).map((l) => String(l.incident)));
    expect([...waited].sort()).toEqual(Array.from({ length: PAIRS }, (_, i) => `host=symptom-host-${i}|trigger=#${200 + i}`).sort());
    expect(daemon.logs.filter((l) => /its cause has no GLPI ticket/.test(l.msg))).toEqual([]);
    // Waiting is not a GLPI failure: no retry counted, no dead letter, the circuit breaker closed.
    const metrics = await (await daemon.get('/metrics')).text();
    expect(metrics).not.toMatch(/^zgb_job_retries_total\{[^}]*\} [1-9]/m);
    expect(metrics).not.toMatch(/^zgb_dead_letters_total\{[^}]*\} [1-9]/m);
    expect(metrics).toMatch(/^zgb_glpi_circuit_state 0$/m);
  });
});
