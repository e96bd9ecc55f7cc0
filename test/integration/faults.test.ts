import { afterEach, describe, expect, it } from '@jest/globals';
import { writeFileSync } from 'node:fs';
import { FakeGlpi } from '../../src/glpi-fake/server.js';
import { Daemon, runCli, waitFor } from '../helpers/daemon.js';
import { exampleRulesYaml, exampleRulesYamlUnknownCpuCategory, zabbixBody } from '../helpers/fixtures.js';

/**
 * Faults inflicted on the GLPI side while the real daemon runs: outage,
 * refused connections, 5xx, 429, session expiry, hangs, lost answers after
 * commit, permanent errors. The end state is checked: every ticket, follow-up
 * and solution exactly once.
 */
let glpi: FakeGlpi;
let daemon: Daemon;

afterEach(async () => {
  await daemon?.stop();
  await glpi?.close();
});

async function setup(opts: { categories?: number[]; glpiExtra?: string; env?: Record<string, string> } = {}): Promise<void> {
  glpi = new FakeGlpi({ userTokens: ['user-token'], ...(opts.categories ? { categories: opts.categories } : {}) });
  await glpi.listen();
  daemon = new Daemon({ glpiUrl: glpi.url, glpiExtra: opts.glpiExtra ?? '  timeout: 1s', ...(opts.env ? { env: opts.env } : {}) });
  await daemon.start();
}

/** N incidents: problem for each host, acknowledge for even ones, recovery for every third. */
function scenario(n: number): { bodies: Record<string, string>[]; solved: number; acked: number } {
  const bodies: Record<string, string>[] = [];
  let solved = 0;
  let acked = 0;
  for (let i = 0; i < n; i++) {
    const host = `host-${i}`;
    const common = { host_host: host, host_name: host, event_id: String(1000 + i), trigger_id: String(5000 + i) };
    bodies.push(zabbixBody('problem', common));
    if (i % 2 === 0) {
      bodies.push(zabbixBody('update-acknowledged', { ...common, event_update_message: `ack ${i}` }));
      acked++;
    }
    if (i % 3 === 0) {
      bodies.push(zabbixBody('recovery', { ...common, event_recovery_id: String(9000 + i) }));
      solved++;
    }
  }
  return { bodies, solved, acked };
}

async function send(bodies: readonly Record<string, string>[]): Promise<void> {
  for (const b of bodies) {
    const res = await daemon.post(b);
    expect(res.status).toBe(202);
  }
}

function expectExactlyOnce(n: number, solved: number, acked: number): void {
  const tickets = [...glpi.tickets.values()];
  expect(tickets).toHaveLength(n);
  expect(new Set(tickets.map((t) => t.name)).size).toBe(n);
  expect(tickets.filter((t) => t.status === 5)).toHaveLength(solved);
  expect(glpi.solutions).toHaveLength(solved);
  const acks = glpi.followups.filter((f) => f.content.includes('Message: ack '));
  expect(acks).toHaveLength(acked);
  expect(new Set(acks.map((f) => f.content)).size).toBe(acked);
}

/**
 * Every ticket, solution and acknowledgement follow-up is in GLPI (more may still come: expectExactlyOnce after
 * drained() is what finds a duplicate). The queue's count alone does not cover an acknowledgement not decided yet.
 */
function landed(n: number, solved: number, acked: number): boolean {
  return glpi.tickets.size === n && glpi.solutions.length === solved && glpi.followups.filter((f) => f.content.includes('Message: ack ')).length >= acked;
}

async function drained(): Promise<void> {
  await waitFor(async () => {
    const ready = (await (await daemon.get('/readyz')).json()) as { checks: { queue: { detail: string } } };
    return ready.checks.queue.detail.startsWith('0 pending, 0 running');
  }, 'queue drained', 30_000);
}

describe('GLPI outage', () => {
  it.each([
    ['503 from the web server', 'unavailable'],
    ['connection refused', 'refuse'],
  ] as const)('%s: alerts keep being accepted; everything lands exactly once when GLPI is back', async (_n, mode) => {
    await setup();
    glpi.setFaults({ mode });
    const { bodies, solved, acked } = scenario(20);
    await send(bodies);
    await new Promise((r) => setTimeout(r, 1500));
    expect(glpi.tickets.size).toBe(0);
    const metrics = await (await daemon.get('/metrics')).text();
    expect(metrics).toMatch(/zgb_queue_depth\{state="pending"\} [1-9]/);
    glpi.setFaults({ mode: 'up' });
    await waitFor(() => landed(20, solved, acked), 'backlog applied', 30_000);
    await drained();
    expectExactlyOnce(20, solved, acked);
    const warnings = daemon.logs.filter((l) => l.msg === 'GLPI request failed; job will be retried');
    expect(warnings.length).toBeLessThanOrEqual(2);
  });
});

