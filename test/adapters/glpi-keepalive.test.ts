import { afterEach, describe, expect, it } from '@jest/globals';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { pino } from 'pino';
import { GlpiClient } from '../../src/adapters/glpi/client.js';
import { GlpiV2Client } from '../../src/adapters/glpi/v2/client.js';
import { RemoteError } from '../../src/core/remote-error.js';
import { Secret } from '../../src/config/secret.js';
import type { TicketDraft } from '../../src/core/decide.js';
import { createMetrics } from '../../src/observability/metrics.js';

/**
 * Keep-alive connections against a real socket: a tiny GLPI whose web
 * server has closed a connection while it sat idle, without the client
 * having noticed (the reset arrives when the client sends on it again).
 */
interface Served {
  readonly socket: number;
  readonly method: string;
  readonly path: string;
}

let server: http.Server | undefined;
let client: GlpiClient | GlpiV2Client | undefined;

afterEach(async () => {
  await client?.close();
  server?.closeAllConnections();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
  client = undefined;
});

/** Serves initSession, Ticket/:id and POST Ticket; `stale(n)` says whether the n-th request on a connection finds it already closed. */
async function tinyGlpi(stale: (nthOnSocket: number) => boolean): Promise<{ url: string; served: Served[]; closed: () => number }> {
  const served: Served[] = [];
  const ids = new WeakMap<Socket, { id: number; count: number }>();
  let sockets = 0;
  let closed = 0;
  server = http.createServer((req, res) => {
    const s = ids.get(req.socket)!;
    s.count++;
    if (stale(s.count)) {
      // The server side of this connection is gone: no answer, a reset.
      req.socket.destroy();
      return;
    }
    served.push({ socket: s.id, method: req.method ?? '', path: (req.url ?? '').split('?')[0] ?? '' });
    res.setHeader('Content-Type', 'application/json');
    if (req.url?.startsWith('/apirest.php/initSession')) return res.end(JSON.stringify({ session_token: 's1', session: { glpiID: 7, glpiname: 'bridge' } }));
    // GLPI 11's high-level API: the token grant, and a ticket as its schema gives it.
    if (req.url === '/api.php/token') return res.end(JSON.stringify({ access_token: 'a1', token_type: 'Bearer', expires_in: 3600 }));
    if (req.url?.startsWith('/api.php/v2/')) return res.end(JSON.stringify({ id: 42, status: { id: 2, name: 'Processing (assigned)' } }));
    if (req.method === 'POST') {
      res.statusCode = 201;
      return res.end(JSON.stringify({ id: 42, message: '' }));
    }
    res.end(JSON.stringify({ id: 42, status: 2 }));
  });
  server.on('connection', (socket: Socket) => {
    ids.set(socket, { id: ++sockets, count: 0 });
    socket.on('close', () => closed++);
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/apirest.php`, served, closed: () => closed };
}

function glpiClient(url: string, extra: { idleSocketTimeoutMs?: number; metrics?: ReturnType<typeof createMetrics> } = {}): GlpiClient {
  client = new GlpiClient({ url, appToken: new Secret(''), userToken: new Secret('t'), username: '', password: new Secret(''), timeoutMs: 2000, logger: pino({ level: 'silent' }), externalId: 'off', ...extra });
  return client;
}

function v2Client(url: string, metrics?: ReturnType<typeof createMetrics>): GlpiV2Client {
  const root = url.replace(/\/apirest\.php$/, '');
  client = new GlpiV2Client({ url: root, clientId: new Secret('c'), clientSecret: new Secret('s'), username: 'bridge', password: new Secret('p'), timeoutMs: 2000, logger: pino({ level: 'silent' }), ...(metrics ? { metrics } : {}) });
  return client;
}

/** zgb_glpi_requests_total as [operation, status, count] rows. */
async function counted(metrics: ReturnType<typeof createMetrics>): Promise<unknown[]> {
  return (await metrics.glpiRequests.get()).values.map((v) => [v.labels.operation, v.labels.status, v.value]);
}

const draft: TicketDraft = { name: '[zbx:1] x', content: 'c', marker: '[zbx:1]', urgency: 3, impact: 3, type: 1, itilcategories_id: 0, entities_id: 0, requesttypes_id: 0, groups_id_assign: 0 };

describe('keep-alive connections the server closed while idle', () => {
  it.each([
    ['API v1', (url: string, metrics: ReturnType<typeof createMetrics>) => glpiClient(url, { metrics }), 'initSession', ['/apirest.php/initSession', '/apirest.php/Ticket/42']],
    ['API v2 (GLPI 11)', (url: string, metrics: ReturnType<typeof createMetrics>) => v2Client(url, metrics), 'passwordLogin', ['/api.php/token', '/api.php/v2/Assistance/Ticket/42']],
  ] as const)('a read on such a connection is sent again at once on a fresh one, is not a failure, and is counted as stale (%s)', async (_api, make, login, paths) => {
    // Second request on any connection: the server had closed it.
    const glpi = await tinyGlpi((n) => n === 2);
    const metrics = createMetrics({ processMetrics: false });
    const c = make(glpi.url, metrics);
    await c.open();
    expect(await c.ticketStatus(42)).toBe(2);
    expect(glpi.served.map((s) => [s.socket, s.path])).toEqual([
      [1, paths[0]],
      [2, paths[1]],
    ]);
    expect(await counted(metrics)).toEqual([
      [login, '200', 1],
      ['getTicket', 'stale_connection', 1],
      ['getTicket', '200', 1],
    ]);
  });

  it('a POST on such a connection is not sent twice blindly: the dispatcher is told to check and send again at once', async () => {
    const glpi = await tinyGlpi((n) => n === 2);
    const c = glpiClient(glpi.url);
    await c.open();
    const e = await c.createTicket(draft).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(RemoteError);
    expect(e).toMatchObject({ kind: 'retryable', staleConnection: true, outage: false, mayHaveLanded: true });
    // The idle connections were dropped: the next request opens a fresh one.
    expect(await c.createTicket(draft)).toBe(42);
    expect(glpi.served.map((s) => [s.socket, s.method])).toEqual([
      [1, 'GET'],
      [2, 'POST'],
    ]);
  });

  it('the client closes idle connections itself, before a typical server would (glpi idle timeout below Apache\'s 5 s)', async () => {
    const glpi = await tinyGlpi(() => false);
    const c = glpiClient(glpi.url, { idleSocketTimeoutMs: 50 });
    await c.open();
    // Waiting for the event, not measuring it.
    for (let i = 0; i < 200 && glpi.closed() === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(glpi.closed()).toBe(1);
    expect(await c.ticketStatus(42)).toBe(2);
    expect(glpi.served.map((s) => s.socket)).toEqual([1, 2]);
  });
});

describe('a reset on a fresh connection', () => {
  it.each([
    ['API v1', (url: string) => glpiClient(url)],
    ['API v2', (url: string) => v2Client(url)],
  ])('is GLPI failing (an outage), not a stale connection (%s)', async (_api, make) => {
    const glpi = await tinyGlpi((n) => n === 1);
    const e = await make(glpi.url).open().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toMatchObject({ staleConnection: false, outage: true });
  });
});
