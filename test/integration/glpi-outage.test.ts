import { afterEach, describe, expect, it } from '@jest/globals';
import type { FakeGlpi } from '../../src/glpi-fake/server.js';
import { BREAKER_OPEN_AFTER } from '../../src/services/dispatcher.js';
import { type Daemon, startWithGlpi, waitFor } from '../helpers/daemon.js';
import { zabbixBody } from '../helpers/fixtures.js';

/**
 * The real daemon during a GLPI outage: the requests GLPI receives while it
 * is down are counted. The circuit breaker's design bounds them: the jobs in
 * flight when GLPI went down (at most glpi.max_concurrency, 4 by default) and
 * the requests the first failures let start before the breaker opens (it
 * opens at the BREAKER_OPEN_AFTER-th failure in a row: at most that many
 * minus one), then one request per probe, never a follow-up list read for an
 * attempt that never reached GLPI.
 */
let glpi: FakeGlpi;
let daemon: Daemon;

afterEach(async () => {
  await daemon?.stop();
  await glpi?.close();
});

const HOSTS = 10;
const common = (i: number) => ({ host_host: `out-${i}`, host_name: `out-${i}`, trigger_id: String(6100 + i) });

async function send(body: Record<string, string>): Promise<void> {
  expect((await daemon.post(body)).status).toBe(202);
}

describe('GLPI outage', () => {
  it('one probe at a time while GLPI answers 503; queued follow-ups are sent once each, with no follow-up list read, when it is back', async () => {
    ({ glpi, daemon } = await startWithGlpi());
    for (let i = 0; i < HOSTS; i++) await send(zabbixBody('problem', { ...common(i), event_id: String(3000 + i) }));
    await waitFor(() => glpi.tickets.size === HOSTS, 'tickets before the outage');
    await waitFor(() => daemon.logs.filter((l) => l.msg === 'GLPI job done').length === HOSTS, 'creates recorded');

    glpi.setFaults({ mode: 'unavailable' });
    const from = glpi.requests.length;
    const probesBefore = daemon.logs.filter((l) => l.msg === 'GLPI circuit breaker' && l.state === 'half_open').length;
    // A second occurrence and an acknowledgement of every incident, while GLPI is down.
    for (let i = 0; i < HOSTS; i++) {
      await send(zabbixBody('problem', { ...common(i), event_id: String(3100 + i) }));
      await send(zabbixBody('update-acknowledged', { ...common(i), event_id: String(3000 + i), event_update_message: `outage ack ${i}` }));
    }
    await waitFor(() => daemon.logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith('GLPI looks down')), 'breaker open');
    await new Promise((r) => setTimeout(r, 6_000));
    const during = glpi.requests.slice(from);
    const probes = daemon.logs.filter((l) => l.msg === 'GLPI circuit breaker' && l.state === 'half_open').length - probesBefore;
    expect(await (await daemon.get('/metrics')).text()).toMatch(/zgb_glpi_circuit_state [12]/);

    glpi.setFaults({ mode: 'up' });
    const back = glpi.requests.length;
    await waitFor(async () => {
      const ready = (await (await daemon.get('/readyz')).json()) as { checks: { queue: { detail: string } } };
      return ready.checks.queue.detail.startsWith('0 pending, 0 running');
    }, 'queue drained after the outage', 30_000);

    // The design's bound: the first wave, then one request per probe.
    expect(during.length).toBeLessThanOrEqual(4 + (BREAKER_OPEN_AFTER - 1) + probes);
    // Probes are spaced by a doubling backoff (capped at retry.backoff_cap = 500 ms here, ±20 %): at most one per 400 ms once capped.
    expect(probes).toBeLessThanOrEqual(6_000 / 400 + 6);
    expect(during.filter((r) => /ITILFollowup$/.test(r.path) && r.method === 'GET')).toHaveLength(0);
    // 503 pages from the web server never landed: nothing to check when GLPI is back.
    expect(glpi.requests.slice(back).filter((r) => /ITILFollowup$/.test(r.path) && r.method === 'GET')).toHaveLength(0);
    // Every acknowledgement reached its ticket exactly once (a recurrence queued behind it may share its follow-up).
    for (let i = 0; i < HOSTS; i++) expect(glpi.followups.filter((f) => new RegExp(`outage ack ${i}(?!\\d)`).test(f.content))).toHaveLength(1);
    expect(new Set(glpi.followups.map((f) => f.items_id)).size).toBe(HOSTS);
    expect(daemon.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('GLPI looks down'))).toHaveLength(1);
    await waitFor(() => daemon.logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith('GLPI answers again')), 'breaker closed');
    expect(await (await daemon.get('/metrics')).text()).toContain('zgb_glpi_circuit_state 0');
  }, 60_000);
});
