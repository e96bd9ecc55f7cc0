/**
 * The GLPI read-back's search (ticketsModifiedSince, issue 14 item 5) when GLPI sends a row the bridge cannot
 * use: both clients (legacy apirest.php and the high-level API v2) leave that row out, keep every other row,
 * say so in one warning per search (so once per sweep) naming each ticket id and the field that was wrong, and
 * count it in zgb_glpi_rows_refused_total{operation,field}. Before, the legacy client dropped such rows without
 * a word and the v2 client failed the whole answer (the sweep read nothing, every sweep, for one bad row).
 * nock plays GLPI: the fakes only send well-formed rows.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import nock from 'nock';
import { pino } from 'pino';
import { GlpiClient } from '../../src/adapters/glpi/client.js';
import { GlpiV2Client } from '../../src/adapters/glpi/v2/client.js';
import { Secret } from '../../src/config/secret.js';
import type { Logger } from '../../src/observability/logger.js';
import { createMetrics, type Metrics } from '../../src/observability/metrics.js';
import { useNock } from '../helpers/nock.js';

useNock();
afterEach(() => nock.cleanAll());

const ROOT = 'http://glpi.test';

interface Line {
  level: number;
  msg: string;
  operation?: string;
  refused?: number;
  rows?: { ticket_id: number | null; field: string; got: string }[];
}

function logging(): { logger: Logger; logs: Line[] } {
  const logs: Line[] = [];
  const logger: Logger = pino({ level: 'debug' }, { write: (l: string) => void logs.push(JSON.parse(l) as Line) });
  return { logger, logs };
}

const refusedWarnings = (logs: Line[]) => logs.filter((l) => l.level === 40 && l.refused !== undefined);

async function refusedCount(metrics: Metrics): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await metrics.glpiRowsRefused.get()).values) out[`${String(v.labels.operation)}/${String(v.labels.field)}`] = v.value;
  return out;
}

describe('legacy apirest.php: search/Ticket rows of the read-back', () => {
  const legacy = (logger: Logger, metrics: Metrics) =>
    new GlpiClient({ url: `${ROOT}/apirest.php`, appToken: new Secret('app'), userToken: new Secret('user'), username: '', password: new Secret(''), timeoutMs: 2000, logger, metrics, externalId: 'off' });

  /** GLPI's search answer with these rows (columns by search option: 2 id, 12 status, 19 date_mod). */
  const answer = (data: unknown[]) => ({ totalcount: data.length, count: data.length, data });

  it('keeps the good rows, leaves out each malformed one, and says so once per sweep with the ticket id and the field', async () => {
    const { logger, logs } = logging();
    const metrics = createMetrics({ processMetrics: false });
    const rows = [
      { '2': 11, '12': 5, '19': '2026-12-02 08:00:00' },
      { '2': 12, '12': null, '19': '2026-12-02 08:00:01' }, // status missing
      { '2': '13', '12': '6', '19': '02/12/2026 08:00' }, // date_mod not GLPI's datetime (text columns are fine)
      { '2': 'abc', '12': 5, '19': '2026-12-02 08:00:02' }, // no usable id
      { '2': 15, '12': 6, '19': '2026-12-02 08:00:03' },
    ];
    nock(ROOT)
      .get('/apirest.php/initSession')
      .query(true)
      .reply(200, { session_token: 's1', session: { glpiID: 7, glpiname: 'zabbix-bridge' } })
      .get('/apirest.php/search/Ticket')
      .query((q) => q['criteria[0][field]'] === '22' && q['criteria[0][value]'] === '7' && q['criteria[1][value]'] === '2026-12-02 07:59:59')
      .twice()
      .reply(200, answer(rows));
    const c = legacy(logger, metrics);

    expect(await c.ticketsModifiedSince('2026-12-02 07:59:59')).toEqual([
      { id: 11, status: 5, dateMod: '2026-12-02 08:00:00' },
      { id: 15, status: 6, dateMod: '2026-12-02 08:00:03' },
    ]);
    const warned = refusedWarnings(logs);
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ operation: 'searchModifiedTickets', refused: 3 });
    expect(warned[0]!.rows).toEqual([
      { ticket_id: 12, field: 'status', got: 'null' },
      { ticket_id: 13, field: 'date_mod', got: '"02/12/2026 08:00"' },
      { ticket_id: null, field: 'id', got: '"abc"' },
    ]);
    expect(warned[0]!.msg).toMatch(/left out/);

    // The next sweep gets the same answer: said again, once.
    await c.ticketsModifiedSince('2026-12-02 07:59:59');
    expect(refusedWarnings(logs)).toHaveLength(2);
    expect(await refusedCount(metrics)).toEqual({ 'searchModifiedTickets/status': 2, 'searchModifiedTickets/date_mod': 2, 'searchModifiedTickets/id': 2 });
  });

  it('a sweep with only good rows says nothing', async () => {
    const { logger, logs } = logging();
    const metrics = createMetrics({ processMetrics: false });
    nock(ROOT)
      .get('/apirest.php/initSession')
      .query(true)
      .reply(200, { session_token: 's1', session: { glpiID: 7, glpiname: 'zabbix-bridge' } })
      .get('/apirest.php/search/Ticket')
      .query(true)
      .reply(200, answer([{ '2': 11, '12': 5, '19': '2026-12-02 08:00:00' }]));
    expect(await legacy(logger, metrics).ticketsModifiedSince(undefined)).toEqual([{ id: 11, status: 5, dateMod: '2026-12-02 08:00:00' }]);
    expect(refusedWarnings(logs)).toEqual([]);
    expect(await refusedCount(metrics)).toEqual({});
  });
});

