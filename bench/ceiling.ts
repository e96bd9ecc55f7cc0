/**
 * The intake ceiling (issue 16): a bare server doing the least a correct intake must do, so the benchmark
 * can report the daemon's intake as a ratio to what this machine allows on the same run.
 *
 * node:http; the bearer token checked; the body read (bounded) and parsed as JSON; one row per alert in a
 * SQLite WAL file (better-sqlite3, the daemon's driver), the alerts of one event-loop turn committed together
 * (group commit) and the WAL flushed to disk (fdatasync, on libuv's pool as the daemon does) before their
 * 202s. No validation beyond JSON, no normalisation, no dedup, no threads, no logs, no metrics: whatever the
 * daemon does above this is its cost.
 *
 * Usage: node dist/bench/ceiling.js PORT DIR TOKEN [checked]; prints "listening" once it accepts.
 *
 * `checked` (BENCH_CEILING=checked, bench/run.ts): the ceiling also does the two things the SPEC makes a correct
 * intake of this product do besides storing: it checks the body's fields as the daemon does (parseWebhookBody, a
 * 400 naming the field) and deduplicates by delivery key, in the daemon's inbox schema (the key's unique index, a
 * look-up before each insert, AUTOINCREMENT ids). Still no normalisation, no threads, no logs, no metrics. A
 * reference for issue 16's first goal, beside the bare ceiling it is stated against; not part of the default run.
 */
import Database from 'better-sqlite3';
import { closeSync, fdatasync, openSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { nodeDigests } from '../src/adapters/digests.js';
import { parseWebhookBody } from '../src/adapters/zabbix/webhook-body.js';
import { problemDeliveryKey, recoveryDeliveryKey, updateKeyPrefix } from '../src/core/fingerprint.js';
import { kindOf, present, type ZabbixEvent } from '../src/core/normalise.js';

const [portArg, dir, token, mode] = process.argv.slice(2);
if (portArg === undefined || dir === undefined || token === undefined) throw new Error('usage: ceiling.js PORT DIR TOKEN [checked]');
const checked = mode === 'checked';
const BODY_LIMIT = 256 * 1024;
const expected = `Bearer ${token}`;

const file = join(dir, 'ceiling.db');
const db = new Database(file);
db.pragma('journal_mode = WAL');
// As the daemon's inbox: NORMAL (a commit does not flush; a checkpoint syncs), the WAL fdatasync'ed below,
// off the event loop, before any 202 — together the durability of synchronous=FULL.
db.pragma('synchronous = NORMAL');
db.exec(
  checked
    ? 'CREATE TABLE IF NOT EXISTS inbox (id INTEGER PRIMARY KEY AUTOINCREMENT, delivery_key TEXT NOT NULL UNIQUE, received_at INTEGER NOT NULL, body TEXT NOT NULL)'
    : 'CREATE TABLE IF NOT EXISTS inbox (id INTEGER PRIMARY KEY, received_at INTEGER NOT NULL, body TEXT NOT NULL)',
);
interface Row {
  readonly key: string;
  readonly body: string;
}
const insert = db.prepare(checked ? 'INSERT INTO inbox (delivery_key, received_at, body) VALUES (?, ?, ?)' : 'INSERT INTO inbox (received_at, body) VALUES (?, ?)');
const byKey = checked ? db.prepare<[string], { id: number }>('SELECT id FROM inbox WHERE delivery_key = ?') : undefined;
const commit = db.transaction((rows: readonly Row[]) => {
  const now = Date.now();
  for (const r of rows) {
    if (byKey === undefined) insert.run(now, r.body);
    else if (byKey.get(r.key) === undefined) insert.run(r.key, now, r.body);
  }
});
// Opened once the WAL exists (journal_mode = WAL created it with the table).
const walFd = openSync(`${file}-wal`, 'r+');

/**
 * The daemon's delivery key (core/fingerprint.ts) read from the checked event, without normalising it: the
 * event and its kind, an update also by a digest of its content (its raw date and time where the daemon's has
 * the converted time: the same updates are told apart).
 */
function deliveryKeyOf(e: ZabbixEvent): string {
  const source = present(e.event_source) ?? '0';
  const id = e.event_id.trim();
  const kind = kindOf(e);
  if (kind === 'recovery') return recoveryDeliveryKey(source, id);
  if (kind !== 'update') return problemDeliveryKey(source, id);
  const content = `${e.event_update_date ?? ''} ${e.event_update_time ?? ''}\n${e.event_update_action ?? ''}\n${e.event_update_message ?? ''}\n${e.user_fullname ?? ''}`;
  return `${updateKeyPrefix(source, id)}${nodeDigests.sha256Hex(content).slice(0, 16)}`;
}

let pending: (Row & { res: http.ServerResponse })[] = [];
let scheduled = false;
let syncing = false;

function flush(): void {
  scheduled = false;
  if (syncing || pending.length === 0) return;
  const batch = pending;
  pending = [];
  try {
    commit(batch);
  } catch {
    for (const p of batch) answer(p.res, 503, '{"error":"store"}');
    return;
  }
  syncing = true;
  fdatasync(walFd, (err) => {
    syncing = false;
    for (const p of batch) answer(p.res, err ? 503 : 202, err ? '{"error":"store"}' : '{"status":"accepted"}');
    if (pending.length > 0) schedule();
  });
}

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  setImmediate(flush);
}

function answer(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

const server = http.createServer((req, res) => {
  if (req.method !== 'POST' || req.headers.authorization !== expected) {
    req.resume();
    return answer(res, req.method !== 'POST' ? 404 : 401, '{"error":"refused"}');
  }
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size <= BODY_LIMIT) chunks.push(c);
  });
  req.on('end', () => {
    if (size > BODY_LIMIT) return answer(res, 413, '{"error":"too large"}');
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return answer(res, 400, '{"error":"json"}');
    }
    if (typeof parsed !== 'object' || parsed === null) return answer(res, 400, '{"error":"json"}');
    let key = '';
    if (checked) {
      const event = parseWebhookBody(parsed);
      if (!event.ok) return answer(res, 400, JSON.stringify({ error: event.message }));
      key = deliveryKeyOf(event.event);
    }
    pending.push({ key, body: JSON.stringify(parsed), res });
    schedule();
  });
});
server.keepAliveTimeout = 5_000;
server.listen(Number(portArg), '127.0.0.1', () => process.stdout.write('listening\n'));

process.on('SIGTERM', () => {
  server.close();
  closeSync(walFd);
  db.close();
  process.exit(0);
});
