/**
 * Two ways to talk to "a GLPI" with the same test code:
 * - `fake`: the fake in src/glpi-fake over real HTTP;
 * - `recorded`: the answers real GLPI gives, from test/fixtures/glpi/recorded.ts. It replays a
 *   scenario's exchanges in order and fails when the test sends a request the recording does not have,
 *   so a test cannot drift away from what was recorded.
 */
import http from 'node:http';
import { FakeGlpi } from '../../src/glpi-fake/server.js';
import type { Exchange, Scenario } from '../fixtures/glpi/recorded.js';

export interface Req {
  method: string;
  /** Relative to apirest.php, query string included (written exactly as recorded). */
  path: string;
  headers?: Record<string, string>;
  /** JSON-encoded unless `raw` is given. */
  body?: unknown;
  raw?: string;
}

export interface Res {
  status: number;
  /** Lower-case names. */
  headers: Record<string, string>;
  body: unknown;
}

export interface Glpi {
  readonly apiUrl: string;
  send(req: Req): Promise<Res>;
  /** What a technician does in the UI (not through the API). */
  setTicketStatus(id: number, status: number): Promise<void>;
  close(): Promise<void>;
}

export interface Target {
  name: string;
  open(s: Scenario): Promise<Glpi>;
}

/**
 * One HTTP exchange over a fresh connection, as both API harnesses send them: the body sent with its
 * Content-Type, the answer's text (JSON parsed when it is JSON; an empty text parsed as `empty`).
 */
export function httpExchange(url: URL, method: string, reqHeaders: Record<string, string> | undefined, data: string | undefined, type: string | undefined, empty: unknown): Promise<Res> {
  const headers: Record<string, string> = {
    ...(data !== undefined ? { 'Content-Type': type ?? 'application/json', 'Content-Length': String(Buffer.byteLength(data)) } : {}),
    ...reqHeaders,
  };
  return new Promise((resolve, reject) => {
    const r = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text === '' ? empty : text;
        try {
          if (text !== '') body = JSON.parse(text);
        } catch {
          /* HTML */
        }
        const h: Record<string, string> = {};
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') h[k] = v;
        resolve({ status: res.statusCode ?? 0, headers: h, body });
      });
    });
    r.on('error', reject);
    if (data !== undefined) r.write(data);
    r.end();
  });
}

function rawRequest(base: string, req: Req): Promise<Res> {
  const payload = req.raw ?? (req.body === undefined ? undefined : JSON.stringify(req.body));
  // The legacy harness keeps an empty answer as the empty string.
  return httpExchange(new URL(`${base}/${req.path}`), req.method, req.headers, payload, 'application/json', '');
}

export const fakeTarget: Target = {
  name: 'fake over HTTP',
  async open(s) {
    const fake = new FakeGlpi({ ...s.fake, version: s.version, language: s.language });
    const url = await fake.listen(0);
    const via = s.via === 'api.php/v1' ? fake.urlV1 : url;
    return {
      apiUrl: url,
      send: (req) => rawRequest(via, req),
      setTicketStatus: async (id, status) => {
        // Through the standalone control path, as a test of the standalone mode would.
        const res = await fetch(url.replace(/\/apirest\.php$/, `/_fake/tickets/${id}/status`), { method: 'POST', body: JSON.stringify({ status }) });
        if (res.status !== 200) throw new Error(`control answered ${res.status}`);
      },
      close: () => fake.close(),
    };
  },
};

const lower = (h: Record<string, string> | undefined) => Object.fromEntries(Object.entries(h ?? {}).map(([k, v]) => [k.toLowerCase(), v]));

export const recordedTarget: Target = {
  name: 'recorded GLPI answers',
  async open(s) {
    let next = 0;
    const step = (what: string) => {
      const st = s.steps[next++];
      if (!st) throw new Error(`scenario ${s.name}: ${what} after the end of the recording`);
      return st;
    };
    return {
      apiUrl: s.apiUrl,
      async send(req) {
        const st = step(`${req.method} ${req.path}`);
        if (!('request' in st)) throw new Error(`scenario ${s.name} step ${next}: recorded a technician action, test sent ${req.method} ${req.path}`);
        const ex: Exchange = st;
        const sent = { method: req.method, path: req.path, body: req.raw ?? req.body ?? null };
        const recorded = { method: ex.request.method, path: ex.request.path, body: ex.request.raw ?? ex.request.body ?? null };
        if (JSON.stringify(sent) !== JSON.stringify(recorded)) {
          throw new Error(`scenario ${s.name} step ${next}: test sent ${JSON.stringify(sent)}, recording has ${JSON.stringify(recorded)}`);
        }
        const sentHeaders = lower(req.headers);
        for (const [k, v] of Object.entries(lower(ex.request.headers))) {
          if (sentHeaders[k] !== v) throw new Error(`scenario ${s.name} step ${next}: header ${k} is ${sentHeaders[k]}, recorded ${v}`);
        }
        return { status: ex.answer.status, headers: lower(ex.answer.headers), body: JSON.parse(JSON.stringify(ex.answer.body)) as unknown };
      },
      async setTicketStatus(id, status) {
        const st = step(`setTicketStatus(${id}, ${status})`);
        if (!('technician' in st) || st.technician.ticket !== id || st.technician.status !== status) {
          throw new Error(`scenario ${s.name} step ${next}: test set ticket ${id} to ${status}, recording has ${JSON.stringify(st)}`);
        }
      },
      async close() {
        if (next !== s.steps.length) throw new Error(`scenario ${s.name}: ${s.steps.length - next} recorded steps not replayed`);
      },
    };
  },
};
