import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { FakeGlpi } from '../../src/glpi-fake/server.js';
import { currentTestFailed, Daemon, TOKEN, waitFor } from '../helpers/daemon.js';
import { tagsJson, zabbixBody } from '../helpers/fixtures.js';

/**
 * The real daemon (built, child process, real HTTP, real SQLite file)
 * against the GLPI fake server, fed with the real Zabbix 6.0 bodies.
 */
let glpi: FakeGlpi;
let daemon: Daemon;

beforeEach(async () => {
  glpi = new FakeGlpi({ userTokens: ['user-token'] });
  await glpi.listen();
  daemon = new Daemon({ glpiUrl: glpi.url });
  await daemon.start();
});

afterEach(async () => {
  await daemon.stop();
  await glpi.close();
});

const problem = zabbixBody('problem');
const ack = zabbixBody('update-acknowledged');
const recovery = zabbixBody('recovery');

async function accepted(body: unknown): Promise<{ status: string; delivery_id: number }> {
  const res = await daemon.post(body);
  expect(res.status).toBe(202);
  return (await res.json()) as { status: string; delivery_id: number };
}

describe('ticket lifecycle', () => {
  it('problem → one ticket with the category, urgency, group and marker from the rules', async () => {
    const r = await accepted(problem);
    expect(r).toEqual({ status: 'accepted', delivery_id: 1 });
    await waitFor(() => glpi.tickets.size === 1, 'ticket created');
    const t = glpi.tickets.get(1)!;
    expect(t).toMatchObject({ urgency: 5, impact: 5, priority: 5, itilcategories_id: 11, groups_id_assign: [3], type: 1, status: 2 });
    expect(t.name).toMatch(/^\[zbx:[0-9a-f]{20}\] \[cpu\] High CPU utilization on bridge-test-01$/);
    expect(t.content).toContain('Item key: system.cpu.util');
    expect(t.content).toContain('Value: 97 %');
    const decision = daemon.decisions()[0];
    expect(decision).toMatchObject({ fingerprint: 'host=bridge-test-01|trigger=#23133', action: 'open', reason: 'new fingerprint', category: 'cpu', severity: 'disaster' });
  });

  it('duplicate delivery → the same delivery id and still one ticket', async () => {
    const first = await accepted(problem);
    const second = await accepted(problem);
    expect(second).toEqual({ status: 'duplicate', delivery_id: first.delivery_id });
    await waitFor(() => glpi.tickets.size === 1, 'ticket created');
    const third = await accepted(problem);
    expect(third.delivery_id).toBe(first.delivery_id);
    await new Promise((r) => setTimeout(r, 300));
    expect(glpi.tickets.size).toBe(1);
    expect(glpi.count('POST', 'Ticket')).toBe(1);
    expect(daemon.decisions()).toHaveLength(1);
  });

  it('problem → acknowledge → recovery: ticket, follow-up with who and what, solution', async () => {
    await accepted(problem);
    await waitFor(() => glpi.tickets.size === 1, 'ticket created');
    await accepted(ack);
    await waitFor(() => glpi.followupsOf(1).length === 1, 'follow-up added');
    expect(glpi.followupsOf(1)[0]!.content).toContain('acknowledged and commented by Zabbix Administrator (Admin)');
    expect(glpi.followupsOf(1)[0]!.content).toContain('Message: GLPI ticket #4242 opened by the bridge');
    await accepted(recovery);
    await waitFor(() => glpi.tickets.get(1)!.status === 5, 'ticket solved');
    expect(glpi.solutions).toHaveLength(1);
    expect(glpi.solutions[0]!.content).toContain('recovery event 2');
  });

  it('recurrence while open → a follow-up on the same ticket, not a second ticket', async () => {
    await accepted(problem);
    await waitFor(() => glpi.tickets.size === 1, 'ticket created');
    await accepted({ ...problem, event_id: '5', item_value: '99 %' });
    await waitFor(() => glpi.followupsOf(1).length === 1, 'follow-up added');
    expect(glpi.tickets.size).toBe(1);
    expect(glpi.followupsOf(1)[0]!.content).toMatch(/occurred again.*occurrence 2/);
  });

  it('problem after the bridge solved the ticket, within the reopen window → reopened', async () => {
    await accepted(problem);
    await accepted(recovery);
    await waitFor(() => glpi.tickets.get(1)?.status === 5, 'ticket solved');
    await accepted({ ...problem, event_id: '3' });
    await waitFor(() => glpi.tickets.get(1)!.status === 2, 'ticket reopened');
    expect(glpi.tickets.size).toBe(1);
    expect(glpi.followupsOf(1).at(-1)!.content).toContain('occurred again after being solved');
    expect(glpi.solutions[0]!.status).toBe(4);
  });

  it('severity changed in Zabbix → urgency updated and a follow-up', async () => {
    await accepted({ ...problem, event_tags: tagsJson({ component: 'network' }), item_key: 'net.if.in[eth0]', item_value: '1 bps' });
    await waitFor(() => glpi.tickets.size === 1, 'ticket created');
    expect(glpi.tickets.get(1)!.urgency).toBe(4);
    await accepted({ ...ack, event_tags: tagsJson({ component: 'network' }), event_update_action: 'changed severity from High to Disaster', event_nseverity: '5', event_severity: 'Disaster', event_update_message: '{EVENT.UPDATE.MESSAGE}' });
    // One job: the urgency is updated, then the follow-up posted.
    await waitFor(() => glpi.tickets.get(1)!.urgency === 5 && glpi.followupsOf(1).length === 1, 'urgency raised and follow-up posted');
    expect(glpi.followupsOf(1)[0]!.content).toContain('Severity: High → Disaster');
  });

  it('information severity → accepted, no ticket', async () => {
    await accepted({ ...problem, event_nseverity: '1', event_tags: '[]', item_key: 'agent.ping', trigger_name: 'Agent info', item_value: '1' });
    await waitFor(() => daemon.decisions().length === 1, 'decision');
    expect(daemon.decisions()[0]).toMatchObject({ action: 'ignore' });
    expect(glpi.tickets.size).toBe(0);
  });

  it('our own write-back message coming back as an update is ignored', async () => {
    await accepted(problem);
    await waitFor(() => glpi.tickets.size === 1, 'ticket created');
    await accepted({ ...ack, event_update_message: '[glpi-bridge] GLPI ticket #1: http://glpi/front/ticket.form.php?id=1', event_update_action: 'commented' });
    await waitFor(() => daemon.decisions().length === 2, 'decision');
    expect(daemon.decisions()[1]).toMatchObject({ action: 'ignore', reason: 'our own write-back message' });
    expect(glpi.followupsOf(1)).toHaveLength(0);
  });
});

