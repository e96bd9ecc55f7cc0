import { describe, expect, it } from '@jest/globals';
import { statusPage } from '../../src/adapters/http/status/html.js';
import { statusSummary, type ClusterSummary } from '../../src/adapters/http/status/summary.js';
import { MemoryStore } from '../../src/adapters/store/memory/memory-store.js';
import { clusterCheck } from '../../src/composition/cluster.js';

/**
 * Several bridges on one PostgreSQL, as the status page and /readyz say it (the database side, and two real
 * daemons, are in test/adapters/postgres-cluster.test.ts and test/integration/postgres-cluster.test.ts): this
 * node and its roles, the others with theirs, a stopped one, a name taken; node names and hosts are
 * configuration and database text, rendered as text.
 */
const T = 1_800_000_000_000;
const HOSTILE = '<script>alert(1)</script>';

const cluster = (over: Partial<ClusterSummary> = {}): ClusterSummary => ({
  node: 'beta',
  roles: [],
  nodes: [
    { name: 'alpha', host: 'db-host-1', pid: 101, startedAt: new Date(T - 3_600_000).toISOString(), heardFromSecondsAgo: 1, stopped: false, roles: ['decider', 'poller'] },
    { name: 'beta', host: 'db-host-2', pid: 202, startedAt: new Date(T - 60_000).toISOString(), heardFromSecondsAgo: 0, stopped: false, roles: [] },
    { name: HOSTILE, host: HOSTILE, pid: 303, startedAt: new Date(T - 7_200_000).toISOString(), heardFromSecondsAgo: 600, stopped: true, roles: [] },
  ],
  ...over,
});

function page(c: ClusterSummary | undefined): string {
  const s = statusSummary(new MemoryStore(), { page: 1, filter: {} }, { now: T, source: 'daemon', ticketUrl: (id) => `https://glpi/${id}`, ...(c ? { cluster: c } : {}) });
  return statusPage(s, { csrf: 'csrf', canLogout: false, categories: [] });
}

describe('status page and /readyz: the bridges on one PostgreSQL', () => {
  it('shows this node and its roles, every node with its roles, host, pid and last heartbeat, a stopped one as stopped; node text escaped', () => {
    const html = page(cluster());
    expect(html).toContain('This node: <strong>beta</strong> — standby.');
    expect(html).toMatch(/<tr><td>alpha<\/td><td class="roles">decider, poller<\/td><td>db-host-1<\/td><td class="num">101<\/td><td>[^<]+<\/td><td>1 s ago<\/td><\/tr>/);
    expect(html).toContain('<tr class="self"><td>beta <span class="note">(this node)</span></td><td class="roles">standby</td>');
    expect(html).toMatch(/<td class="roles"><span class="note">stopped<\/span><\/td>/);
    expect(html).not.toContain(HOSTILE);
    expect(html).toContain('&#60;script&#62;');
  });

  it('says when another bridge took this node\'s name, and when the nodes cannot be read; nothing of it with one node (SQLite)', () => {
    expect(page(cluster({ nameLostTo: { host: 'other-host', pid: 4242 } }))).toContain('Another bridge (host other-host, pid 4242) took this node\'s name while it was not heard from: NODE_NAME_IN_USE.');
    expect(page({ node: 'beta', roles: [], nodes: [], error: 'PostgreSQL is unreachable: connect ECONNREFUSED' })).toContain('The nodes could not be read: PostgreSQL is unreachable: connect ECONNREFUSED');
    expect(page(undefined)).not.toContain('id="cluster"');
  });

  it('/readyz\'s cluster check: ok with this node\'s name and roles and the running others\'; not ok when its name was taken or the nodes cannot be read', () => {
    expect(clusterCheck(cluster())).toEqual({ ok: true, detail: 'node beta: standby (neither decider nor poller); other nodes: alpha decider+poller' });
    expect(clusterCheck(cluster({ node: 'alpha', roles: ['decider', 'poller'], nodes: cluster().nodes.slice(0, 1) }))).toEqual({ ok: true, detail: 'node alpha: decider, poller; no other node running' });
    expect(clusterCheck(cluster({ nameLostTo: { host: 'h2', pid: 7 } }))).toEqual({ ok: false, detail: 'NODE_NAME_IN_USE: node beta: another bridge (host h2, pid 7) took this name while this one was not heard from' });
    expect(clusterCheck({ node: 'beta', roles: [], nodes: [], error: 'down' })).toEqual({ ok: false, detail: 'node beta: roles unknown: down' });
  });
});
