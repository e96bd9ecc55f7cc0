import { afterAll, describe, expect, it } from '@jest/globals';
import { FakeGlpi } from '../../src/glpi-fake/server.js';
import { Daemon, waitFor } from '../helpers/daemon.js';
import { zabbixBody } from '../helpers/fixtures.js';

/**
 * kill -9 at random points while a stream of alerts arrives; restarted each
 * time on the same store. Zabbix's retry is modelled by the sender: a body
 * whose delivery failed is sent again until it gets a 202.
 */
let glpi: FakeGlpi;
let daemon: Daemon;

afterAll(async () => {
  await daemon?.stop();
  await glpi?.close();
});

const INCIDENTS = 60;

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
    let kills = 0;
    let sending = true;
    const killer = (async () => {
      while (sending) {
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 300));
        if (!sending) break;
        await daemon.stop('SIGKILL');
        kills++;
        const dataDir = daemon.dataDir;
        daemon = new Daemon({ glpiUrl: glpi.url, dataDir });
        await daemon.start();
      }
    })();
    for (const b of bodies) {
      await deliver(b);
      await new Promise((r) => setTimeout(r, 20));
    }
    sending = false;
    await killer;
    await waitFor(() => glpi.tickets.size === INCIDENTS && glpi.solutions.length === solved, 'backlog applied after the last restart', 30_000);
    await waitFor(async () => {
      const r = (await (await daemon.get('/readyz')).json()) as { checks: { queue: { detail: string } } };
      return r.checks.queue.detail.startsWith('0 pending, 0 running');
    }, 'queue drained');
    const tickets = [...glpi.tickets.values()];
    const acks = glpi.followups.filter((f) => f.content.includes('Message: crash ack'));
    process.stdout.write(
      `crash test: ${bodies.length} alerts, ${kills} kill -9, tickets expected ${INCIDENTS} found ${tickets.length}, ` +
        `duplicates ${tickets.length - new Set(tickets.map((t) => t.name)).size}, solutions ${glpi.solutions.length}/${solved}, ack follow-ups ${acks.length}/${acked}\n`,
    );
    expect(kills).toBeGreaterThanOrEqual(2);
    expect(tickets).toHaveLength(INCIDENTS);
    expect(new Set(tickets.map((t) => t.name)).size).toBe(INCIDENTS);
    expect(glpi.solutions).toHaveLength(solved);
    expect(new Set(glpi.solutions.map((s) => s.items_id)).size).toBe(solved);
    expect(acks).toHaveLength(acked);
    expect(new Set(acks.map((a) => a.content)).size).toBe(acked);
  }, 120_000);
});
