import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { FakeGlpi } from '../../src/glpi-fake/server.js';
import { Daemon, waitFor } from '../helpers/daemon.js';
import { zabbixBody } from '../helpers/fixtures.js';

/**
 * The daemon's standard output is non-blocking (Node makes it so once the processing thread exists). A reader that
 * falls behind (journald under load) must neither hold a webhook nor lose log lines: they wait, in order, and go out
 * once it reads again (observability/logger.ts BatchedLines).
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
  daemon.resumeOutput();
  await daemon.stop();
  await glpi.close();
});

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
