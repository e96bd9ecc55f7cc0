import { afterAll, describe, expect, it } from '@jest/globals';
import { FakeGlpi } from '../../src/glpi-fake/server.js';
import { Daemon, waitFor } from '../helpers/daemon.js';
import { zabbixBody } from '../helpers/fixtures.js';

/**
 * kill -9 at random points while a stream of alerts arrives; restarted each
 * time on the same store. Zabbix's retry is modelled by the sender: a body
 * whose delivery failed is sent again until it gets a 202.
 *
 * The kill points are chosen by the stream's progress (one at random in each
 * of KILLS stretches of it), each landing a random moment after its point
 * (mid-request, mid-decision, mid-GLPI call), not on a timer: a timer killed
 * once per 100-400 ms of uptime, so the slower the machine made the stream,
 * the more kills and restarts it took (18 on a quiet run of 49 s), until a
 * loaded machine ran past the test's timeout.
 */
let glpi: FakeGlpi;
let daemon: Daemon;

afterAll(async () => {
  await daemon?.stop();
  await glpi?.close();
});

const INCIDENTS = 60;
/** kill -9 and restart this many times during the stream. */
const KILLS = 8;

function stream(): { bodies: Record<string, string>[]; solved: number; acked: number } {
  const bodies: Record<string, string>[] = [];
  let solved = 0;
  let acked = 0;
  for (let i = 0; i < INCIDENTS; i++) {
    const common = { host_host: `crash-${i}`, host_name: `crash-${i}`, event_id: String(2000 + i), trigger_id: String(7000 + i) };
    bodies.push(zabbixBody('problem', common));
    if (i % 3 === 0) {
      bodies.push(zabbixBody('update-acknowledged', { ...common, event_update_message: `crash ack ${i}` }));
      acked++;
    }
    if (i % 2 === 0) {
      bodies.push(zabbixBody('recovery', { ...common, event_recovery_id: String(8000 + i) }));
      solved++;
    }
  }
  return { bodies, solved, acked };
}

async function deliver(body: Record<string, string>): Promise<void> {
  for (;;) {
    try {
      const res = await daemon.post(body);
      if (res.status === 202) return;
    } catch {
      // daemon down: Zabbix would retry
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('crash safety', () => {
  it('kill -9 repeatedly during a stream: every alert processed, no ticket missing, no duplicate', async () => {
    glpi = new FakeGlpi({ userTokens: ['user-token'] });
    await glpi.listen();
    glpi.setFaults({ latencyMs: 15 });
    daemon = new Daemon({ glpiUrl: glpi.url });
    await daemon.start();
    const { bodies, solved, acked } = stream();
    // After how many accepted alerts each kill comes: one random point in each of KILLS stretches of the stream.
    const killAfter = Array.from({ length: KILLS }, (_v, k) => Math.max(1, Math.floor(((k + Math.random()) * bodies.length) / KILLS)));
    let delivered = 0;
    let kills = 0;
    const killer = (async () => {
      for (const after of killAfter) {
        await waitFor(() => delivered >= after, `${after} alerts accepted`, 100_000);
        await new Promise((r) => setTimeout(r, Math.random() * 150));
        await daemon.stop('SIGKILL');
        kills++;
        const dataDir = daemon.dataDir;
        daemon = new Daemon({ glpiUrl: glpi.url, dataDir });
        await daemon.start();
      }
    })();
    for (const b of bodies) {
      await deliver(b);
      delivered++;
      await new Promise((r) => setTimeout(r, 20));
    }
    await killer;
    await waitFor(() => glpi.tickets.size === INCIDENTS && glpi.solutions.length === solved, 'backlog applied after the last restart', 30_000);
    await waitFor(async () => {
      const r = (await (await daemon.get('/readyz')).json()) as { checks: { queue: { detail: string } } };
      return r.checks.queue.detail.startsWith('0 pending, 0 running');
    }, 'queue drained');
    const tickets = [...glpi.tickets.values()];
    const acks = glpi.followups.filter((f) => f.content.includes('Message: crash ack'));
    process.stdout.write(
      `crash test: ${bodies.length} alerts, ${kills} kill -9 (after ${killAfter.join(', ')} accepted), tickets expected ${INCIDENTS} found ${tickets.length}, ` +
        `duplicates ${tickets.length - new Set(tickets.map((t) => t.name)).size}, solutions ${glpi.solutions.length}/${solved}, ack follow-ups ${acks.length}/${acked}\n`,
    );
    expect(kills).toBe(KILLS);
    expect(tickets).toHaveLength(INCIDENTS);
    expect(new Set(tickets.map((t) => t.name)).size).toBe(INCIDENTS);
    expect(glpi.solutions).toHaveLength(solved);
    expect(new Set(glpi.solutions.map((s) => s.items_id)).size).toBe(solved);
    expect(acks).toHaveLength(acked);
    expect(new Set(acks.map((a) => a.content)).size).toBe(acked);
  }, 120_000);
});
