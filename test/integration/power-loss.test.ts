import { afterEach, describe, expect, it } from '@jest/globals';
import { copyFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { FakeGlpi } from '../../src/glpi-fake/server.js';
import { type Daemon, startWithGlpi, waitFor } from '../helpers/daemon.js';
import { zabbixBody } from '../helpers/fixtures.js';

/**
 * A power cut, simulated: the state file (bridge.db) and its WAL are written
 * without fsync, so after a power loss they may hold only what was last
 * fsynced — here, what they held right after the daemon started (its run
 * marker is an fsynced commit). The inbox is fsynced before every 202, so it
 * keeps every accepted alert. After the restore the daemon decides on the
 * alerts again and must find the tickets it already created.
 */
let glpi: FakeGlpi;
let daemon: Daemon;

afterEach(async () => {
  await daemon?.stop('SIGKILL');
  await glpi?.close();
});

const STATE_FILES = ['bridge.db', 'bridge.db-wal', 'bridge.db-shm'];

function snapshot(dir: string): void {
  for (const f of STATE_FILES) if (existsSync(join(dir, f))) copyFileSync(join(dir, f), join(dir, `${f}.fsynced`));
}

function restore(dir: string): void {
  for (const f of STATE_FILES) {
    rmSync(join(dir, f), { force: true });
    if (existsSync(join(dir, `${f}.fsynced`))) copyFileSync(join(dir, `${f}.fsynced`), join(dir, f));
  }
}

describe('power loss', () => {
  it('state file rolled back to its last fsynced content: the alerts are decided again, and each ticket exists once', async () => {
    ({ glpi, daemon } = await startWithGlpi());
    // Idle just after start: the last fsynced state (the run marker is written with fsync).
    await new Promise((r) => setTimeout(r, 300));
    snapshot(daemon.dataDir);
    const hosts = ['pl-1', 'pl-2', 'pl-3'];
    for (const [i, h] of hosts.entries()) {
      const res = await daemon.post(zabbixBody('problem', { host_host: h, host_name: h, event_id: String(3000 + i), trigger_id: String(9000 + i) }));
      expect(res.status).toBe(202);
    }
    await waitFor(() => glpi.tickets.size === 3 && daemon.logs.filter((l) => l.msg === 'GLPI job done' && l.operation === 'opened').length === 3, 'three tickets recorded');
    await daemon.stop('SIGKILL');
    restore(daemon.dataDir);
    await daemon.start();
    await waitFor(() => daemon.logs.filter((l) => l.msg === 'GLPI job done' && (l.operation === 'adopted' || l.operation === 'opened')).length >= 6, 'creations decided again and done', 20_000);
    expect(glpi.tickets.size).toBe(3);
    // A recovery after the restore still solves the ticket it belongs to.
    const res = await daemon.post(zabbixBody('recovery', { host_host: 'pl-1', host_name: 'pl-1', event_id: '3000', trigger_id: '9000', event_recovery_id: '3100' }));
    expect(res.status).toBe(202);
    await waitFor(() => [...glpi.tickets.values()].filter((t) => t.status === 5).length === 1, 'solved after restore');
  });
});