describe('bad input', () => {
  it('a wrong or missing token → 401 with a code, nothing stored', async () => {
    const res = await daemon.post(problem, 'wrong');
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: { code: 'BRIDGE_UNAUTHORIZED' } });
    const none = await fetch(`${daemon.url}/zabbix/webhook`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(problem) });
    expect(none.status).toBe(401);
    expect(daemon.decisions()).toHaveLength(0);
  });

  it('malformed JSON and a missing field → 400 naming the problem; the daemon keeps serving', async () => {
    const bad = await daemon.post(undefined, TOKEN, '{"event_id": "1", ');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: 'BRIDGE_BAD_JSON' } });
    const { host_host: _h, ...noHost } = problem;
    const missing = await daemon.post(noHost);
    expect(missing.status).toBe(400);
    expect(await missing.json()).toMatchObject({ error: { code: 'BRIDGE_INVALID_FIELD', field: 'host_host', message: 'host_host is required' } });
    const tags = await daemon.post({ ...problem, event_tags: '[{"tag":' });
    expect(await tags.json()).toMatchObject({ error: { field: 'event_tags' } });
    const big = await daemon.post({ ...problem, event_opdata: 'x'.repeat(300_000) });
    expect(big.status).toBe(413);
    expect((await daemon.get('/healthz')).status).toBe(200);
    await accepted(problem);
    await waitFor(() => glpi.tickets.size === 1, 'ticket created after the bad requests');
  });
});

describe('operations', () => {
  it('/readyz reports store, GLPI session and queue; /metrics counts alerts and tickets', async () => {
    await accepted(problem);
    await accepted(problem);
    await waitFor(() => glpi.tickets.size === 1, 'ticket created');
    const ready = await daemon.get('/readyz');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ready: true, checks: { store: { ok: true }, glpi: { ok: true, detail: 'session open' } } });
    await waitFor(async () => (await (await daemon.get('/metrics')).text()).includes('zgb_tickets_total{operation="opened"} 1'), 'ticket metric');
    const metrics = await (await daemon.get('/metrics')).text();
    expect(metrics).toContain('zgb_alerts_received_total{source="webhook",kind="problem",outcome="accepted"} 1');
    expect(metrics).toContain('zgb_alerts_received_total{source="webhook",kind="problem",outcome="duplicate"} 1');
    expect(metrics).toMatch(/zgb_glpi_requests_total\{operation="createTicket",status="201"\} 1/);
    expect(metrics).toContain('zgb_queue_depth{state="dead"} 0');
  });

  it('SIGTERM stops cleanly: exit 0, GLPI session killed; a restart on the same store keeps the incident', async () => {
    await accepted(problem);
    await waitFor(() => glpi.tickets.size === 1, 'ticket created');
    expect(await daemon.stop()).toBe(0);
    expect(glpi.count('GET', 'killSession', 200)).toBe(1);
    daemon = new Daemon({ glpiUrl: glpi.url, dataDir: daemon.dataDir });
    await daemon.start();
    expect((await accepted(problem)).status).toBe('duplicate');
    await accepted(recovery);
    await waitFor(() => glpi.tickets.get(1)?.status === 5, 'solved after restart');
    expect(glpi.tickets.size).toBe(1);
  });

  it('logs never contain the tokens', async () => {
    await daemon.post(problem, 'wrong-token-value');
    await accepted(problem);
    await waitFor(() => glpi.tickets.size === 1, 'ticket created');
    await daemon.stop();
    const all = JSON.stringify(daemon.logs) + daemon.stderr.join('\n');
    expect(all).not.toContain(TOKEN);
    expect(all).not.toContain('user-token');
    expect(all).not.toContain('wrong-token-value');
  });
});

describe('cannot start', () => {
  it('a port already taken: exit code 1, and the log says exit_code 1 too', async () => {
    // The helper prints a failing test's daemon logs: it must be able to tell that a test failed.
    expect(currentTestFailed()).toBe(false);
    const second = new Daemon({ glpiUrl: glpi.url, listen: new URL(daemon.url).host });
    await expect(second.start()).rejects.toThrow(/daemon exited with 1 before starting/);
    expect(second.exitCode).toBe(1);
    expect(second.logs.find((l) => l.msg === 'cannot start')).toMatchObject({ level: 'fatal', err: expect.stringContaining('EADDRINUSE') });
    expect(second.logs.filter((l) => l.msg === 'bridge stopped').map((l) => l.exit_code)).toEqual([1]);
    // The first daemon is not disturbed.
    expect((await daemon.get('/healthz')).status).toBe(200);
  });
});