describe('high-level API v2: Assistance/Ticket rows of the read-back', () => {
  const v2 = (logger: Logger, metrics: Metrics) =>
    new GlpiV2Client({ url: ROOT, clientId: new Secret('c'), clientSecret: new Secret('s'), username: 'zabbix-bridge', password: new Secret('p'), timeoutMs: 2000, logger, metrics });
  const mine = [{ role: 'requester', name: 'zabbix-bridge', href: '/front/user.form.php?id=12' }];
  const row = (id: unknown, f: Record<string, unknown> = {}) => ({ id, name: 'x', status: { id: 5, name: 'Solved' }, external_id: '[zbx:00000000000000000abc]', is_deleted: false, date_mod: '2026-12-02T08:00:00+00:00', team: mine, ...f });

  it('one malformed row no longer fails the whole answer: the others are read back, the bad ones said once per sweep with the ticket id and the field', async () => {
    const { logger, logs } = logging();
    const metrics = createMetrics({ processMetrics: false });
    const rows = [
      row(21),
      row(22, { status: null }), // the Ticket schema's status missing
      row(23, { date_mod: 'yesterday' }),
      row(24, { team: undefined }), // no team: whose ticket it is cannot be told
      row('x'), // no usable id
      row(25, { external_id: 'ext-9' }), // not one of the bridge's markers: left out quietly, as before
      row(26, { date_mod: '2026-12-02T08:00:05+00:00' }),
    ];
    nock(ROOT)
      .post('/api.php/token')
      .reply(200, { token_type: 'Bearer', expires_in: 3600, access_token: 'a.b.1', refresh_token: 'r1' })
      .get('/api.php/v2/Assistance/Ticket')
      .query(true)
      .twice()
      .reply(200, rows)
      .get('/api.php/v2/session')
      .reply(200, { user_id: 12, name: 'zabbix-bridge' });
    const c = v2(logger, metrics);

    expect(await c.ticketsModifiedSince('2026-12-02 07:00:00')).toEqual([
      { id: 21, status: 5, dateMod: '2026-12-02 08:00:00' },
      { id: 26, status: 5, dateMod: '2026-12-02 08:00:05' },
    ]);
    const warned = refusedWarnings(logs);
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ operation: 'searchModifiedTickets', refused: 4 });
    expect(warned[0]!.rows).toEqual([
      { ticket_id: 22, field: 'status', got: 'null' },
      { ticket_id: 23, field: 'date_mod', got: '"yesterday"' },
      { ticket_id: 24, field: 'team', got: 'missing' },
      { ticket_id: null, field: 'id', got: '"x"' },
    ]);

    await c.ticketsModifiedSince('2026-12-02 07:00:00');
    expect(refusedWarnings(logs)).toHaveLength(2);
    expect(await refusedCount(metrics)).toEqual({ 'searchModifiedTickets/status': 2, 'searchModifiedTickets/date_mod': 2, 'searchModifiedTickets/team': 2, 'searchModifiedTickets/id': 2 });
  });
});