describe('transient faults', () => {
  it('30 % of requests answered 500: every ticket, follow-up and solution exactly once', async () => {
    await setup();
    glpi.setFaults({ errorRate: 0.3 });
    const { bodies, solved, acked } = scenario(15);
    await send(bodies);
    await waitFor(() => landed(15, solved, acked), 'all applied', 30_000);
    await drained();
    expectExactlyOnce(15, solved, acked);
  });

  it('429 with Retry-After: honoured, nothing lost', async () => {
    await setup();
    glpi.setFaults({ rateLimitNext: 3, retryAfterSeconds: 1 });
    const { bodies, solved, acked } = scenario(4);
    await send(bodies);
    await waitFor(() => landed(4, solved, acked), 'all applied', 20_000);
    await drained();
    expectExactlyOnce(4, solved, acked);
    expect(glpi.requests.filter((r) => r.status === 429)).toHaveLength(3);
  });

  it('a create whose answer is lost after GLPI committed it does not produce a second ticket', async () => {
    await setup();
    glpi.setFaults({ dropAfterCommitNext: 1 });
    await send([zabbixBody('problem')]);
    await waitFor(() => daemon.logs.some((l) => l.msg === 'GLPI job done'), 'job done');
    expect(glpi.tickets.size).toBe(1);
    expect(glpi.count('GET', 'search/Ticket')).toBeGreaterThanOrEqual(1);
    expect(daemon.logs.find((l) => l.msg === 'GLPI job done')).toMatchObject({ operation: 'adopted', ticket_id: 1 });
  });

  it('a follow-up whose answer is lost is not posted twice', async () => {
    await setup();
    await send([zabbixBody('problem')]);
    await waitFor(() => glpi.tickets.size === 1, 'ticket');
    glpi.setFaults({ dropAfterCommitNext: 1 });
    await send([zabbixBody('update-acknowledged')]);
    await drained();
    await waitFor(() => glpi.followups.length >= 1, 'follow-up');
    expect(glpi.followups).toHaveLength(1);
  });

  it('GLPI hanging past the client timeout is retried', async () => {
    await setup({ glpiExtra: '  timeout: 300ms' });
    await send([zabbixBody('problem')]);
    await waitFor(() => glpi.tickets.size === 1, 'ticket');
    glpi.setFaults({ hangNext: 1 });
    await send([zabbixBody('recovery')]);
    await waitFor(() => glpi.solutions.length === 1, 'solution after the hang', 20_000);
    expect(glpi.tickets.get(1)!.status).toBe(5);
  });

  it('session expiry mid-stream: one new session, no failure counted', async () => {
    await setup();
    const { bodies } = scenario(6);
    await send(bodies.slice(0, 4));
    await waitFor(() => glpi.tickets.size >= 2, 'first tickets');
    glpi.expireSessions();
    await send(bodies.slice(4));
    await waitFor(() => glpi.tickets.size === 6, 'all tickets');
    await drained();
    expect(glpi.sessionsOpened).toBe(2);
    const metrics = await (await daemon.get('/metrics')).text();
    expect(metrics).not.toMatch(/zgb_job_retries_total\{/);
    expect(metrics).toContain('zgb_glpi_sessions_total{reason="expired"} 1');
  });

  it('a login that keeps failing pauses dispatch with a clear error instead of looping', async () => {
    await setup({ env: { GLPI_USER_TOKEN: 'revoked-token' } });
    await send(scenario(3).bodies);
    await waitFor(() => daemon.logs.some((l) => l.code === 'GLPI_LOGIN_FAILED'), 'login error logged with its code');
    await new Promise((r) => setTimeout(r, 1500));
    expect(glpi.count('GET', 'initSession')).toBeLessThanOrEqual(2);
    const ready = await daemon.get('/readyz');
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ ready: false, checks: { glpi: { ok: false, detail: expect.stringContaining('ERROR_GLPI_LOGIN_USER_TOKEN') } } });
    expect(glpi.tickets.size).toBe(0);
  });
});

describe('permanent errors', () => {
  it('a 400 for an unknown category goes to the dead letters with its reason; queue retry after fixing the rule uses the fixed rule', async () => {
    glpi = new FakeGlpi({ userTokens: ['user-token'], categories: [11, 12, 13, 14, 15] });
    await glpi.listen();
    // The operator's rules name a category GLPI does not have (a typo: 111 for 11).
    daemon = new Daemon({ glpiUrl: glpi.url, glpiExtra: '  timeout: 1s', rulesYaml: exampleRulesYamlUnknownCpuCategory() });
    await daemon.start();
    await send([zabbixBody('problem'), zabbixBody('update-acknowledged')]);
    await waitFor(() => daemon.logs.filter((l) => l.msg === 'job moved to dead letters').length === 2, 'dead letters');
    const listed = await runCli(['queue', '--config', daemon.configFile]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/dead letters: 2/);
    expect(listed.stdout).toMatch(/GLPI_PERMANENT ERROR_GLPI_ADD: GLPI answered 400 ERROR_GLPI_ADD/);
    expect(listed.stdout).toContain('GLPI_TICKET_MISSING');
    const json = JSON.parse((await runCli(['queue', '--config', daemon.configFile, '--json'])).stdout) as { dead: { spec: { type: string } }[] };
    expect(json.dead.map((d) => d.spec.type)).toEqual(['create_ticket', 'followup']);
    // The operator fixes the rule, not GLPI.
    writeFileSync(daemon.rulesFile, exampleRulesYaml());
    const retried = await runCli(['queue', 'retry', '--config', daemon.configFile, '--all']);
    expect(retried.stdout).toContain('2 dead letter(s) queued again');
    expect(retried.stdout).toContain('1 ticket creation(s) rendered again with the rules in force');
    await waitFor(() => glpi.tickets.size === 1 && glpi.followups.length === 1, 'applied after retry', 20_000);
    expect(glpi.tickets.get(1)!.itilcategories_id).toBe(11);
    expect((await runCli(['queue', '--config', daemon.configFile])).stdout).toMatch(/dead letters: 0/);
  });
});
