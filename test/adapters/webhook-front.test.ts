import { afterEach, describe, expect, it } from '@jest/globals';
import { connect } from 'node:net';
import type { HttpLimits, ServerDeps } from '../../src/adapters/http/server.js';
import { parseJsonText } from '../../src/adapters/http/webhook.js';
import type { Alert } from '../../src/core/alert.js';
import { BridgeError } from '../../src/core/errors.js';
import type { Accepted } from '../../src/core/ports.js';
import type { Metrics } from '../../src/observability/metrics.js';
import { bodyVariants, RECORDED_BODIES as fixtures } from '../helpers/body-variants.js';
import { zabbixBody } from '../helpers/fixtures.js';
import { startServer, stopServer, WEBHOOK_TOKEN as TOKEN, type ServerHarness } from '../helpers/http-server.js';
import { rawConnect, within } from '../helpers/raw-http.js';

/**
 * The webhook's fast path (src/adapters/http/webhook.ts: node:http in front of fastify) answers exactly as the
 * fastify route it stands in front of. The fastify route still serves the content types the fast path does not
 * take, so every request here is sent twice on real sockets — once as Zabbix sends it (Content-Type:
 * application/json, served by the fast path) and once spelled "Application/JSON" (served by fastify) — and the
 * two answers (status, headers, body), the alerts handed to the intake, the rejection counters and the
 * rejection log lines must be the same.
 */

const BODY_LIMIT = 16 * 1024;

interface Harness extends ServerHarness {
  /** Alerts handed to the intake, in order. */
  readonly accepted: Alert[];
  /** Requests that went through fastify (its onRequest hook saw them). */
  readonly viaFastify: string[];
}

afterEach(stopServer);

async function start(over: Partial<ServerDeps> = {}, limits: Partial<HttpLimits> = {}): Promise<Harness> {
  const accepted: Alert[] = [];
  const viaFastify: string[] = [];
  const h = await startServer(
    {
      intake: {
        accept: async (alert) => {
          accepted.push(alert);
          // Three digits for the whole test (the two answers compared have bodies of the same length).
          return { deliveryId: 100 + accepted.length, duplicate: alert.eventId === '777' };
        },
      },
      bodyLimit: BODY_LIMIT,
      timezoneOffsetMinutes: () => 60,
      // Every rejection logged in full, so that each one's log line can be compared.
      rejectionLog: { windowMs: 0 },
      ...over,
    },
    limits,
    (app) =>
      app.addHook('onRequest', async (req) => {
        viaFastify.push(`${req.method} ${req.url}`);
      }),
  );
  return { ...h, accepted, viaFastify };
}

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** The connection was closed by the server after the answer. */
  readonly closed: boolean;
}

/**
 * One raw HTTP exchange on a fresh connection: `head` and `body` written as given (in `chunk`-byte pieces, each
 * its own write, when asked), the answer read until its Content-Length is complete.
 */
