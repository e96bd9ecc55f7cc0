/**
 * `zabbix-glpi-bridge status` when the daemon does not answer: the same summary the page shows, read from
 * the store's files, in text and JSON; no connection state nor history (those live in the daemon). The
 * daemon's side (GET /status?format=json) is test/integration/status-page.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { SqliteStore } from '../../src/adapters/store/sqlite/index.js';
import { daemonUrl, statusCommand } from '../../src/cli/status.js';
import type { JobSpec } from '../../src/core/decide.js';
import { CONFIG_ENV, Daemon } from '../helpers/daemon.js';

const T = Date.now() - 3_600_000;
const saved = { ...process.env };
beforeEach(() => {
  Object.assign(process.env, CONFIG_ENV);
});
afterEach(() => {
  for (const k of Object.keys(CONFIG_ENV)) if (!(k in saved)) delete process.env[k];
});

/** A port nothing listens on (the daemon is stopped). */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function sink(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  return { stream: new Writable({ write: (c: Buffer, _e, done) => (chunks.push(c.toString()), done()) }), text: () => chunks.join('') };
}

const create: JobSpec = {
  type: 'create_ticket', delayMs: 0,
  ticket: { name: 'n', content: 'c', marker: '[zbx:m]', urgency: 3, impact: 3, type: 1, itilcategories_id: 0, entities_id: 0, requesttypes_id: 0, groups_id_assign: 0 },
};

describe('status without a running daemon', () => {
  it('reads the store: counts, open incidents with their ticket link, dead letters with their error, last decisions', async () => {
    const port = await closedPort();
    const d = new Daemon({ glpiUrl: 'http://glpi.example/apirest.php', listen: `127.0.0.1:${port}` });
    const store = new SqliteStore(join(d.dataDir, 'bridge.db'));
    store.transaction(() => {
      store.putIncident({ fingerprint: 'host=web-1|trigger=#1', cycle: 1, status: 'open', marker: '[zbx:a]', category: 'cpu', severity: 'high', urgency: 4, impact: 4, openCount: 1, occurrences: 3, openedAt: T }, T);
      store.putTicket('host=web-1|trigger=#1', 1, 42, '[zbx:a]', T);
      store.putIncident({ fingerprint: 'host=db-1|trigger=#2', cycle: 1, status: 'open', marker: '[zbx:b]', category: 'disk', severity: 'average', urgency: 3, impact: 3, openCount: 1, occurrences: 1, openedAt: T }, T);
      store.recordDecisions([{ at: T, deliveryId: 1, eventId: '1', kind: 'problem', host: 'web-1', fingerprint: 'host=web-1|trigger=#1', category: 'cpu', severity: 'high', action: 'open', reason: 'new fingerprint', jobs: ['create_ticket'] }], 500);
    }, 'crash-safe');
    const job = store.enqueue('host=db-1|trigger=#2', 1, create, T, T);
    store.claimReady(T, 10, new Set());
    store.buryJob(job, 'GLPI_PERMANENT ERROR_GLPI_ADD: GLPI answered 400', T);
    store.close();

    const out = sink();
    const err = sink();
    expect(await statusCommand(d.configFile, false, out.stream, err.stream)).toBe(0);
    const text = out.text();
    expect(text).toMatch(new RegExp(`^not answering: read from the store \\(.*\\); no answer from http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED: not running\\?\\)`));
    expect(text).toContain('open incidents 2 · pending jobs 0 · running 0 · dead letters 1 · parked alerts 0 · alerts to decide 0');
    expect(text).toMatch(/#42 high cpu 1 h 0 min ×3 host=web-1\|trigger=#1\n {6}http:\/\/glpi\.example\/front\/ticket\.form\.php\?id=42/);
    expect(text).toMatch(/#1 create_ticket host=db-1\|trigger=#2 attempts 1\n {6}GLPI_PERMANENT ERROR_GLPI_ADD: GLPI answered 400/);
    expect(text).toContain(`zabbix-glpi-bridge queue retry --config ${d.configFile} ID|--all`);
    expect(text).toMatch(/web-1 problem → open: new fingerprint/);
    expect(text).not.toContain('connections:');

    const json = sink();
    expect(await statusCommand(d.configFile, true, json.stream, err.stream)).toBe(0);
    const s = JSON.parse(json.text()) as Record<string, unknown>;
    expect(s).toMatchObject({ source: 'store', counts: { openIncidents: 2, dead: 1 }, incidents: { page: 1, pages: 1, perPage: 50 } });
    expect(s.connections).toBeUndefined();
    expect(s.history).toBeUndefined();
    expect(err.text()).toBe('');
  });

  it('says so (exit 1) when there is no store either', async () => {
    const d = new Daemon({ glpiUrl: 'http://glpi.example/apirest.php', listen: `127.0.0.1:${await closedPort()}` });
    const out = sink();
    const err = sink();
    expect(await statusCommand(d.configFile, false, out.stream, err.stream)).toBe(1);
    expect(err.text()).toMatch(/no answer from .*; and no store at .*bridge\.db \(the daemon has not run with this configuration\)/);
  });

  it('asks a daemon listening on every address on loopback', () => {
    expect(daemonUrl('0.0.0.0:8088')).toBe('http://127.0.0.1:8088');
    expect(daemonUrl('[::]:8088')).toBe('http://[::1]:8088');
    expect(daemonUrl('10.0.0.5:8088')).toBe('http://10.0.0.5:8088');
  });
});
