import { describe, expect, it } from '@jest/globals';
import { readMarkerKey } from '../../src/adapters/marker-key.js';
import { readStoredMarkerKey } from '../../src/adapters/store/postgres/index.js';
import { Daemon, runCli, waitFor, type LogLine } from '../helpers/daemon.js';
import { zabbixBody } from '../helpers/fixtures.js';
import { pgStoreYaml, pgTestBed, testConnection } from '../helpers/postgres.js';

/**
 * Two built daemons on one real PostgreSQL (issue 15, the gaps left): which node holds the decider and the
 * poller is said by /readyz, the status page's JSON and `status`; a second bridge started under a name a
 * running one holds does not start and says whose it is; a node killed -9 and started again at once under
 * its own name starts (its dead instance's name is taken over); `explain` on a node whose data_dir key is not
 * the cluster's shows the marker the bridges put on the ticket in GLPI.
 */
const bed = pgTestBed<Daemon>({ zabbix: true });
const nodes = bed.daemons;

function node(name: string, lease = '60s'): Daemon {
  const d = new Daemon({
    glpiUrl: bed.glpi.url,
    glpiExtra: '  timeout: 1s',
    extra: [
      // 60 s, far longer than the first test: a name freed in it is freed by its holder's ended session, not by age.
      pgStoreYaml(bed.cluster.url('postgres'), { node: name, lease }),
      'zabbix:',
      `  url: ${bed.zabbix.url!}`,
      '  api_token: zbx-token',
      '  auth: body',
      '  poll:',
      "    schedule: '*/1 * * * * *'",
    ].join('\n'),
  });
  nodes.push(d);
  return d;
}

function logged(d: Daemon, msg: string): LogLine[] {
  return d.logs.filter((l) => l.msg === msg);
}

type Check = { ok: boolean; detail: string };
async function clusterCheck(d: Daemon): Promise<Check | undefined> {
  const body = (await (await d.get('/readyz')).json()) as { checks: Record<string, Check> };
  return body.checks.cluster;
}

interface ClusterJson {
  node: string;
  roles: string[];
  nodes: { name: string; roles: string[]; pid: number; stopped: boolean }[];
}

describe('bridges on one PostgreSQL: who is who', () => {
  it('says which node holds which role, refuses a second bridge under a held name, lets a killed node start again at once under its own, and explains with the cluster marker key', async () => {
    const a = node('alpha');
    await a.start();
    await waitFor(() => logged(a, 'this node is the decider now').length === 1 && logged(a, 'this node is the poller now').length === 1, 'alpha holds both roles');

    // A second bridge under alpha's name (another data_dir, as on another host with a copied configuration).
    const twin = node('alpha');
    await expect(twin.start()).rejects.toThrow(/exited with 1 before starting/);
    const said = twin.stderr.join('\n');
    expect(said).toContain('NODE_NAME_IN_USE');
    expect(said).toContain('store.postgres.node_name "alpha"');
    expect(said).toContain(`pid ${a.pid}`);
    expect(said).toContain('set a distinct store.postgres.node_name');
    expect(logged(twin, 'this node is the decider now')).toEqual([]);

    const b = node('beta');
    await b.start();
    expect(await clusterCheck(a)).toEqual({ ok: true, detail: 'node alpha: decider, poller; other nodes: beta standby' });
    expect(await clusterCheck(b)).toEqual({ ok: true, detail: 'node beta: standby (neither decider nor poller); other nodes: alpha decider+poller' });

    // The status page's JSON (loopback, no admin token configured), and `status` in a terminal.
    const page = (await (await b.get('/status?format=json')).json()) as { cluster: ClusterJson };
    expect(page.cluster.node).toBe('beta');
    expect(page.cluster.roles).toEqual([]);
    expect(page.cluster.nodes.map((n) => [n.name, n.roles, n.pid, n.stopped])).toEqual([
      ['alpha', ['decider', 'poller'], a.pid, false],
      ['beta', [], b.pid, false],
    ]);
    const html = await (await b.get('/status')).text();
    expect(html).toContain('id="cluster-table"');
    expect(html).toMatch(/This node: <strong>beta<\/strong> — standby/);
    const cli = await runCli(['status', '--config', b.configFile]);
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain('cluster: this node beta: standby');
    expect(cli.stdout).toMatch(/^ {2}alpha: decider, poller, heard from \d+ s ago · host .+, pid \d+, started /m);

    // alpha killed and started again at once, under its name: not refused (its session ended with it).
    const killedPid = a.pid;
    await a.stop('SIGKILL');
    await a.start();
    expect(a.pid).not.toBe(killedPid);
    expect(logged(a, 'this node took over its name from a bridge that is gone')).toEqual([
      expect.objectContaining({ node: 'alpha', previous_pid: killedPid, why: 'its session to PostgreSQL has ended' }),
    ]);
    await waitFor(async () => (await clusterCheck(b))?.detail === 'node beta: decider, poller; other nodes: alpha standby', 'beta holds both roles, alpha is a standby', 20_000);
    expect(await clusterCheck(a)).toEqual({ ok: true, detail: 'node alpha: standby (neither decider nor poller); other nodes: beta decider+poller' });

    // beta's data_dir key is its own; the bridges render markers with the one in the database (alpha's, the first).
    const stored = readStoredMarkerKey(testConnection(bed.cluster.url('postgres')));
    expect(stored).toBe(readMarkerKey(a.dataDir));
    expect(readMarkerKey(b.dataDir)).not.toBe(stored);
    const body = zabbixBody('problem', { host_host: 'web-7', host_name: 'web-7', event_id: '73001', trigger_id: '83001' });
    expect((await b.post(body)).status).toBe(202);
    await waitFor(() => bed.glpi.tickets.size === 1, 'the ticket of web-7 is in GLPI', 20_000);
    const [ticket] = [...bed.glpi.tickets.values()];
    const explained = await runCli(['explain', '--config', b.configFile, '-'], undefined, JSON.stringify(body));
    expect(explained.code).toBe(0);
    const out = JSON.parse(explained.stdout) as { ticket: { marker: string }; marker_key?: string };
    expect(out.marker_key).toBeUndefined();
    expect(ticket!.name.startsWith(`${out.ticket.marker} `)).toBe(true);
  }, 180_000);

  it('takes over the name of a bridge stopped for longer than a lease; that one, running again, says its name was taken and is not ready', async () => {
    const first = node('gamma', '3s');
    await first.start();
    process.kill(first.pid, 'SIGSTOP');
    try {
      await new Promise((r) => setTimeout(r, 4500)); // its heartbeat is older than the lease; its session stays open
      const second = node('gamma', '3s');
      await second.start();
      expect(logged(second, 'this node took over its name from a bridge that is gone')).toEqual([
        expect.objectContaining({ node: 'gamma', previous_pid: first.pid, why: expect.stringMatching(/^not heard from for \d+ s$/) }),
      ]);
    } finally {
      process.kill(first.pid, 'SIGCONT');
    }
    await waitFor(() => logged(first, "another bridge took this node's name while this one was not heard from (stopped longer than a lease): /readyz fails; stop this bridge, or give it its own store.postgres.node_name").length === 1, 'the first one finds out', 20_000);
    const ready = await first.get('/readyz');
    expect(ready.status).toBe(503);
    const check = ((await ready.json()) as { checks: Record<string, Check> }).checks.cluster;
    expect(check).toEqual({ ok: false, detail: expect.stringMatching(/^NODE_NAME_IN_USE: node gamma: another bridge \(host .+, pid \d+\) took this name/) });
    expect(await first.stop()).toBe(0);
  }, 120_000);
});