function exchange(port: number, head: string, body: Buffer | string = '', chunk = 0): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let data = Buffer.alloc(0);
    let answer: Omit<Answer, 'closed'> | undefined;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within 5 s; got: ${data.toString()}`));
    }, 5000);
    const tryParse = () => {
      const end = data.indexOf('\r\n\r\n');
      if (end < 0 || answer) return;
      const lines = data.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(lines[0] ?? '')?.[1]);
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      const length = Number(headers['content-length'] ?? 0);
      if (data.length - end - 4 < length) return;
      answer = { status, headers, body: data.subarray(end + 4, end + 4 + length).toString('utf8') };
      // Refusals close the connection; an accepted webhook's stays open (kept alive) and is closed here.
      setTimeout(() => {
        clearTimeout(timer);
        const closed = socket.destroyed || socket.readableEnded;
        socket.destroy();
        resolve({ ...answer!, closed });
      }, 50);
    };
    socket.on('data', (d: Buffer) => {
      data = Buffer.concat([data, d]);
      tryParse();
    });
    socket.on('error', () => undefined);
    socket.once('connect', async () => {
      const all = Buffer.concat([Buffer.from(head, 'latin1'), Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8')]);
      if (chunk <= 0) {
        socket.write(all);
        return;
      }
      for (let i = 0; i < all.length && !socket.destroyed; i += chunk) {
        socket.write(all.subarray(i, i + chunk));
        await new Promise((r) => setTimeout(r, 1));
      }
    });
  });
}

function post(body: string, opts: { type?: string; token?: string | null; length?: number | null; path?: string } = {}): string {
  const headers = ['Host: 127.0.0.1'];
  if (opts.token !== null) headers.push(`Authorization: Bearer ${opts.token ?? TOKEN}`);
  if (opts.type !== undefined) headers.push(`Content-Type: ${opts.type}`);
  if (opts.length !== null) headers.push(`Content-Length: ${opts.length ?? Buffer.byteLength(body)}`);
  return `POST ${opts.path ?? '/zabbix/webhook'} HTTP/1.1\r\n${headers.join('\r\n')}\r\n\r\n`;
}

async function rejectedCounts(metrics: Metrics): Promise<Record<string, number>> {
  return Object.fromEntries((await metrics.webhookRejected.get()).values.map((v) => [String(v.labels.code), v.value]));
}

const sub = (after: Record<string, number>, before: Record<string, number>) =>
  Object.fromEntries(Object.entries(after).flatMap(([k, v]) => (v - (before[k] ?? 0) !== 0 ? [[k, v - (before[k] ?? 0)]] : [])));

/** The answer without what differs between two sends by design (the date) — the delivery id is compared apart. */
const comparable = (a: Answer) => {
  const { date: _date, ...headers } = a.headers;
  return { status: a.status, headers, body: a.body.replace(/"delivery_id":\d+/, '"delivery_id":N'), closed: a.closed };
};

/** Send `body` both ways; expect the same answer, intake input, counters and log lines; returns the fast answer. */
async function same(h: Harness, body: string, opts: { token?: string | null; length?: number | null; chunk?: number } = {}): Promise<Answer> {
  const run = async (type: string) => {
    const counts = await rejectedCounts(h.metrics);
    const lines = h.lines.length;
    const alerts = h.accepted.length;
    const routed = h.viaFastify.length;
    const answer = await exchange(h.port, post(body, { ...opts, type }), body, opts.chunk ?? 0);
    await new Promise((r) => setTimeout(r, 20));
    return {
      answer,
      counts: sub(await rejectedCounts(h.metrics), counts),
      lines: h.lines.slice(lines).map(({ time: _t, pid: _p, hostname: _hn, ...rest }) => rest),
      alerts: h.accepted.slice(alerts),
      viaFastify: h.viaFastify.length - routed,
    };
  };
  const fast = await run('application/json');
  const slow = await run('Application/JSON');
  expect(fast.viaFastify).toBe(0);
  expect(slow.viaFastify).toBe(1);
  expect(comparable(fast.answer)).toEqual(comparable(slow.answer));
  expect(fast.counts).toEqual(slow.counts);
  expect(fast.lines).toEqual(slow.lines);
  expect(fast.alerts).toEqual(slow.alerts);
  return fast.answer;
}

const oddValues: unknown[] = [
  '',
  '  ',
  '{EVENT.ID}',
  '*UNKNOWN*',
  '0',
  '1',
  '5',
  '9',
  ' 12 ',
  '12a',
  12,
  null,
  true,
  [],
  {},
  ['x'],
  'x'.repeat(300),
  'é'.repeat(70),
  '2026.11.23',
  '06:18:41',
  '[]',
  '[{"tag":"a","value":"b"}]',
  '[{"tag":"a"}]',
  '[{"tag":1}]',
  '{"tag":"a"}',
  '[{"tag":"a","value":"b","__proto__":{"x":1}}]',
];

function fuzzed(count: number): string[] {
  const variants = bodyVariants(count, 16, { keys: (base) => [...Object.keys(base), 'made_up_param'], values: oddValues, changes: { min: 1, spread: 3 }, deleteShare: 0.2 });
  return variants.map((b) => JSON.stringify(b));
}

describe('the webhook fast path answers as the fastify route', () => {
  it('the recorded bodies (Zabbix 6.0 and 7.0): the same 202 and the same alert handed to the intake', async () => {
    const h = await start();
    for (const name of fixtures) {
      const a = await same(h, JSON.stringify(zabbixBody(name)));
      expect(a.status).toBe(202);
      expect(JSON.parse(a.body)).toMatchObject({ status: 'accepted' });
    }
    // A duplicate is said as such.
    const dup = await same(h, JSON.stringify(zabbixBody('problem', { event_id: '777' })));
    expect(JSON.parse(dup.body)).toMatchObject({ status: 'duplicate' });
    expect(h.accepted).toHaveLength(2 * (fixtures.length + 1));
  });

  it('400 variants of the recorded bodies, fuzzed: the same answer, counter and log line each time', async () => {
    const h = await start();
    const statuses = new Map<number, number>();
    for (const body of fuzzed(150)) {
      const a = await same(h, body);
      statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
    }
    // The variants reach both outcomes.
    expect(statuses.get(202) ?? 0).toBeGreaterThan(10);
    expect(statuses.get(400) ?? 0).toBeGreaterThan(10);
  }, 120_000);

  it.each([
    ['an empty body', ''],
    ['a blank body', '  '],
    ['a broken body', '{"event_id":'],
    ['JSON null', 'null'],
    ['a JSON array', '[]'],
    ['a JSON string', '"text"'],
    ['a body after a byte-order mark', `\uFEFF${JSON.stringify(zabbixBody('problem'))}`],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]).toString('latin1')],
  ])('%s', async (_name, body) => {
    const h = await start();
    await same(h, body);
  });

  it('prototype keys: "__proto__" and a constructor with a prototype are refused as fastify refuses them; a plain "constructor" parameter never reaches the alert', async () => {
    const h = await start();
    const base = JSON.stringify(zabbixBody('problem')).slice(1);
    for (const body of [
      `{"__proto__":{"polluted":"yes"},${base}`,
      `{"\\u005f_proto__":{"polluted":"yes"},${base}`,
      `{"constructor":{"prototype":{"polluted":"yes"}},${base}`,
      `{"event_extra":[{"__proto__":{}}],${base}`,
    ]) {
      const a = await same(h, body);
      expect(a.status).toBe(400);
      expect(JSON.parse(a.body)).toMatchObject({ error: { code: 'BRIDGE_BAD_JSON' } });
    }
    const ok = await same(h, `{"constructor":"x","prototype":"y",${base}`);
    expect(ok.status).toBe(202);
    for (const alert of h.accepted) {
      expect(Object.prototype.hasOwnProperty.call(alert, 'constructor')).toBe(false);
      expect(Object.getPrototypeOf(alert)).toBe(Object.prototype);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // A tag object carrying "__proto__" inside event_tags (JSON in a string) is rebuilt by zod with tag and value only.
    const tagged = await same(h, JSON.stringify(zabbixBody('problem', { event_tags: '[{"tag":"a","value":"b","__proto__":{"polluted":"yes"}}]' })));
    expect(tagged.status).toBe(202);
    expect(h.accepted.at(-1)?.tags).toEqual([{ tag: 'a', value: 'b' }]);
    expect(Object.getPrototypeOf(h.accepted.at(-1)?.tags[0])).toBe(Object.prototype);
  });

  it('the poisoning check decides as fastify\'s JSON parser on escaped and nested spellings', () => {
    expect(parseJsonText('{"a":{"b":[{"__proto__":1}]}}').ok).toBe(false);
    expect(parseJsonText('{"\\u005F\\u005Fproto\\u005F\\u005F":1}').ok).toBe(false);
    expect(parseJsonText('{"constructor":{"prototype":1}}').ok).toBe(false);
    expect(parseJsonText('{"constructor":{"prototypes":1}}').ok).toBe(true);
    expect(parseJsonText('{"constructor":null}').ok).toBe(true);
    expect(parseJsonText('{"text":"__proto__ constructor \\u0041"}')).toEqual({ ok: true, value: { text: '__proto__ constructor A' } });
  });

  it('refusals before the body: wrong or missing token (401), stopping (503), an announced body over the limit (413)', async () => {
    let stopping = false;
    const h = await start({ isStopping: () => stopping });
    const body = JSON.stringify(zabbixBody('problem'));
    expect((await same(h, body, { token: 'not-the-token-at-all' })).status).toBe(401);
    expect((await same(h, body, { token: null })).status).toBe(401);
    // Announced over the limit: refused without reading on (only the head is sent).
    const big = await same(h, '', { length: BODY_LIMIT + 1 });
    expect(big.status).toBe(413);
    expect(big.headers.connection).toBe('close');
    stopping = true;
    const stop = await same(h, body);
    expect(stop.status).toBe(503);
    expect(JSON.parse(stop.body)).toMatchObject({ error: { code: 'BRIDGE_SHUTTING_DOWN' } });
    expect(h.accepted).toHaveLength(0);
  });

  it('a chunked body growing past the limit gets 413; one within it is read', async () => {
    const h = await start();
    const chunked = (text: string) => `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n0\r\n\r\n`;
    for (const type of ['application/json', 'Application/JSON']) {
      const head = post('', { type, length: null }).replace('\r\n\r\n', '\r\nTransfer-Encoding: chunked\r\n\r\n');
      const tooBig = await exchange(h.port, head, chunked(JSON.stringify(zabbixBody('problem', { item_value: 'v'.repeat(BODY_LIMIT) }))));
      expect(tooBig.status).toBe(413);
      expect(tooBig.headers.connection).toBe('close');
      const fits = await exchange(h.port, head, chunked(JSON.stringify(zabbixBody('problem'))));
      expect(fits.status).toBe(202);
    }
    expect(h.viaFastify).toHaveLength(2);
  });

  it('a store that cannot commit: 503 BRIDGE_STORE_UNAVAILABLE both ways', async () => {
    const h = await start({
      intake: {
        accept: async (): Promise<Accepted> => {
          throw new BridgeError('BRIDGE_STORE_UNAVAILABLE', 'the bridge cannot store the alert right now: disk full');
        },
      },
    });
    const a = await same(h, JSON.stringify(zabbixBody('problem')));
    expect(a.status).toBe(503);
    expect(a.body).toContain('disk full');
  });
});

describe('the fast path on real connections', () => {
  it('a webhook split in one-byte TCP writes is read whole', async () => {
    const h = await start();
    const body = JSON.stringify(zabbixBody('7.0/problem'));
    const a = await exchange(h.port, post(body, { type: 'application/json' }), body, 1);
    expect(a.status).toBe(202);
    expect(h.viaFastify).toHaveLength(0);
    expect(h.accepted[0]).toMatchObject({ eventId: zabbixBody('7.0/problem').event_id, kind: 'problem' });
  }, 30_000);

  it('a kept-alive connection carries webhooks, then /healthz, then a webhook; max_requests_per_socket closes it after its last answer', async () => {
    const h = await start({}, { maxRequestsPerSocket: 4 });
    const c = await rawConnect(h.port);
    const body = JSON.stringify(zabbixBody('problem'));
    const answers = () => c.received().match(/HTTP\/1\.1 \d{3} /g) ?? [];
    const send = async (text: string, n: number) => {
      c.socket.write(text);
      await within(
        (async () => {
          while (answers().length < n) await new Promise((r) => setTimeout(r, 10));
        })(),
        3000,
        `answer ${n}`,
      );
    };
    await send(post(body, { type: 'application/json' }) + body, 1);
    await send(post(body, { type: 'application/json' }) + body, 2);
    await send('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', 3);
    expect(c.isClosed()).toBe(false);
    await send(post(body, { type: 'application/json' }) + body, 4);
    await within(c.closed, 3000, 'closed after its fourth answer');
    expect(answers()).toEqual(['HTTP/1.1 202 ', 'HTTP/1.1 202 ', 'HTTP/1.1 200 ', 'HTTP/1.1 202 ']);
    const last = c.received().slice(c.received().lastIndexOf('HTTP/1.1 202 '));
    expect(last.toLowerCase()).toContain('connection: close');
    expect(h.viaFastify).toEqual(['GET /healthz']);
    expect(h.accepted).toHaveLength(3);
  });

  it('pipelined webhooks on one connection are answered in order', async () => {
    const h = await start();
    const c = await rawConnect(h.port);
    const bodies = ['11', '12', '13'].map((id) => JSON.stringify(zabbixBody('problem', { event_id: id })));
    c.socket.write(bodies.map((b) => post(b, { type: 'application/json' }) + b).join(''));
    await within(
      (async () => {
        while ((c.received().match(/HTTP\/1\.1 202 /g) ?? []).length < 3) await new Promise((r) => setTimeout(r, 10));
      })(),
      3000,
      'three answers',
    );
    expect([...c.received().matchAll(/"delivery_id":(\d+)/g)].map((m) => m[1])).toEqual(['101', '102', '103']);
    expect(h.accepted.map((a) => a.eventId)).toEqual(['11', '12', '13']);
  });
});
