// The PostgreSQL worker thread's code, as JavaScript source run with `new Worker(source, { eval: true })`.
// It is a string, not a module of its own, so that it runs the same from dist/ and under jest (which
// transforms the test's modules but not a worker's file); `pg` is required by the absolute path the caller
// resolved (an eval'd worker resolves from the process's working directory otherwise).
//
// What it does: holds the named connections (one per kind of work: the inbox's, the state's, the intake's),
// runs each request's statements in order on one of them, and answers on the reply port, then wakes the
// caller blocked in Atomics.wait (bridge.ts); a request the caller did not block on (SyncPg.runAsync) is
// answered on a port of its own, without the wake-up. Requests on one connection run in arrival order;
// requests on different connections run side by side, so a blocking call never waits behind the intake's
// commit on its own connection. While PostgreSQL is unreachable, every request fails at once with
// PG_UNAVAILABLE and the reason, and a probe reconnects in the background every RETRY_MS.

export const WORKER_SOURCE = String.raw`
'use strict';
const { workerData, parentPort } = require('node:worker_threads');
const pg = require(workerData.pgPath);
const RETRY_MS = 250;
const signal = new Int32Array(workerData.signal);
const reply = workerData.reply;
// Answers to requests the caller did not block on (SyncPg.runAsync): no wake-up, nobody waits in Atomics.wait for them.
const asyncReply = workerData.asyncReply;
// Ids and times are bigint columns: within 2^53, read them as numbers.
pg.types.setTypeParser(20, (v) => Number(v));
const { ssl, ...given } = workerData.connection;
// Every commit not made in a transaction of ours (an intake commit) waits for its WAL flush, whatever the server's default.
const base = { connectionTimeoutMillis: 5000, statement_timeout: 30000, query_timeout: 32000, ...given, options: '-c synchronous_commit=on' };
if (ssl) {
  base.ssl = ssl.mode === 'require'
    ? { rejectUnauthorized: false }
    : Object.assign({ rejectUnauthorized: true }, ssl.ca ? { ca: ssl.ca } : {}, ssl.mode === 'verify-ca' ? { checkServerIdentity: () => undefined } : {});
}
/** name -> pg.Client (connected) */
const clients = new Map();
/** Why PostgreSQL is unreachable (undefined: it is not known to be). */
let down;
let probing = false;

function answer(message) {
  reply.postMessage(message);
  Atomics.store(signal, 0, 1);
  Atomics.notify(signal, 0);
}

function errorOf(e) {
  return { message: (e && e.message) || String(e), code: e && typeof e.code === 'string' ? e.code : undefined, detail: e && e.detail, constraint: e && e.constraint };
}

/** A failure of the connection itself, not of a statement: the client is dropped and PostgreSQL counts as down. */
function connectionLost(e) {
  const code = e && e.code;
  if (typeof code === 'string' && /^(08|57P0[1-3]|53300)/.test(code)) return true;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return true; // ECONNREFUSED, ECONNRESET, ETIMEDOUT, ENOTFOUND…
  const m = (e && e.message) || '';
  return /Connection terminated|Query read timeout|timeout expired|not queryable|Client was closed|connect ECONN/i.test(m);
}

function markDown(e) {
  if (down === undefined) down = (e && e.message) || String(e);
  for (const c of clients.values()) c.end().catch(() => undefined);
  clients.clear();
  if (!probing) probe();
}

async function probe() {
  probing = true;
  while (down !== undefined) {
    await new Promise((r) => setTimeout(r, RETRY_MS));
    const c = new pg.Client(base);
    c.on('error', () => undefined);
    try {
      await c.connect();
      await c.query('SELECT 1');
      down = undefined;
    } catch (e) {
      down = (e && e.message) || String(e);
    } finally {
      c.end().catch(() => undefined);
    }
  }
  probing = false;
}

/** Parameterised statements are prepared once per connection (named): the server parses and plans them once. */
const names = new Map();
function statementName(sql) {
  let n = names.get(sql);
  if (n === undefined) {
    n = 's' + names.size;
    names.set(sql, n);
  }
  return n;
}

async function client(name) {
  const existing = clients.get(name);
  if (existing) return existing;
  const c = new pg.Client(base);
  // A connection that drops between requests: forget it (the next request reconnects, or finds PostgreSQL down).
  c.on('error', (e) => {
    if (clients.get(name) === c) clients.delete(name);
    if (connectionLost(e)) markDown(e);
  });
  await c.connect();
  clients.set(name, c);
  return c;
}

async function run(req) {
  if (req.op === 'close') {
    await Promise.all([...clients.values()].map((c) => c.end().catch(() => undefined)));
    clients.clear();
    down = 'closed';
    return { id: req.id, ok: true, results: [] };
  }
  if (req.op === 'drop') {
    // The caller gave up on a transaction it cannot roll back: the connection is closed, which rolls it back.
    const c = clients.get(req.conn);
    clients.delete(req.conn);
    if (c) await c.end().catch(() => undefined);
    return { id: req.id, ok: true, results: [] };
  }
  if (down !== undefined) return { id: req.id, ok: false, unavailable: true, error: { message: 'PostgreSQL is unreachable: ' + down, code: 'PG_UNAVAILABLE' } };
  let c;
  try {
    c = await client(req.conn);
  } catch (e) {
    markDown(e);
    return { id: req.id, ok: false, unavailable: true, error: { message: 'PostgreSQL is unreachable: ' + ((e && e.message) || String(e)), code: 'PG_UNAVAILABLE' } };
  }
  const results = [];
  for (const step of req.steps) {
    try {
      const r = step.params ? await c.query({ text: step.sql, values: step.params, name: statementName(step.sql) }) : await c.query(step.sql);
      // A multi-statement text answers an array of results: the last one is the answer.
      const last = Array.isArray(r) ? r[r.length - 1] : r;
      results.push({ rows: last ? last.rows : [], rowCount: last && last.rowCount != null ? last.rowCount : 0 });
    } catch (e) {
      if (connectionLost(e)) {
        if (clients.get(req.conn) === c) clients.delete(req.conn);
        c.end().catch(() => undefined);
        markDown(e);
        return { id: req.id, ok: false, unavailable: true, error: { message: 'PostgreSQL is unreachable: ' + ((e && e.message) || String(e)), code: 'PG_UNAVAILABLE' } };
      }
      return { id: req.id, ok: false, error: errorOf(e), failedStep: results.length };
    }
  }
  return { id: req.id, ok: true, results };
}

// One queue per connection, in arrival order (a transaction's statements come in several requests on one
// connection); the queues of different connections run side by side. 'close' waits for every queue.
const chains = new Map();
parentPort.on('message', (req) => {
  const send = req.async ? (m) => asyncReply.postMessage(m) : answer;
  const key = req.op === 'close' ? undefined : req.conn;
  const before = key === undefined ? Promise.all([...chains.values()]) : chains.get(key) || Promise.resolve();
  const done = before.then(() => run(req)).then(send, (e) => send({ id: req.id, ok: false, error: errorOf(e) }));
  if (key === undefined) chains.clear();
  else {
    chains.set(key, done);
    // A finished queue is forgotten (names are few, but a queue's promise need not be kept).
    done.then(() => { if (chains.get(key) === done) chains.delete(key); });
  }
});
`;
