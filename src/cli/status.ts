import { age } from '../adapters/http/status/html.js';
import { statusSummary, type ClusterSummary, type StatusSummary } from '../adapters/http/status/summary.js';
import { splitListen } from '../app.js';
import { clusterSummary } from '../composition/cluster.js';
import { glpiTicketUrl } from '../composition/status.js';
import { loadStoreBackend, openToolStore, storeExists, storeLabel } from '../composition/store.js';
import type { Config } from '../config/schema.js';
import { loadOrReport } from './common.js';

/** How long the daemon has to answer before the store is read instead. */
const ASK_TIMEOUT_MS = 3000;

/** The daemon's address as a client reaches it (a wildcard listen address is reached on loopback). */
export function daemonUrl(listen: string): string {
  const [host, port] = splitListen(listen);
  const h = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${h.includes(':') ? `[${h}]` : h}:${port}`;
}

type Asked = { readonly ok: true; readonly summary: StatusSummary } | { readonly ok: false; readonly why: string };

/** GET /status?format=json from the running daemon, with the admin token when one is configured. */
async function askDaemon(config: Config): Promise<Asked> {
  const url = `${daemonUrl(config.listen)}/status?format=json`;
  const token = config.admin.token.reveal();
  try {
    const res = await fetch(url, { headers: { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, signal: AbortSignal.timeout(ASK_TIMEOUT_MS), redirect: 'manual' });
    if (res.status === 200) return { ok: true, summary: (await res.json()) as StatusSummary };
    const text = await res.text();
    return { ok: false, why: `the daemon at ${daemonUrl(config.listen)} answered ${res.status}${res.status === 401 || res.status === 403 ? ' (set admin.token, or BRIDGE_ADMIN_TOKEN, to the daemon\'s admin token)' : ''}: ${text.slice(0, 200)}` };
  } catch (e) {
    const err = e as Error & { cause?: { code?: string } };
    return { ok: false, why: `no answer from ${daemonUrl(config.listen)} (${err.cause?.code ?? err.name}: not running?)` };
  }
}

function readStore(config: Config): StatusSummary | undefined {
  if (!storeExists(config)) return undefined;
  const store = openToolStore(config, { cli: true });
  try {
    // PostgreSQL: the nodes as the database knows them (this configuration's node_name is "this node").
    const cluster = clusterSummary(store);
    return statusSummary(store, { page: 1, filter: {} }, { now: Date.now(), source: 'store', ticketUrl: (id) => glpiTicketUrl(config.glpi.url, id), ...(cluster ? { cluster } : {}) });
  } finally {
    store.close();
  }
}

/** Several bridges on one PostgreSQL: this node and its roles, then every node seen in the last hour. */
function clusterLines(c: ClusterSummary): string[] {
  const roles = (r: readonly string[]) => (r.length ? r.join(', ') : 'standby');
  const out = [`cluster: this node ${c.node}: ${roles(c.roles)}`];
  if (c.nameLostTo) out.push(`  NODE_NAME_IN_USE: another bridge (host ${c.nameLostTo.host}, pid ${c.nameLostTo.pid}) took this node's name while it was not heard from`);
  if (c.error !== undefined) out.push(`  the nodes could not be read: ${c.error}`);
  for (const n of c.nodes) {
    out.push(`  ${n.name}${n.name === c.node ? ' (this node)' : ''}: ${n.stopped ? `stopped ${age(n.heardFromSecondsAgo)} ago` : `${roles(n.roles)}, heard from ${age(n.heardFromSecondsAgo)} ago`} · host ${n.host}, pid ${n.pid}, started ${n.startedAt}`);
  }
  return out;
}

function text(s: StatusSummary, file: string, why: string | undefined): string {
  const out: string[] = [];
  out.push(s.source === 'daemon' ? `running: asked the daemon (${s.generatedAt})` : `not answering: read from the store (${s.generatedAt}); ${why ?? ''}`);
  if (s.connections) out.push(`connections: ${Object.entries(s.connections).map(([k, c]) => `${k} ${c.ok ? 'ok' : 'FAILING'} (${c.detail})`).join('; ')}`);
  if (s.cluster) out.push(...clusterLines(s.cluster));
  const c = s.counts;
  out.push(`open incidents ${c.openIncidents} · pending jobs ${c.pending} · running ${c.running} · dead letters ${c.dead} · parked alerts ${c.parked} · alerts to decide ${c.undecided}${c.oldestPendingAgeSeconds !== undefined ? ` · oldest pending ${age(c.oldestPendingAgeSeconds)}` : ''}`);
  if (s.history) {
    const sum = (xs: readonly number[]) => xs.slice(-60).reduce((a, b) => a + b, 0);
    out.push(`last hour: ${sum(s.history.alerts)} alerts received, ${sum(s.history.tickets)} tickets opened, ${sum(s.history.glpiRequests)} GLPI requests`);
  }
  if (s.incidents.rows.length) {
    out.push(`open incidents${s.incidents.pages > 1 ? ` (newest ${s.incidents.rows.length} of ${c.openIncidents})` : ''}:`);
    for (const i of s.incidents.rows) out.push(`  ${i.ticketId !== undefined ? `#${i.ticketId}` : '(queued)'} ${i.severity} ${i.category} ${age(i.ageSeconds)} ×${i.occurrences} ${i.fingerprint}${i.ticketUrl ? `\n      ${i.ticketUrl}` : ''}`);
  }
  if (s.dead.length) {
    out.push('dead letters:');
    for (const j of s.dead) out.push(`  #${j.id} ${j.type} ${j.fingerprint} attempts ${j.attempts}\n      ${j.lastError ?? ''}`);
    out.push(`  fix the cause, then: zabbix-glpi-bridge queue retry --config ${file} ID|--all (or the status page's Retry)`);
  }
  if (s.parked.length) out.push(`parked alerts: ${s.parked.length} (see: zabbix-glpi-bridge queue --config ${file})`);
  const last = s.decisions.rows.slice(0, 10);
  if (last.length) {
    out.push(`last decisions (${last.length} of ${s.decisions.rows.length} kept):`);
    for (const d of last) out.push(`  ${new Date(d.at).toISOString()} ${d.host} ${d.kind} → ${d.action}: ${d.reason}`);
  }
  return `${out.join('\n')}\n`;
}

/**
 * `status --config FILE [--json]`: the status page's summary in the terminal — from the running daemon
 * (GET /status?format=json), or, when it does not answer, from the store's files (no connection state,
 * no per-minute history: those live in the daemon's memory).
 */
export async function statusCommand(file: string | undefined, json: boolean, out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  const config = loadOrReport(file, err);
  if (!config || !file) return 1;
  await loadStoreBackend(config);
  const asked = await askDaemon(config);
  let summary: StatusSummary | undefined;
  let why: string | undefined;
  if (asked.ok) summary = asked.summary;
  else {
    why = asked.why;
    summary = readStore(config);
    if (!summary) {
      err.write(`zabbix-glpi-bridge status: ${why}; and no store at ${storeLabel(config)} (the daemon has not run with this configuration)\n`);
      return 1;
    }
  }
  if (json) out.write(`${JSON.stringify(why !== undefined ? { ...summary, daemon: why } : summary, null, 2)}\n`);
  else out.write(text(summary, file, why));
  return 0;
}
