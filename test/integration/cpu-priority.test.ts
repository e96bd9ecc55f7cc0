import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { LOW_NICE } from '../../src/adapters/cpu-priority.js';
import { FakeGlpi } from '../../src/glpi-fake/server.js';
import { Daemon, waitFor } from '../helpers/daemon.js';
import { zabbixBody } from '../helpers/fixtures.js';

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

let glpi: FakeGlpi;
let daemon: Daemon;

beforeAll(async () => {
  glpi = new FakeGlpi({ userTokens: ['user-token'] });
  await glpi.listen();
  daemon = new Daemon({ glpiUrl: glpi.url });
  await daemon.start();
});

afterAll(async () => {
  await daemon.stop();
  await glpi.close();
});

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
