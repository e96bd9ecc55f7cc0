import { afterAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SyncPg } from '../../src/adapters/store/postgres/index.js';
import { Daemon, TOKEN, waitFor, type LogLine } from '../helpers/daemon.js';
import { zabbixBody } from '../helpers/fixtures.js';
import { pgStoreYaml, pgTestBed, testConnection } from '../helpers/postgres.js';

/**
 * Two built daemons on one PostgreSQL (issue 15, phase 2): webhooks spread across both by a client that
 * retries on the other node as Zabbix would through a virtual IP, a GLPI that fails a fifth of its requests
 * and answers slowly, and kill -9 of one node in the middle of the storm, then its restart. At the end:
 * exactly one ticket per incident, every acknowledgement a follow-up once, every recovery a solution, every
 * ticket written back to its Zabbix event once, no dead letters; the Zabbix poller ran on one node at a time
 * (every Zabbix API call is recorded with the node that made it) and the roles moved to the survivor.
 */
const bed = pgTestBed<Daemon>({ zabbix: true });
const proxies: Server[] = [];
/** Every Zabbix API call, in arrival order, with the node that made it. */
const zabbixCalls: { node: string; method: string; at: number }[] = [];
/** Write-back messages Zabbix holds per event (the fake keeps none: event.get answers them here, as Zabbix does). */
const messages = new Map<string, string[]>();

/**
 * One node's way to the fake Zabbix: records the call, keeps event.acknowledge's messages, and adds them to
 * event.get's answer (`acknowledges`), so that a write-back retried after a kill finds its message as it
 * would on a real Zabbix.
 */
async function zabbixProxy(node: string, target: string): Promise<string> {
  const server = createServer((req, res) => {
    const at = Date.now(); // when the request reached the proxy (a request sent just before a kill arrives after it)
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      void (async () => {
        const rpc = JSON.parse(body) as { method: string; params: Record<string, unknown> };
        zabbixCalls.push({ node, method: rpc.method, at });
        const upstream = await fetch(target, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
        const answer = (await upstream.json()) as { result?: unknown };
        if (rpc.method === 'event.acknowledge' && answer.result !== undefined) {
          for (const id of rpc.params.eventids as string[]) messages.set(id, [...(messages.get(id) ?? []), String(rpc.params.message)]);
        }
        if (rpc.method === 'event.get' && Array.isArray(answer.result)) {
          const rows = answer.result as { eventid: string }[];
          for (const id of rpc.params.eventids as string[]) {
            if (!messages.has(id)) continue;
            const acknowledges = (messages.get(id) ?? []).map((message) => ({ message }));
            const row = rows.find((r) => r.eventid === id);
            if (row) Object.assign(row, { acknowledges });
            else rows.push({ eventid: id, value: '1', r_eventid: '0', acknowledges } as { eventid: string });
          }
        }
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify(answer));
      })().catch((e: unknown) => {
        res.statusCode = 502;
        res.end(String(e));
      });
    });
  });
  proxies.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/api_jsonrpc.php`;
}

const nodes = bed.daemons;

afterAll(async () => {
  // The daemons first (pgTestBed stops them too, later): a proxy closes once its clients' connections have.
  for (const d of nodes) await d.stop();
  for (const p of proxies) await new Promise((r) => p.close(r));
});

async function node(name: string): Promise<Daemon> {
  const zabbixUrl = await zabbixProxy(name, bed.zabbix.url!);
  const d = new Daemon({
    glpiUrl: bed.glpi.url,
    glpiExtra: '  timeout: 1s',
    extra: [
      pgStoreYaml(bed.cluster.url('postgres'), { node: name, lease: '3s', statementTimeout: '5s' }),
      'zabbix:',
      `  url: ${zabbixUrl}`,
      '  api_token: zbx-token',
      '  auth: body',
      '  poll:',
      "    schedule: '*/1 * * * * *'",
    ].join('\n'),
  });
  nodes.push(d);
  return d;
}

/** N incidents: a problem each, an acknowledgement for even ones, a recovery for every third, in that order per incident. */
function incidents(n: number, prefix = 'ha', base = 0): { sequences: Record<string, string>[][]; solved: number; acked: number } {
  const sequences: Record<string, string>[][] = [];
  let solved = 0;
  let acked = 0;
  for (let i = 0; i < n; i++) {
    const common = { host_host: `${prefix}-${i}`, host_name: `${prefix}-${i}`, event_id: String(41_000 + base + i), trigger_id: String(61_000 + base + i) };
    const seq = [zabbixBody('problem', common)];
    if (i % 2 === 0) {
      seq.push(zabbixBody('update-acknowledged', { ...common, event_update_message: `${prefix} ack ${i}` }));
      acked++;
    }
    if (i % 3 === 0) {
      seq.push(zabbixBody('recovery', { ...common, event_recovery_id: String(91_000 + base + i) }));
      solved++;
    }
    sequences.push(seq);
  }
  return { sequences, solved, acked };
}

/** As Zabbix through one address in front of both nodes: the preferred node, else the other, until one answers 202. */
async function deliver(all: readonly Daemon[], first: number, body: Record<string, string>): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const d = all[(first + attempt) % all.length]!;
    // A node that does not answer in time (stopped) is given up on, as Zabbix's HTTP timeout would.
    const res =
      d.running && d.url !== ''
        ? await fetch(`${d.url}/zabbix/webhook`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` },
            body: JSON.stringify(body),
            signal: AbortSignal.timeout(2000),
          }).catch(() => undefined)
        : undefined;
    if (res?.status === 202) return;
    if (attempt % all.length === all.length - 1) await new Promise((r) => setTimeout(r, 100));
  }
}

