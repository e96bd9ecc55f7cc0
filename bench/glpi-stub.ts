/**
 * A lean GLPI for the long-run benchmark: answers the legacy REST API calls
 * the bridge makes (session, ticket create / get / update, follow-ups,
 * solutions, search) in constant memory (one status byte per ticket), so
 * that a run of a million alerts measures the bridge and not the GLPI fake
 * (src/glpi-fake/server.ts keeps every ticket and searches them one by one).
 * A search never finds anything: every ticket the bridge looks for is new.
 *
 * Usage: node dist/bench/glpi-stub.js PORT  (BENCH_STUB_LATENCY_MS adds latency)
 */
import http from 'node:http';

const LATENCY_MS = Number(process.env.BENCH_STUB_LATENCY_MS ?? 0);

/** The bridge's GLPI user (its tickets are written by it). */
const IDENTITY = { glpiID: 2, glpiname: 'bench' };

let status = new Uint8Array(1 << 16);
let nextTicket = 1;
let nextItem = 1;
let requests = 0;

function ticketStatus(id: number): number {
  return id > 0 && id < nextTicket ? status[id]! : 0;
}

function setStatus(id: number, s: number): void {
  if (id <= 0 || id >= nextTicket) return;
  status[id] = s;
}

function newTicket(): number {
  const id = nextTicket++;
  if (id >= status.length) {
    const grown = new Uint8Array(status.length * 2);
    grown.set(status);
    status = grown;
  }
  status[id] = 1;
  return id;
}

function inputOf(raw: string): Record<string, unknown> {
  try {
    const body = JSON.parse(raw) as { input?: Record<string, unknown> };
    return body.input ?? {};
  } catch {
    return {};
  }
}

function answer(method: string, path: string, raw: string): [number, unknown] {
  if (path === 'initSession') return [200, { session_token: 'stub-session-token', session: IDENTITY }];
  if (path === 'getFullSession') return [200, { session: IDENTITY }];
  if (path === 'getGlpiConfig') return [200, { cfg_glpi: { version: '10.0.18' } }];
  if (path === 'killSession') return [200, {}];
  // Marker searches, and the hosts' assets (assets.*: search/Computer, search/NetworkEquipment): none found.
  if (path.startsWith('search/')) return [200, { totalcount: 0, count: 0, data: [] }];
  let m = /^Ticket\/(\d+)\/ITILFollowup$/.exec(path);
  if (m) {
    const id = Number(m[1]);
    if (ticketStatus(id) === 0) return [400, ['ERROR_GLPI_ADD', 'Item not found']];
    if (method === 'GET') return [200, []];
    const input = inputOf(raw);
    // A follow-up on a solved ticket with add_reopen reopens it (GLPI: back to assigned).
    if (input.add_reopen) setStatus(id, 2);
    return [201, { id: nextItem++, message: '' }];
  }
  if (path === 'ITILFollowup' && method === 'POST') return [201, { id: nextItem++, message: '' }];
  if (path === 'ITILSolution' && method === 'POST') {
    setStatus(Number(inputOf(raw).items_id), 5);
    return [201, { id: nextItem++, message: '' }];
  }
  if (path === 'Ticket' && method === 'POST') return [201, { id: newTicket(), message: '' }];
  m = /^Ticket\/(\d+)$/.exec(path);
  if (m) {
    const id = Number(m[1]);
    const s = ticketStatus(id);
    if (s === 0) return [404, ['ERROR_ITEM_NOT_FOUND', 'Item not found']];
    if (method === 'PUT') {
      const input = inputOf(raw);
      if (typeof input.status === 'number') setStatus(id, input.status);
      return [200, [{ [id]: true, message: '' }]];
    }
    return [200, { id, status: s, is_deleted: 0, users_id_recipient: 2, entities_id: 0 }];
  }
  // Anything else the bridge reads (categories, groups, profiles): exists.
  if (method === 'GET') return [200, { id: 1 }];
  return [400, ['ERROR_BAD_ARRAY', `stub GLPI does not know ${method} ${path}`]];
}

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const url = new URL(req.url ?? '/', 'http://stub');
    if (url.pathname === '/_stub/state') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ tickets: nextTicket - 1, items: nextItem - 1, requests }));
      return;
    }
    requests++;
    const path = url.pathname.replace(/^\/apirest\.php\/?/, '');
    const [code, body] = answer(req.method ?? 'GET', path, Buffer.concat(chunks).toString('utf8'));
    const send = () => {
      res.writeHead(code, { 'Content-Type': 'application/json; charset=UTF-8' });
      res.end(JSON.stringify(body));
    };
    if (LATENCY_MS > 0) setTimeout(send, LATENCY_MS);
    else send();
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  const port = (server.address() as { port: number }).port;
  process.stdout.write(`stub GLPI listening on http://127.0.0.1:${port}/apirest.php\n`);
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
