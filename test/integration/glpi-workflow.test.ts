import { afterEach, describe, expect, it } from '@jest/globals';
import type { FakeGlpi } from '../../src/glpi-fake/server.js';
import { type Daemon, runCli, startWithGlpi, waitFor } from '../helpers/daemon.js';
import { zabbixBody } from '../helpers/fixtures.js';

/**
 * GLPI states the bridge does not set itself, as a technician leaves them:
 * Pending (a recurrence must not pull the ticket out of it) and Closed (GLPI
 * refuses follow-ups; the open problems need a new ticket, not a dead letter).
 */
let glpi: FakeGlpi;
let daemon: Daemon;

afterEach(async () => {
  await daemon?.stop();
  await glpi?.close();
});

const common = { host_host: 'wf-01', host_name: 'wf-01', trigger_id: '4242' };
const problem = (eventId: string) => zabbixBody('problem', { ...common, event_id: eventId });
const recovery = (eventId: string) => zabbixBody('recovery', { ...common, event_id: eventId, event_recovery_id: `9${eventId}` });

async function post(body: Record<string, string>): Promise<void> {
  const res = await daemon.post(body);
  expect(res.status).toBe(202);
}

describe('GLPI workflow states', () => {
  it('a recurrence on a Pending ticket keeps it pending; on a Closed ticket the open problems get a new ticket; recoveries solve it', async () => {
    ({ glpi, daemon } = await startWithGlpi());
    await post(problem('501'));
    await waitFor(() => glpi.tickets.size === 1, 'first ticket');
    glpi.setTicketStatus(1, 4); // a technician: waiting for the vendor
    await post(problem('502'));
    await waitFor(() => glpi.followupsOf(1).length === 1, 'recurrence follow-up');
    expect(glpi.tickets.get(1)!.status).toBe(4);
    glpi.setTicketStatus(1, 6); // a technician closes it while Zabbix still has the problems open
    await post(problem('503'));
    await waitFor(() => glpi.tickets.size === 2, 'a new ticket for the problems still open', 20_000);
    expect(glpi.tickets.get(1)!.status).toBe(6);
    expect(glpi.tickets.get(2)!.status).toBeLessThan(5);
    await post(recovery('501'));
    await post(recovery('502'));
    await post(recovery('503'));
    await waitFor(() => glpi.tickets.get(2)!.status === 5, 'the new ticket solved once every problem recovered');
    expect(glpi.tickets.size).toBe(2);
    const queue = await runCli(['queue', '--config', daemon.configFile]);
    expect(queue.stdout).toMatch(/dead letters: 0/);
  });
});