function logged(d: Daemon, msg: string): LogLine[] {
  return d.logs.filter((l) => l.msg === msg);
}

async function metric(d: Daemon, pattern: RegExp): Promise<number[]> {
  const text = await (await d.get('/metrics')).text();
  return [...text.matchAll(new RegExp(pattern.source, 'gm'))].map((m) => Number(m[1]));
}

describe('two bridges on one PostgreSQL', () => {
  it('a storm spread across two nodes, one killed -9 and restarted midway: every incident handled exactly once, the poller on one node at a time', async () => {
    const a = await node('node-a');
    await a.start();
    await waitFor(() => logged(a, 'this node is the decider now').length === 1 && logged(a, 'this node is the poller now').length === 1, 'node-a holds both roles');
    const b = await node('node-b');
    await b.start();
    bed.glpi.setFaults({ errorRate: 0.2, latencyMs: 250 });
    const db = new SyncPg(testConnection(bed.cluster.url('postgres')));
    const runningOn = (name: string): number[] =>
      (db.run('q', [{ sql: "SELECT id FROM jobs WHERE status = 'running' AND claimed_by = $1 ORDER BY id", params: [name] }])[0]?.rows ?? []).map((r) => Number(r.id));

    const { sequences, solved, acked } = incidents(24);
    const total = sequences.reduce((n, s) => n + s.length, 0);
    let accepted = 0;
    let killedAt = 0;
    /** Jobs node-a had claimed (GLPI requests in flight) when it was killed. */
    let cutOff: number[] = [];
    const killer = (async () => {
      await waitFor(() => accepted >= total / 3 && runningOn('node-a').length > 0, 'a third of the storm accepted, node-a with jobs in flight', 60_000);
      cutOff = runningOn('node-a');
      killedAt = Date.now();
      await a.stop('SIGKILL');
      await new Promise((r) => setTimeout(r, 1500));
      await a.start();
    })();
    // Six incidents at a time, each one's alerts in order; alternate nodes first.
    let next = 0;
    await Promise.all(
      Array.from({ length: 6 }, async () => {
        for (let i = next++; i < sequences.length; i = next++) {
          for (const [k, body] of sequences[i]!.entries()) {
            await deliver([a, b], i + k, body);
            accepted++;
          }
        }
      }),
    );
    await killer;
    expect(killedAt).toBeGreaterThan(0);
    bed.glpi.setFaults({ errorRate: 0, latencyMs: 0 });

    const n = sequences.length;
    await waitFor(
      () => bed.glpi.tickets.size >= n && bed.glpi.solutions.length >= solved && bed.glpi.followups.filter((f) => f.content.includes('Message: ha ack ')).length >= acked,
      'every incident in GLPI',
      90_000,
    );
    await waitFor(async () => {
      const ready = (await (await b.get('/readyz')).json()) as { checks: { queue: { detail: string } } };
      return ready.checks.queue.detail.startsWith('0 pending, 0 running');
    }, 'the shared queue drained', 60_000);
    await waitFor(() => sequences.every((_, i) => messages.has(String(41_000 + i))), 'every ticket written back', 30_000);

    // Exactly once, cluster-wide.
    const tickets = [...bed.glpi.tickets.values()];
    expect(tickets).toHaveLength(n);
    expect(new Set(tickets.map((t) => t.name)).size).toBe(n);
    expect(tickets.filter((t) => t.status === 5)).toHaveLength(solved);
    expect(bed.glpi.solutions).toHaveLength(solved);
    const acks = bed.glpi.followups.filter((f) => f.content.includes('Message: ha ack '));
    expect(acks).toHaveLength(acked);
    expect(new Set(acks.map((f) => f.content)).size).toBe(acked);
    for (let i = 0; i < n; i++) expect(messages.get(String(41_000 + i))).toHaveLength(1);
    expect(await metric(b, /^zgb_queue_depth\{state="dead"\} (\d+)$/)).toEqual([0]);
    // What node-a was running when it died was retaken after its lease (a newer claim: a higher epoch) and finished.
    expect(cutOff.length).toBeGreaterThan(0);
    const retaken = db.run('q', [{ sql: 'SELECT id, status, epoch FROM jobs WHERE id = ANY($1::bigint[]) ORDER BY id', params: [cutOff] }])[0]?.rows ?? [];
    expect(retaken.map((r) => r.status)).toEqual(cutOff.map(() => 'done'));
    expect(retaken.every((r) => Number(r.epoch) >= 2)).toBe(true);
    db.close();

    // The roles moved to the survivor once node-a died, and stayed there after its restart.
    expect(logged(b, 'this node is the decider now')).toHaveLength(1);
    expect(logged(b, 'this node is the poller now')).toHaveLength(1);
    expect(Date.parse(String(logged(b, 'this node is the poller now')[0]!.time))).toBeGreaterThanOrEqual(killedAt);
    expect(logged(a, 'this node is the poller now')).toHaveLength(1); // before the kill only
    // The poller ran on one node at a time: node-a's sweeps, then node-b's, never interleaved.
    const polls = zabbixCalls.filter((c) => c.method === 'problem.get').sort((x, y) => x.at - y.at);
    const owners = polls.map((c) => c.node).filter((node, i, all) => i === 0 || all[i - 1] !== node);
    expect(owners).toEqual(['node-a', 'node-b']);
    expect(polls.find((c) => c.node === 'node-b')!.at).toBeGreaterThanOrEqual(killedAt);
    for (const d of [a, b]) {
      expect(await metric(d, /^zgb_cluster_role\{role="poller",node="node-[ab]"\} (\d+)$/)).toEqual(d === b ? [1] : [0]);
      expect(await metric(d, /^zgb_cluster_role\{role="decider",node="node-[ab]"\} (\d+)$/)).toEqual(d === b ? [1] : [0]);
    }
    // Both nodes ran jobs (claims are per node; node-b also retook what node-a held when it died).
    expect((await metric(b, /^zgb_job_claims_total\{node="node-b"\} (\d+)$/))[0]).toBeGreaterThan(0);

    expect(await a.stop()).toBe(0);
    expect(await b.stop()).toBe(0);
  }, 240_000);

  it('a node stopped (SIGSTOP) while it holds both roles and has jobs in flight: the other takes the roles and the jobs over; resumed, it sends nothing twice and records nothing over the newer claims', async () => {
    // A GLPI of this test's own (the first test's tickets stay in the database, under other hosts).
    await bed.freshGlpi();
    const c = await node('node-c');
    await c.start();
    await waitFor(() => logged(c, 'this node is the decider now').length === 1 && logged(c, 'this node is the poller now').length === 1, 'node-c holds both roles');
    const d = await node('node-d');
    await d.start();
    bed.glpi.setFaults({ errorRate: 0.2, latencyMs: 250 });
    const db = new SyncPg(testConnection(bed.cluster.url('postgres')));
    const runningOn = (name: string): number[] =>
      (db.run('q', [{ sql: "SELECT id FROM jobs WHERE status = 'running' AND claimed_by = $1 ORDER BY id", params: [name] }])[0]?.rows ?? []).map((r) => Number(r.id));

    const { sequences, solved, acked } = incidents(18, 'hs', 1000);
    const total = sequences.reduce((n, s) => n + s.length, 0);
    let accepted = 0;
    let cutOff: number[] = [];
    const pauser = (async () => {
      await waitFor(() => accepted >= total / 3 && runningOn('node-c').length > 0, 'a third accepted, node-c with jobs in flight', 60_000);
      cutOff = runningOn('node-c');
      process.kill(c.pid, 'SIGSTOP');
      // Lease 3 s: node-d ends node-c's silent sessions and takes both roles, and retakes node-c's jobs.
      await waitFor(() => logged(d, 'this node is the decider now').length === 1 && logged(d, 'this node is the poller now').length === 1, 'node-d takes the roles', 30_000);
      await waitFor(() => cutOff.every((id) => !runningOn('node-c').includes(id)), 'node-c\'s jobs retaken', 30_000);
      process.kill(c.pid, 'SIGCONT');
    })();
    let next = 0;
    await Promise.all(
      Array.from({ length: 6 }, async () => {
        for (let i = next++; i < sequences.length; i = next++) {
          for (const [k, body] of sequences[i]!.entries()) {
            await deliver([c, d], i + k, body);
            accepted++;
          }
        }
      }),
    );
    await pauser;
    bed.glpi.setFaults({ errorRate: 0, latencyMs: 0 });

    const n = sequences.length;
    await waitFor(
      () => bed.glpi.tickets.size >= n && bed.glpi.solutions.length >= solved && bed.glpi.followups.filter((f) => f.content.includes('Message: hs ack ')).length >= acked,
      'every incident in GLPI',
      90_000,
    );
    await waitFor(async () => {
      const ready = (await (await d.get('/readyz')).json()) as { checks: { queue: { detail: string } } };
      return ready.checks.queue.detail.startsWith('0 pending, 0 running');
    }, 'the shared queue drained', 60_000);
    await waitFor(() => sequences.every((_, i) => messages.has(String(42_000 + i))), 'every ticket written back', 30_000);
    await new Promise((r) => setTimeout(r, 1000)); // anything node-c still had to say has reached GLPI

    const tickets = [...bed.glpi.tickets.values()];
    expect(tickets).toHaveLength(n);
    expect(new Set(tickets.map((t) => t.name)).size).toBe(n);
    expect(bed.glpi.solutions).toHaveLength(solved);
    const acks = bed.glpi.followups.filter((f) => f.content.includes('Message: hs ack '));
    expect(acks).toHaveLength(acked);
    expect(new Set(acks.map((f) => f.content)).size).toBe(acked);
    for (let i = 0; i < n; i++) expect(messages.get(String(42_000 + i))).toHaveLength(1);
    expect(await metric(d, /^zgb_queue_depth\{state="dead"\} (\d+)$/)).toEqual([0]);
    const retaken = db.run('q', [{ sql: 'SELECT status, epoch FROM jobs WHERE id = ANY($1::bigint[])', params: [cutOff] }])[0]?.rows ?? [];
    expect(retaken.map((r) => r.status)).toEqual(cutOff.map(() => 'done'));
    expect(retaken.every((r) => Number(r.epoch) >= 2)).toBe(true);
    db.close();
    // node-d took the roles from a holder it found silent; node-c, running again, is a standby.
    expect(logged(d, 'this node is the decider now')[0]).toHaveProperty('stuck_holder_pid');
    await waitFor(() => logged(c, 'this node is no longer the decider').length === 1 && logged(c, 'this node is no longer the poller').length === 1, 'node-c finds out', 15_000);
    for (const x of [c, d]) {
      expect(await metric(x, /^zgb_cluster_role\{role="decider",node="node-[cd]"\} (\d+)$/)).toEqual(x === d ? [1] : [0]);
      expect(await metric(x, /^zgb_cluster_role\{role="poller",node="node-[cd]"\} (\d+)$/)).toEqual(x === d ? [1] : [0]);
    }
    expect(await c.stop()).toBe(0);
    expect(await d.stop()).toBe(0);
  }, 240_000);

  it('PostgreSQL stopped mid-storm for 20 s, longer than a lease: both nodes answer 503 meanwhile, and afterwards every incident is handled exactly once, with one decider and one poller', async () => {
    await bed.freshGlpi();
    const e = await node('node-e');
    const f = await node('node-f');
    await e.start();
    await f.start();
    bed.glpi.setFaults({ errorRate: 0.2, latencyMs: 100 });
    const { sequences, solved, acked } = incidents(18, 'hp', 2000);
    const total = sequences.reduce((n, s) => n + s.length, 0);
    let accepted = 0;
    const outage = (async () => {
      await waitFor(() => accepted >= total / 3, 'a third accepted', 60_000);
      bed.cluster.stop('fast');
      await waitFor(async () => (await e.get('/readyz')).status === 503 && (await f.get('/readyz')).status === 503, 'both nodes not ready', 15_000);
      await new Promise((r) => setTimeout(r, 20_000)); // 20 s (issue 15), far longer than the 3 s lease: claims lapse, roles are lost
      bed.cluster.start();
    })();
    let next = 0;
    await Promise.all(
      Array.from({ length: 6 }, async () => {
        for (let i = next++; i < sequences.length; i = next++) {
          for (const [k, body] of sequences[i]!.entries()) {
            await deliver([e, f], i + k, body);
            accepted++;
          }
        }
      }),
    );
    await outage;
    bed.glpi.setFaults({ errorRate: 0, latencyMs: 0 });

    const n = sequences.length;
    await waitFor(
      () => bed.glpi.tickets.size >= n && bed.glpi.solutions.length >= solved && bed.glpi.followups.filter((x) => x.content.includes('Message: hp ack ')).length >= acked,
      'every incident in GLPI',
      90_000,
    );
    await waitFor(async () => {
      const ready = (await (await e.get('/readyz')).json()) as { checks: { queue: { detail: string } } };
      return ready.checks.queue.detail.startsWith('0 pending, 0 running');
    }, 'the shared queue drained', 60_000);
    await waitFor(() => sequences.every((_, i) => messages.has(String(43_000 + i))), 'every ticket written back', 30_000);
    await new Promise((r) => setTimeout(r, 1000));

    const tickets = [...bed.glpi.tickets.values()];
    expect(tickets).toHaveLength(n);
    expect(new Set(tickets.map((t) => t.name)).size).toBe(n);
    expect(bed.glpi.solutions).toHaveLength(solved);
    const acks = bed.glpi.followups.filter((x) => x.content.includes('Message: hp ack '));
    expect(acks).toHaveLength(acked);
    expect(new Set(acks.map((x) => x.content)).size).toBe(acked);
    for (let i = 0; i < n; i++) expect(messages.get(String(43_000 + i))).toHaveLength(1);
    expect(await metric(e, /^zgb_queue_depth\{state="dead"\} (\d+)$/)).toEqual([0]);
    expect(e.running && f.running).toBe(true);
    // One decider and one poller again, whichever nodes took them.
    await waitFor(async () => {
      const roles = await Promise.all([e, f].map(async (x) => [...(await metric(x, /^zgb_cluster_role\{role="decider",node="node-[ef]"\} (\d+)$/)), ...(await metric(x, /^zgb_cluster_role\{role="poller",node="node-[ef]"\} (\d+)$/))]));
      return roles[0]![0]! + roles[1]![0]! === 1 && roles[0]![1]! + roles[1]![1]! === 1;
    }, 'one decider and one poller', 15_000);
    expect(await e.stop()).toBe(0);
    expect(await f.stop()).toBe(0);
  }, 240_000);

  it('three nodes, the poller\'s holder killed -9 twice and restarted: every incident exactly once, and the poller changed hands only when its holder died', async () => {
    await bed.freshGlpi();
    const all = [await node('node-g'), await node('node-h'), await node('node-i')];
    for (const x of all) await x.start();
    bed.glpi.setFaults({ errorRate: 0.2, latencyMs: 150 });
    const holder = async (role: string): Promise<Daemon | undefined> => {
      for (const x of all) {
        if (!x.running) continue;
        const v = await metric(x, new RegExp(`^zgb_cluster_role\\{role="${role}",node="node-[ghi]"\\} (\\d+)$`)).catch(() => []);
        if (v[0] === 1) return x;
      }
      return undefined;
    };
    const name = (x: Daemon): string => String(/node_name: (\S+)/.exec(x.opt.extra ?? '')?.[1]);
    const { sequences, solved, acked } = incidents(24, 'h3', 3000);
    const total = sequences.reduce((n, s) => n + s.length, 0);
    let accepted = 0;
    const kills: { node: string; at: number }[] = [];
    const killer = (async () => {
      for (const share of [0.25, 0.6]) {
        await waitFor(() => accepted >= total * share, `${share * 100} % accepted`, 60_000);
        let victim: Daemon | undefined;
        await waitFor(async () => (victim = await holder('poller')) !== undefined, 'a poller', 15_000);
        kills.push({ node: name(victim!), at: Date.now() });
        await victim!.stop('SIGKILL');
        await new Promise((r) => setTimeout(r, 1500));
        await victim!.start();
      }
    })();
    let next = 0;
    await Promise.all(
      Array.from({ length: 6 }, async () => {
        for (let i = next++; i < sequences.length; i = next++) {
          for (const [k, body] of sequences[i]!.entries()) {
            await deliver(all, i + k, body);
            accepted++;
          }
        }
      }),
    );
    await killer;
    bed.glpi.setFaults({ errorRate: 0, latencyMs: 0 });

    const n = sequences.length;
    await waitFor(
      () => bed.glpi.tickets.size >= n && bed.glpi.solutions.length >= solved && bed.glpi.followups.filter((x) => x.content.includes('Message: h3 ack ')).length >= acked,
      'every incident in GLPI',
      90_000,
    );
    await waitFor(async () => {
      const ready = (await (await all[0]!.get('/readyz')).json()) as { checks: { queue: { detail: string } } };
      return ready.checks.queue.detail.startsWith('0 pending, 0 running');
    }, 'the shared queue drained', 60_000);
    await waitFor(() => sequences.every((_, i) => messages.has(String(44_000 + i))), 'every ticket written back', 30_000);
    await new Promise((r) => setTimeout(r, 1000));

    const tickets = [...bed.glpi.tickets.values()];
    expect(tickets).toHaveLength(n);
    expect(new Set(tickets.map((t) => t.name)).size).toBe(n);
    expect(bed.glpi.solutions).toHaveLength(solved);
    const acks = bed.glpi.followups.filter((x) => x.content.includes('Message: h3 ack '));
    expect(acks).toHaveLength(acked);
    expect(new Set(acks.map((x) => x.content)).size).toBe(acked);
    for (let i = 0; i < n; i++) expect(messages.get(String(44_000 + i))).toHaveLength(1);
    expect(await metric(all[0]!, /^zgb_queue_depth\{state="dead"\} (\d+)$/)).toEqual([0]);
    // The poller's sweeps, by node, from the start of this test: a new node only after the previous one was killed.
    const first = kills.length > 0 ? Math.min(...all.map((x) => Date.parse(String(logged(x, 'bridge started')[0]?.time)))) : 0;
    const polls = zabbixCalls.filter((c) => c.method === 'problem.get' && c.at >= first && /node-[ghi]/.test(c.node)).sort((x, y) => x.at - y.at);
    const segments = polls.filter((c, i) => i === 0 || polls[i - 1]!.node !== c.node);
    expect(segments.length).toBeLessThanOrEqual(kills.length + 1);
    for (let i = 1; i < segments.length; i++) {
      expect(kills.some((k) => k.node === segments[i - 1]!.node && k.at <= segments[i]!.at)).toBe(true);
    }
    expect(await holder('decider')).toBeDefined();
    expect(await holder('poller')).toBeDefined();
    for (const x of all) expect(await x.stop()).toBe(0);
  }, 300_000);
});
