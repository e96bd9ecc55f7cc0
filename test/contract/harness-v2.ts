/**
 * Two ways to talk to "a GLPI 11 high-level API" with the same test code (like harness.ts for the
 * legacy API): `fake`, the fake in src/glpi-fake over real HTTP (version '11'); `recorded`, the answers
 * of test/fixtures/glpi/recorded-v2.ts replayed in order, failing on any request the recording does not
 * have (method, path, body, and the headers the recording names).
 */
import { FakeGlpi } from '../../src/glpi-fake/server.js';
import type { V2Exchange, V2Request, V2Scenario } from '../fixtures/glpi/recorded-v2.js';
import { httpExchange } from './harness.js';

export interface Res {
  status: number;
  /** Lower-case names. */
  headers: Record<string, string>;
  /** Parsed JSON; undefined for an empty body. */
  body: unknown;
}

export interface GlpiV2 {
  /** The GLPI root (scheme, host, port). */
  readonly root: string;
  send(req: V2Request): Promise<Res>;
  setTicketStatus(id: number, status: number): Promise<void>;
  /** An hour passes: the access tokens issued so far expire. */
  expireTokens(): Promise<void>;
  close(): Promise<void>;
}

export interface V2Target {
  name: string;
  open(s: V2Scenario): Promise<GlpiV2>;
}

function payload(req: V2Request): { data?: string; type?: string } {
  if (req.raw !== undefined) return { data: req.raw, type: req.contentType ?? 'application/json' };
  if (req.form !== undefined) return { data: new URLSearchParams(req.form).toString(), type: 'application/x-www-form-urlencoded' };
  if (req.body !== undefined) return { data: JSON.stringify(req.body), type: req.contentType ?? 'application/json' };
  return {};
}

function rawRequest(root: string, req: V2Request): Promise<Res> {
  const { data, type } = payload(req);
  return httpExchange(new URL(`${root}/${req.path}`), req.method, req.headers, data, type, undefined);
}

export const fakeV2Target: V2Target = {
  name: 'fake over HTTP',
  async open(s) {
    const fake = new FakeGlpi({
      version: '11',
      language: s.language,
      userTokens: [],
      accounts: s.fake.accounts,
      ...(s.fake.entities ? { entities: s.fake.entities } : {}),
      ...(s.fake.groups ? { groups: s.fake.groups } : {}),
      ...(s.fake.categories ? { categories: s.fake.categories } : {}),
      ...(s.fake.stripAuthorization ? { stripAuthorization: true } : {}),
      ...(s.fake.oauthClients ? { oauthClients: s.fake.oauthClients } : {}),
    });
    const root = (await fake.listen(0)).replace(/\/apirest\.php$/, '');
    const control = async (path: string, body: unknown) => {
      const res = await fetch(`${root}/_fake/${path}`, { method: 'POST', body: JSON.stringify(body) });
      if (res.status !== 200) throw new Error(`control ${path} answered ${res.status}`);
    };
    return {
      root,
      send: (req) => rawRequest(root, req),
      // Through the standalone control paths, as the demo or a test of the standalone mode would.
      setTicketStatus: (id, status) => control(`tickets/${id}/status`, { status }),
      expireTokens: () => control('expire-tokens', {}),
      close: () => fake.close(),
    };
  },
};

const lower = (h: Record<string, string> | undefined) => Object.fromEntries(Object.entries(h ?? {}).map(([k, v]) => [k.toLowerCase(), v]));

export const recordedV2Target: V2Target = {
  name: 'recorded GLPI answers',
  async open(s) {
    let next = 0;
    const step = (what: string) => {
      const st = s.steps[next++];
      if (!st) throw new Error(`scenario ${s.name}: ${what} after the end of the recording`);
      return st;
    };
    return {
      root: s.root,
      async send(req) {
        const st = step(`${req.method} ${req.path}`);
        if (!('request' in st)) throw new Error(`scenario ${s.name} step ${next}: recorded ${JSON.stringify(st)}, test sent ${req.method} ${req.path}`);
        const ex: V2Exchange = st;
        // A form's field order carries no meaning.
        const form = (f: Record<string, string> | undefined) => (f ? Object.fromEntries(Object.entries(f).sort(([a], [b]) => a.localeCompare(b))) : undefined);
        const shape = (r: V2Request) => ({ method: r.method, path: r.path, body: r.raw ?? form(r.form) ?? r.body ?? null, type: payload(r).type ?? null });
        if (JSON.stringify(shape(req)) !== JSON.stringify(shape(ex.request))) {
          throw new Error(`scenario ${s.name} step ${next}: test sent ${JSON.stringify(shape(req))}, recording has ${JSON.stringify(shape(ex.request))}`);
        }
        const sent = lower(req.headers);
        for (const [k, v] of Object.entries(lower(ex.request.headers))) {
          if (sent[k] !== v) throw new Error(`scenario ${s.name} step ${next}: header ${k} is ${sent[k]}, recorded ${v}`);
        }
        return { status: ex.answer.status, headers: lower(ex.answer.headers), body: ex.answer.body === undefined ? undefined : (JSON.parse(JSON.stringify(ex.answer.body)) as unknown) };
      },
      async setTicketStatus(id, status) {
        const st = step(`setTicketStatus(${id}, ${status})`);
        if (!('technician' in st) || st.technician.ticket !== id || st.technician.status !== status) {
          throw new Error(`scenario ${s.name} step ${next}: test set ticket ${id} to ${status}, recording has ${JSON.stringify(st)}`);
        }
      },
      async expireTokens() {
        const st = step('expireTokens()');
        if (!('expireTokens' in st)) throw new Error(`scenario ${s.name} step ${next}: test let the tokens expire, recording has ${JSON.stringify(st)}`);
      },
      async close() {
        if (next !== s.steps.length) throw new Error(`scenario ${s.name}: ${s.steps.length - next} recorded steps not replayed`);
      },
    };
  },
};
