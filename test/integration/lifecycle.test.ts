import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { LOW_NICE } from '../../src/adapters/cpu-priority.js';
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

/**
 * Issue 16: the webhook's answer never waits for decisions. The real daemon's processing thread runs at SCHED_IDLE
 * (a nice value alone still holds a waking thread for the rest of a time slice on Linux 6.6 and later), and the
 * thread answering Zabbix keeps its normal priority.
 */
const SCHED_OTHER = 0;
const SCHED_IDLE = 5;

/** Each thread's scheduling policy and nice value, from /proc (stat fields 41 and 19). */
function threads(pid: number): { tid: number; policy: number; nice: number }[] {
  return readdirSync(`/proc/${pid}/task`).map((t) => {
    const fields = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return { tid: Number(t), policy: Number(fields[38]), nice: Number(fields[16]) };
  });
}

const hasChrt = (() => {
  try {
    execFileSync('chrt', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

(process.platform === 'linux' && hasChrt ? describe : describe.skip)('CPU priority of the daemon threads (Linux, chrt installed)', () => {
  it('runs exactly one thread, the processing thread, at SCHED_IDLE and nice 19; the others as the daemon was started', async () => {
    await waitFor(() => daemon.logs.some((l) => l.msg.startsWith('processing thread runs at SCHED_IDLE')), 'the processing thread lowered itself');
    const all = threads(daemon.pid);
    const idle = all.filter((t) => t.policy === SCHED_IDLE);
    expect(idle).toHaveLength(1);
    expect(idle[0]!.nice).toBe(LOW_NICE);
    expect(idle[0]!.tid).not.toBe(daemon.pid);
    const main = all.find((t) => t.tid === daemon.pid)!;
    const started = threads(process.pid).find((t) => t.tid === process.pid)!;
    expect(main).toEqual({ tid: daemon.pid, policy: SCHED_OTHER, nice: started.nice });
    expect(all.filter((t) => t.policy !== SCHED_IDLE).every((t) => t.policy === SCHED_OTHER && t.nice === started.nice)).toBe(true);
    expect(daemon.logs.find((l) => l.msg.startsWith('processing thread'))).toMatchObject({ level: 'info', cpu_policy: 'idle' });
  });

  it('still decides and opens the ticket with its thread lowered', async () => {
    expect((await daemon.post(zabbixBody('problem'))).status).toBe(202);
    await waitFor(() => glpi.tickets.size === 1, 'ticket created by the processing thread');
    expect(daemon.decisions()).toHaveLength(1);
  });
});

/**
 * The daemon's standard output is non-blocking (Node makes it so once the processing thread exists). A reader that
 * falls behind (journald under load) must neither hold a webhook nor lose log lines: they wait, in order, and go out
 * once it reads again (observability/logger.ts BatchedLines).
 */
async function metric(name: string): Promise<string[]> {
  const text = await (await daemon.get('/metrics')).text();
  return text.split('\n').filter((l) => l.startsWith(`${name}{`));
}

describe('a log reader that falls behind', () => {
  it('holds no webhook and loses no line: every decision line arrives, in order, once it reads again', async () => {
    const problem = zabbixBody('problem');
    const first = await daemon.post(problem);
    expect(first.status).toBe(202);
    await waitFor(() => glpi.tickets.size === 1, 'the ticket');
    await waitFor(() => daemon.decisions().length === 1, 'the first decision line');

    daemon.pauseOutput();
    const linesBefore = daemon.output.length;
    // Debug lines for 1,200 recurrences (a decision and the dispatch lines each): several times what the socket
    // between the daemon and this test holds, and Node's buffer on this side.
    const N = 1_200;
    for (let i = 0; i < N; i++) {
      const res = await daemon.post({ ...problem, event_id: String(10_000 + i), item_value: `${i} %` });
      expect(res.status).toBe(202);
    }
    await waitFor(async () => (await metric('zgb_decisions_total')).reduce((n, l) => n + Number(l.split(' ')[1]), 0) === N + 1, 'every alert decided', 60_000);
    // Nothing was read meanwhile; nothing was dropped either.
    expect(daemon.output.length - linesBefore).toBeLessThan(N);
    expect(await metric('zgb_log_lines_dropped_total')).toEqual(['zgb_log_lines_dropped_total{thread="main"} 0', 'zgb_log_lines_dropped_total{thread="processing"} 0']);

    daemon.resumeOutput();
    await waitFor(() => daemon.decisions().length === N + 1, `${N + 1} decision lines`, 30_000);
    const ids = daemon.decisions().map((l) => Number(l.delivery_id));
    expect(ids).toEqual(Array.from({ length: N + 1 }, (_, i) => i + 1));
    expect(daemon.output.filter((l) => l.startsWith('{')).every((l) => JSON.parse(l) !== null)).toBe(true);
    expect(daemon.logs.filter((l) => l.code === 'LOG_LINES_DROPPED')).toEqual([]);
  }, 120_000);
});
