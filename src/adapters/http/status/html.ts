// The status page's HTML, rendered on the server: no script at all, one stylesheet served by the daemon
// (/status/style.css), so it works offline and under a Content-Security-Policy without 'unsafe-inline'.
// Every text that comes from Zabbix, GLPI, the rules or the request goes through esc() (attributes too).

import type { DecisionRecord } from '../../../core/ports.js';
import type { MinuteRates } from './history.js';
import type { ClusterSummary, JobRow, StatusSummary } from './summary.js';

export function esc(value: unknown): string {
  return String(value).replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

const ACTIONS = ['open', 'follow_up', 'update_severity', 'reopen', 'solve', 'suppress', 'ignore'] as const;

/** A URL the page links to: http(s) only (a ticket URL is built from glpi.url, but never trust a scheme). */
function safeHref(url: string): string | undefined {
  return /^https?:\/\//i.test(url) ? esc(url) : undefined;
}

function time(ms: number): string {
  return esc(new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z'));
}

export function age(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  return `${Math.floor(seconds / 86_400)} d ${Math.floor((seconds % 86_400) / 3600)} h`;
}

/** Query string of the page's own parameters (links keep the filter and page). */
function query(p: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(p)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export interface TryOutcome {
  /** What was evaluated: pasted body or a stored alert. */
  readonly input: string;
  readonly body?: string;
  readonly deliveryId?: number;
  readonly result?: Readonly<Record<string, unknown>>;
  readonly error?: string;
}

export interface PageOptions {
  /** The session's CSRF token, put in every form that POSTs. */
  readonly csrf: string;
  /** Whether a logout button makes sense (a login session; not with a bearer token or on loopback without a token). */
  readonly canLogout: boolean;
  readonly categories: readonly string[];
  readonly flash?: string;
  readonly tried?: TryOutcome;
}

function head(title: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="referrer" content="same-origin"><title>${esc(title)}</title><link rel="stylesheet" href="/status/style.css"></head><body>`;
}

function hidden(csrf: string): string {
  return `<input type="hidden" name="csrf" value="${esc(csrf)}">`;
}

export function loginPage(message?: string): string {
  return `${head('zabbix-glpi-bridge status — sign in')}<main class="login"><h1>zabbix-glpi-bridge</h1>
<form method="post" action="/status/login"><label>Admin token <input type="password" name="token" autocomplete="current-password" required autofocus></label> <button type="submit">Sign in</button></form>
${message ? `<p class="error" role="alert">${esc(message)}</p>` : ''}<p class="note">The admin token is <code>admin.token</code> in the configuration (or <code>BRIDGE_ADMIN_TOKEN</code>).</p></main></body></html>`;
}

export function messagePage(title: string, message: string): string {
  return `${head(title)}<main class="login"><h1>${esc(title)}</h1><p>${esc(message)}</p></main></body></html>`;
}

function connections(s: StatusSummary): string {
  if (!s.connections) return '<p class="note">Not running: read from the store files.</p>';
  const rows = Object.entries(s.connections)
    .map(([name, c]) => `<tr><th scope="row">${esc(name)}</th><td class="${c.ok ? 'ok' : 'bad'}">${c.ok ? 'ok' : 'failing'}</td><td>${esc(c.detail)}</td></tr>`)
    .join('');
  return `<table class="conn"><tbody>${rows}</tbody></table>`;
}

/** Several bridges on one PostgreSQL: who holds the decider and the poller, and the nodes seen in the last hour. */
function cluster(c: ClusterSummary): string {
  const roles = (r: readonly string[]) => (r.length ? r.join(', ') : 'standby');
  const lost = c.nameLostTo
    ? `<p class="error" role="alert">Another bridge (host ${esc(c.nameLostTo.host)}, pid ${esc(c.nameLostTo.pid)}) took this node's name while it was not heard from: NODE_NAME_IN_USE. Stop this one, or give it its own <code>store.postgres.node_name</code>.</p>`
    : '';
  const error = c.error !== undefined ? `<p class="error">The nodes could not be read: ${esc(c.error)}</p>` : '';
  const rows = c.nodes
    .map(
      (n) =>
        `<tr${n.name === c.node ? ' class="self"' : ''}><td>${esc(n.name)}${n.name === c.node ? ' <span class="note">(this node)</span>' : ''}</td><td class="roles">${n.stopped ? '<span class="note">stopped</span>' : esc(roles(n.roles))}</td><td>${esc(n.host)}</td><td class="num">${esc(n.pid)}</td><td>${time(Date.parse(n.startedAt))}</td><td>${esc(age(n.heardFromSecondsAgo))} ago</td></tr>`,
    )
    .join('');
  const table = c.nodes.length
    ? `<table id="cluster-table"><thead><tr><th>Node</th><th>Roles</th><th>Host</th><th>PID</th><th>Started</th><th>Heard from</th></tr></thead><tbody>${rows}</tbody></table>`
    : '';
  return `<h3>Bridges on this database</h3><p id="cluster-self">This node: <strong>${esc(c.node)}</strong> — ${esc(roles(c.roles))}.</p>${lost}${error}${table}`;
}

function counts(s: StatusSummary): string {
  const c = s.counts;
  const cell = (label: string, n: number, id: string, bad = false) => `<div class="count${bad && n > 0 ? ' bad' : ''}" id="count-${id}"><span class="n">${n}</span> ${esc(label)}</div>`;
  return `<div class="counts">${cell('open incidents', c.openIncidents, 'open')}${cell('pending jobs', c.pending, 'pending')}${cell('running', c.running, 'running')}${cell('dead letters', c.dead, 'dead', true)}${cell('parked alerts', c.parked, 'parked', true)}${cell('alerts to decide', c.undecided, 'undecided')}</div>${
    c.oldestPendingAgeSeconds !== undefined ? `<p class="note">Oldest pending job: ${esc(age(c.oldestPendingAgeSeconds))}.</p>` : ''
  }`;
}

/** A line chart of the three per-minute series, as inline SVG (no script). */
export function chart(h: MinuteRates): string {
  const W = 720;
  const H = 160;
  const pad = 28;
  const n = h.minutes.length;
  const max = Math.max(1, ...h.alerts, ...h.tickets, ...h.glpiRequests);
  const x = (i: number) => pad + (n <= 1 ? 0 : (i * (W - pad - 4)) / (n - 1));
  const y = (v: number) => H - pad + 4 - (v * (H - pad - 8)) / max;
  const line = (series: readonly number[], cls: string) => `<polyline class="${cls}" fill="none" points="${series.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ')}"/>`;
  const first = h.minutes[0];
  const last = h.minutes[n - 1];
  const sum = (s: readonly number[]) => s.reduce((a, b) => a + b, 0);
  return `<figure class="chart"><svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="alerts received, tickets opened and GLPI requests per minute">
<line class="axis" x1="${pad}" y1="${H - pad + 4}" x2="${W - 4}" y2="${H - pad + 4}"/><line class="axis" x1="${pad}" y1="4" x2="${pad}" y2="${H - pad + 4}"/>
<text x="2" y="12">${max}</text><text x="2" y="${H - pad + 4}">0</text>
${first !== undefined ? `<text x="${pad}" y="${H - 6}">${time(first)}</text>` : ''}${last !== undefined ? `<text x="${W - 4}" y="${H - 6}" text-anchor="end">${time(last)}</text>` : ''}
${line(h.glpiRequests, 's-glpi')}${line(h.alerts, 's-alerts')}${line(h.tickets, 's-tickets')}</svg>
<figcaption><span class="k s-alerts">alerts received</span> (${sum(h.alerts)}) · <span class="k s-tickets">tickets opened</span> (${sum(h.tickets)}) · <span class="k s-glpi">GLPI requests</span> (${sum(h.glpiRequests)}) per minute, last ${Math.round(n / 60)} h; kept in memory since the daemon started</figcaption></figure>`;
}

function incidents(s: StatusSummary, filter: StatusSummary['decisions']['filter']): string {
  const inc = s.incidents;
  if (s.counts.openIncidents === 0) return '<p class="note">No open incident.</p>';
  const rows = inc.rows
    .map((i) => {
      const href = i.ticketUrl !== undefined ? safeHref(i.ticketUrl) : undefined;
      const ticket = i.ticketId === undefined ? '<span class="note">queued</span>' : href ? `<a href="${href}" rel="noreferrer noopener" target="_blank">#${esc(i.ticketId)}</a>` : `#${esc(i.ticketId)}`;
      return `<tr><td>${ticket}</td><td class="fp">${esc(i.fingerprint)}</td><td>${esc(i.category)}</td><td class="sev sev-${esc(i.severity)}">${esc(i.severity)}</td><td>${esc(age(i.ageSeconds))}</td><td class="num">${esc(i.occurrences)}</td></tr>`;
    })
    .join('');
  const link = (page: number, label: string) => `<a href="/status${esc(query({ page, ...filter }))}#incidents">${esc(label)}</a>`;
  const pager = inc.pages > 1 ? `<nav class="pager">${inc.page > 1 ? link(1, '« first') + ' ' + link(inc.page - 1, '‹ previous') : ''} page ${inc.page} of ${inc.pages} ${inc.page < inc.pages ? link(inc.page + 1, 'next ›') + ' ' + link(inc.pages, 'last »') : ''}</nav>` : '';
  return `<table id="incident-table"><thead><tr><th>Ticket</th><th>Incident (fingerprint)</th><th>Category</th><th>Severity</th><th>Age</th><th>Occurrences</th></tr></thead><tbody>${rows}</tbody></table>${pager}`;
}

function decisionRows(rows: readonly DecisionRecord[]): string {
  return rows
    .map(
      (d) =>
        `<tr><td>${time(d.at)}</td><td class="host">${esc(d.host)}</td><td>${esc(d.kind)}</td><td>${esc(d.category)}</td><td class="sev sev-${esc(d.severity)}">${esc(d.severity)}</td><td class="action">${esc(d.action)}</td><td class="reason">${esc(d.reason)}</td><td>${esc(d.jobs.join(', '))}</td></tr>`,
    )
    .join('');
}

function decisions(s: StatusSummary, o: PageOptions): string {
  const f = s.decisions.filter;
  const categories = [...new Set([...o.categories, ...(f.category ? [f.category] : [])])];
  const option = (value: string, selected: string | undefined, label = value) => `<option value="${esc(value)}"${value === (selected ?? '') ? ' selected' : ''}>${esc(label)}</option>`;
  const form = `<form method="get" action="/status#decisions" class="filter" id="decision-filter">
<label>Host <input name="host" value="${esc(f.host ?? '')}" maxlength="256"></label>
<label>Category <select name="category">${option('', f.category, 'any')}${categories.map((c) => option(c, f.category)).join('')}</select></label>
<label>Action <select name="action">${option('', f.action, 'any')}${ACTIONS.map((a) => option(a, f.action)).join('')}</select></label>
<button type="submit">Filter</button> <a href="/status#decisions">clear</a></form>`;
  const table = s.decisions.rows.length
    ? `<table id="decision-table"><thead><tr><th>When</th><th>Host</th><th>Alert</th><th>Category</th><th>Severity</th><th>Action</th><th>Reason</th><th>Jobs</th></tr></thead><tbody>${decisionRows(s.decisions.rows)}</tbody></table>`
    : '<p class="note" id="decision-table">No decision matches.</p>';
  return form + table;
}

function jobCells(j: JobRow): string {
  return `<td class="num">${esc(j.id)}</td><td>${esc(j.type)}</td><td class="fp">${esc(j.fingerprint)}</td><td class="num">${esc(j.attempts)}</td>`;
}

function queue(s: StatusSummary, o: PageOptions): string {
  const pending = s.queue.length
    ? `<table id="queue-table"><thead><tr><th>Job</th><th>Type</th><th>Incident</th><th>Attempts</th><th>State</th><th>Last error</th></tr></thead><tbody>${s.queue
        .map((j) => `<tr>${jobCells(j)}<td>${j.status === 'running' ? 'running' : `next ${time(j.nextAttemptAt)}`}</td><td class="err">${esc(j.lastError ?? '')}</td></tr>`)
        .join('')}</tbody></table>`
    : '<p class="note" id="queue-table">No job waiting.</p>';
  const dead = s.dead.length
    ? `<table id="dead-table"><thead><tr><th>Job</th><th>Type</th><th>Incident</th><th>Attempts</th><th>GLPI error</th><th></th></tr></thead><tbody>${s.dead
        .map(
          (j) =>
            `<tr data-job="${esc(j.id)}">${jobCells(j)}<td class="err">${esc(j.lastError ?? '')}</td><td><form method="post" action="/status/retry">${hidden(o.csrf)}<input type="hidden" name="id" value="${esc(j.id)}"><button type="submit" class="retry">Retry</button></form></td></tr>`,
        )
        .join('')}</tbody></table><p class="note">Fix the cause first (a rule, GLPI's rights); a ticket creation is rendered again with the rules in force.</p>`
    : '<p class="note" id="dead-table">No dead letter.</p>';
  const parked = s.parked.length
    ? `<h3>Parked alerts</h3><table><thead><tr><th>Delivery</th><th>Event</th><th>Kind</th><th>Error</th><th>Parked</th></tr></thead><tbody>${s.parked
        .map((p) => `<tr><td class="num">${esc(p.deliveryId)}</td><td>${esc(p.eventId)}</td><td>${esc(p.kind)}</td><td class="err">${esc(p.error)}</td><td>${time(p.parkedAt)}</td></tr>`)
        .join('')}</tbody></table>`
    : '';
  return `<h3>Waiting and running</h3>${pending}<h3 id="dead">Dead letters</h3>${dead}${parked}`;
}

function tryPanel(s: StatusSummary, o: PageOptions): string {
  const t = o.tried;
  const recent = s.decisions.rows.filter((d) => d.deliveryId !== undefined).slice(0, 50);
  const options = recent
    .map((d) => `<option value="${esc(d.deliveryId)}"${t?.deliveryId === d.deliveryId ? ' selected' : ''}>#${esc(d.deliveryId)} ${esc(d.kind)} ${esc(d.host)} — ${esc(d.action)}</option>`)
    .join('');
  let result = '';
  if (t?.error !== undefined) result = `<p class="error" id="try-result" role="alert">${esc(t.error)}</p>`;
  else if (t?.result) {
    const r = t.result;
    const row = (k: string) => (r[k] !== undefined ? `<tr><th scope="row">${esc(k)}</th><td>${esc(typeof r[k] === 'string' ? r[k] : JSON.stringify(r[k]))}</td></tr>` : '');
    result = `<div id="try-result"><table class="conn"><tbody>${['category', 'matched_by', 'severity', 'severity_reason', 'fingerprint', 'action', 'reason', 'jobs'].map(row).join('')}</tbody></table><details><summary>Everything <code>explain</code> prints</summary><pre>${esc(JSON.stringify(r, null, 2))}</pre></details></div>`;
  }
  return `<form method="post" action="/status/try#try" id="try-form">${hidden(o.csrf)}
<label>Zabbix webhook body (JSON, as the media type sends it)<textarea name="body" rows="8" spellcheck="false">${esc(t?.body ?? '')}</textarea></label>
<label>or a recent alert <select name="delivery"><option value="">—</option>${options}</select></label>
<button type="submit">Try the rules</button></form><p class="note">Evaluated with the rules in force, as if no incident were open for its fingerprint (the same answer as <code>zabbix-glpi-bridge explain</code>). Nothing is stored or sent.</p>${result}`;
}

export function statusPage(s: StatusSummary, o: PageOptions): string {
  const filter = s.decisions.filter;
  return `${head('zabbix-glpi-bridge status')}<header><h1>zabbix-glpi-bridge</h1><span class="note">generated ${time(Date.parse(s.generatedAt))} · <a href="/status">refresh</a> · <a href="/status?format=json">JSON</a></span>${
    o.canLogout ? `<form method="post" action="/status/logout" class="logout">${hidden(o.csrf)}<button type="submit">Sign out</button></form>` : ''
  }</header><main>
${o.flash ? `<p class="flash" id="flash" role="status">${esc(o.flash)}</p>` : ''}
<section id="overview"><h2>Connections</h2>${connections(s)}${s.cluster ? `<div id="cluster">${cluster(s.cluster)}</div>` : ''}${counts(s)}${s.history ? chart(s.history) : ''}</section>
<section id="incidents"><h2>Open incidents (${s.counts.openIncidents})</h2>${incidents(s, filter)}</section>
<section id="decisions"><h2>Last decisions</h2>${decisions(s, o)}</section>
<section id="queue"><h2>Queue</h2>${queue(s, o)}</section>
<section id="try"><h2>Try a rule</h2>${tryPanel(s, o)}</section>
</main></body></html>`;
}

export const STYLESHEET = `
:root{color-scheme:light dark;--fg:#1d2330;--muted:#5b6472;--bg:#fff;--line:#d8dde5;--ok:#1a7f37;--bad:#c2261d;--head:#f3f5f8;--a:#2456c7;--t:#d9480f;--g:#6e40c9}
@media (prefers-color-scheme:dark){:root{--fg:#e6e9ef;--muted:#9aa3b2;--bg:#14171c;--line:#2c323c;--head:#1c2027;--a:#6d9bff;--t:#ff8a4c;--g:#b08cff}}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;gap:1em;align-items:baseline;padding:.6em 1.2em;border-bottom:1px solid var(--line);background:var(--head)}header h1{font-size:1.2em;margin:0}
.logout{margin-left:auto}main{padding:0 1.2em 2em;max-width:1400px}h2{font-size:1.05em;margin:1.4em 0 .5em;border-bottom:1px solid var(--line);padding-bottom:.2em}h3{font-size:.95em;margin:1em 0 .4em}
table{border-collapse:collapse;width:100%;margin:.3em 0}th,td{text-align:left;padding:.25em .5em;border-bottom:1px solid var(--line);vertical-align:top}thead th{background:var(--head);font-weight:600}
table.conn{width:auto}.ok{color:var(--ok);font-weight:600}.bad,.error{color:var(--bad);font-weight:600}.note{color:var(--muted)}.num{text-align:right}
.fp,.err,.reason{word-break:break-word}.fp{font-family:ui-monospace,monospace;font-size:.9em}.err{color:var(--bad)}
.counts{display:flex;flex-wrap:wrap;gap:.6em;margin:.6em 0}.count{border:1px solid var(--line);border-radius:6px;padding:.3em .7em}.count .n{font-size:1.3em;font-weight:700}.count.bad{border-color:var(--bad)}
.sev-disaster,.sev-high{color:var(--bad)}.sev-average{color:var(--t)}
form.filter{display:flex;flex-wrap:wrap;gap:.6em;align-items:end;margin:.3em 0}label{display:inline-flex;flex-direction:column;gap:.15em;font-size:.9em}
input,select,textarea,button{font:inherit;color:inherit;background:var(--bg);border:1px solid var(--line);border-radius:4px;padding:.25em .45em}button{cursor:pointer;background:var(--head)}
#try-form{display:flex;flex-direction:column;gap:.5em;max-width:900px}#try-form label{display:flex}#try-form button{align-self:flex-start}textarea{width:100%;font-family:ui-monospace,monospace;font-size:.9em}
pre{background:var(--head);padding:.6em;overflow:auto;max-height:28em}.flash{border-left:4px solid var(--ok);padding:.4em .8em;background:var(--head)}.pager{margin:.4em 0}
a{color:var(--a)}.chart{margin:.8em 0}.chart svg{max-width:100%;height:auto}.chart text{font-size:10px;fill:var(--muted)}.axis{stroke:var(--line)}
polyline{stroke-width:1.6}.s-alerts{stroke:var(--a);color:var(--a)}.s-tickets{stroke:var(--t);color:var(--t)}.s-glpi{stroke:var(--g);color:var(--g)}figcaption{color:var(--muted);font-size:.9em}.k{font-weight:600}
main.login{max-width:32em;margin:3em auto}
`;
