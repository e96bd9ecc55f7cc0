/**
 * The oracle: what GLPI must end with, computed from what Zabbix said (event
 * times, recoveries, acknowledgements) and the order in which the bridge's
 * inbox accepted the webhooks — never from the bridge's own decisions.
 *
 * Rules (default policy: fingerprint host + trigger, reopen window 24 h, no hold-down):
 *  1. An event is "known open" when the inbox accepted its problem before its
 *     recovery (or it never recovered); the others (recovery first) open
 *     nothing. Incident cycles: walking a fingerprint's webhooks in inbox
 *     order, a known-open problem starts a new cycle when no known-open event
 *     is open and the last recovery is more than 24 h old (Zabbix time; the
 *     model's jumps are 1 h or > 24 h, so no gap is near the window).
 *  2. A cycle has exactly one ticket. With glpi.recovery close, a cycle whose
 *     events all recovered and that then got a new problem within 24 h may
 *     also have moved to a new ticket then (the Closed one cannot be reopened;
 *     or the close was still queued and merged away): one ticket per such
 *     stretch at most. A ticket belongs to the cycle of the Zabbix event its
 *     description names, and to the incident whose trigger name its title carries.
 *  3. With glpi.recovery solve or close, a cycle's (last) ticket ends solved
 *     (status 5 or 6) exactly when Zabbix's last word on every event of the
 *     cycle is "resolved"; earlier tickets of the cycle are closed; with
 *     followup, no ticket is ever solved.
 *  4. Every update message of a known-open event appears exactly once, in its
 *     cycle's ticket's follow-ups (also when the update was delivered before
 *     the problem); with recovery close, at most once when the inbox took it
 *     after the cycle first had no open event (its ticket may be Closed). A
 *     message of an event not known open appears at most once, on a ticket of
 *     its own incident. Messages with the bridge's write-back prefix appear nowhere.
 *     A message received more than max(reopen window, store.retention: 7 d)
 *     after every event of its cycle recovered may be dropped (the bridge has
 *     forgotten the cycle), never put elsewhere.
 *  5. A follow-up or solution names Zabbix events (problem or recovery ids) of
 *     its own ticket's cycle, or events of its incident not known open.
 *  6. No dead letters; the bridge settles (inbox decided, queue empty); a
 *     redelivery gets the first delivery's id.
 *  7. A ticket's title keeps the trigger name's text (GLPI may HTML-encode it).
 */
import { decodeEntities } from '../../src/adapters/glpi/client.js';
import { DAY } from './case.js';
import type { Outcome } from './runner.js';

const REOPEN_WINDOW_MS = DAY;
/** An ended cycle is forgotten after the reopen window and store.retention (default 7 days), whichever is longer. */
const FORGOTTEN_AFTER_MS = Math.max(REOPEN_WINDOW_MS, 7 * DAY);

interface EventFacts {
  readonly id: string;
  readonly inc: number;
  readonly recoveryId: string;
  readonly problemAt: number;
  readonly recoveredAt?: number;
  readonly problemDelivery?: number;
  readonly recoveryDelivery?: number;
  /** Index in cycles; -1: not known open, part of no cycle. */
  cycle: number;
}

interface Cycle {
  readonly key: number;
  readonly inc: number;
  /** Its known-open events. */
  readonly events: EventFacts[];
  readonly tickets: number[];
  /** Inbox id of the recovery that first left it with no open event. */
  firstEnd?: number;
  /** Times a problem came back within 24 h after every event had recovered. */
  restarts: number;
}

/** GLPI 10 stores names and texts HTML-encoded: the oracle reads them decoded, as the bridge's client does. */
export const decodeHtml = decodeEntities;

function occurrences(haystack: string, needle: string): number {
  let n = 0;
  for (let i = haystack.indexOf(needle); i >= 0; i = haystack.indexOf(needle, i + needle.length)) n++;
  return n;
}

const known = (e: EventFacts): boolean =>
  e.problemDelivery !== undefined && (e.recoveryDelivery === undefined || e.problemDelivery < e.recoveryDelivery);

export function judge(o: Outcome): string[] {
  const v: string[] = [...o.anomalies];
  const spec = o.spec;

  // Zabbix's truth, with the inbox order of each event's problem and recovery.
  const events: EventFacts[] = [];
  for (const ev of o.events.values()) {
    if (ev.problemAt === undefined) continue;
    const delivery = (kind: string) => o.occs.find((f) => f.occ.ev === ev.spec.id && f.occ.kind === kind)?.deliveryId;
    events.push({
      id: ev.spec.id,
      inc: ev.spec.inc,
      recoveryId: ev.spec.recoveryId,
      problemAt: ev.problemAt,
      ...(ev.recoveredAt !== undefined ? { recoveredAt: ev.recoveredAt } : {}),
      ...(delivery('problem') !== undefined ? { problemDelivery: delivery('problem') as number } : {}),
      ...(delivery('recovery') !== undefined ? { recoveryDelivery: delivery('recovery') as number } : {}),
      cycle: -1,
    });
  }
  for (const f of o.occs) {
    if (f.body !== undefined && f.deliveryId === undefined) v.push(`harness: ${f.occ.kind} of ev ${f.occ.ev} was never accepted`);
  }

  // Rule 1: cycles per incident, walking its problems and recoveries in inbox order.
  const cycles: Cycle[] = [];
  for (const inc of spec.incidents) {
    const mine = new Map(events.filter((e) => e.inc === inc.k).map((e) => [e.id, e]));
    const walk = o.occs
      .filter((f) => f.deliveryId !== undefined && f.occ.kind !== 'update' && mine.has(f.occ.ev))
      .sort((a, b) => (a.deliveryId as number) - (b.deliveryId as number));
    const open = new Set<string>();
    let current: Cycle | undefined;
    let endedAt = -Infinity;
    for (const f of walk) {
      const e = mine.get(f.occ.ev) as EventFacts;
      if (!known(e)) continue;
      if (f.occ.kind === 'problem') {
        if (!current || (open.size === 0 && e.problemAt - endedAt > REOPEN_WINDOW_MS)) {
          current = { key: cycles.length, inc: inc.k, events: [], tickets: [], restarts: 0 };
          cycles.push(current);
        } else if (open.size === 0) {
          current.restarts++;
        }
        current.events.push(e);
        e.cycle = current.key;
        open.add(e.id);
      } else if (open.delete(e.id) && open.size === 0) {
        endedAt = e.recoveredAt ?? endedAt;
        if (current) current.firstEnd ??= f.deliveryId;
      }
    }
  }
  const byId = new Map<string, { ev: EventFacts; recovery: boolean }>();
  for (const e of events) {
    byId.set(e.id, { ev: e, recovery: false });
    byId.set(e.recoveryId, { ev: e, recovery: true });
  }
  const cycleName = (c: Cycle) => `${spec.incidents[c.inc]?.token ?? '?'} cycle ${cycles.filter((x) => x.inc === c.inc).indexOf(c) + 1} (events ${c.events.map((e) => e.id).join(', ')})`;
  const idsIn = (text: string): string[] => [...new Set([...text.matchAll(/\b\d{7}\b/g)].map((m) => m[0]).filter((id) => byId.has(id)))];

  // Rule 2: which cycle each ticket belongs to.
  const ticketCycle = new Map<number, Cycle>();
  for (const t of o.tickets) {
    const name = decodeHtml(t.name);
    const inc = spec.incidents.find((i) => name.includes(`${i.token} `));
    if (!inc) {
      v.push(`ticket #${t.id} "${t.name}" belongs to no incident of the case`);
      continue;
    }
    // Rule 7.
    if (!name.includes(inc.triggerName)) v.push(`ticket #${t.id} title "${t.name}" lost part of the trigger name "${inc.triggerName}"`);
    const named = idsIn(decodeHtml(t.content)).map((id) => byId.get(id)?.ev).filter((e): e is EventFacts => e !== undefined);
    const ev = named.find((e) => e.inc === inc.k) ?? named[0];
    if (!ev) {
      v.push(`ticket #${t.id} "${t.name}" names no Zabbix event of the case in its description`);
      continue;
    }
    if (ev.inc !== inc.k) v.push(`ticket #${t.id} "${t.name}" describes ev ${ev.id} of another incident (${spec.incidents[ev.inc]?.token})`);
    const c = cycles[ev.cycle];
    if (!c) {
      v.push(`ticket #${t.id} "${t.name}" was opened for ev ${ev.id}, whose recovery reached the bridge before its problem (inbox ids ${ev.recoveryDelivery} < ${ev.problemDelivery})`);
      continue;
    }
    c.tickets.push(t.id);
    ticketCycle.set(t.id, c);
  }
  const ticketById = new Map(o.tickets.map((t) => [t.id, t]));
  const close = spec.settings.recovery === 'close';
  for (const c of cycles) {
    const allowed = close ? 1 + c.restarts : 1;
    if (c.tickets.length > allowed) v.push(`${c.tickets.length} tickets (#${c.tickets.join(', #')}) for one incident cycle${allowed > 1 ? ` (at most ${allowed})` : ''}: ${cycleName(c)}`);
    if (c.tickets.length === 0) {
      v.push(`no ticket for ${cycleName(c)}, although the problem of ev ${c.events.map((e) => e.id).join(', ')} reached the bridge before its recovery`);
    }
    // Rule 3.
    const open = c.events.filter((e) => e.recoveredAt === undefined).map((e) => e.id);
    const sorted = [...c.tickets].sort((a, b) => a - b);
    sorted.forEach((id, i) => {
      const t = ticketById.get(id);
      if (!t) return;
      const solved = t.status === 5 || t.status === 6;
      if (spec.settings.recovery === 'followup') {
        if (solved) v.push(`ticket #${id} is solved (status ${t.status}) but glpi.recovery is followup: ${cycleName(c)}`);
      } else if (i < sorted.length - 1) {
        if (!solved) v.push(`ticket #${id} is still open (status ${t.status}) although ticket #${sorted[sorted.length - 1]} took over ${cycleName(c)}`);
      } else if (open.length === 0 && !solved) {
        v.push(`ticket #${id} is still open (status ${t.status}) but every event of ${cycleName(c)} has recovered in Zabbix`);
      } else if (open.length > 0 && solved) {
        v.push(`ticket #${id} is solved (status ${t.status}) but ev ${open.join(', ')} of ${cycleName(c)} is still a problem in Zabbix`);
      }
    });
  }

  // Rule 4: update messages.
  const fuByTicket = new Map<number, string[]>();
  for (const f of o.followups) fuByTicket.set(f.items_id, [...(fuByTicket.get(f.items_id) ?? []), decodeHtml(f.content)]);
  const incidentOfTicket = (id: number): number | undefined => {
    const t = ticketById.get(id);
    return t ? spec.incidents.find((i) => decodeHtml(t.name).includes(`${i.token} `))?.k : undefined;
  };
  for (const f of o.occs) {
    if (f.occ.kind !== 'update' || f.occ.update.message === undefined || f.body === undefined) continue;
    const msg = f.occ.update.message;
    const where = [...fuByTicket.entries()].map(([id, list]) => [id, list.reduce((n, c) => n + occurrences(c, msg), 0)] as const).filter(([, n]) => n > 0);
    const total = where.reduce((n, [, k]) => n + k, 0);
    const place = where.map(([id, n]) => `#${id}${n > 1 ? ` ×${n}` : ''}`).join(', ');
    if (f.occ.update.own) {
      if (total > 0) v.push(`the bridge's own write-back message "${msg}" came back into GLPI (${place})`);
      continue;
    }
    const ev = events.find((e) => e.id === f.occ.ev);
    if (!ev) continue;
    if (total > 1) v.push(`message "${msg}" of ev ${ev.id} appears ${total} times (${place})`);
    const c = cycles[ev.cycle];
    if (!c) {
      const foreign = where.filter(([id]) => incidentOfTicket(id) !== ev.inc);
      if (foreign.length > 0) v.push(`message "${msg}" of ev ${ev.id} (${spec.incidents[ev.inc]?.token}) is on ticket(s) ${foreign.map(([id]) => `#${id}`).join(', ')} of another incident`);
      continue;
    }
    const wrong = where.filter(([id]) => !c.tickets.includes(id));
    const own = c.tickets.length > 0 ? c.tickets.map((id) => `#${id}`).join(' or ') : undefined;
    if (wrong.length > 0) v.push(`message "${msg}" of ev ${ev.id} (${cycleName(c)}) is on ticket(s) ${wrong.map(([id]) => `#${id}`).join(', ')}, not its own${own ? ` ${own}` : ' (it has none)'}`);
    const mayBeClosed = close && c.firstEnd !== undefined && (f.deliveryId ?? 0) > c.firstEnd;
    // A cycle that ended longer ago than the reopen window and store.retention is forgotten (README: State size).
    const ended = c.events.every((e) => e.recoveredAt !== undefined) ? Math.max(...c.events.map((e) => e.recoveredAt ?? 0)) : undefined;
    const forgotten = ended !== undefined && f.at !== undefined && f.at - ended > FORGOTTEN_AFTER_MS;
    if (own && total === 0 && !mayBeClosed && !forgotten) {
      v.push(`message "${msg}" of ev ${ev.id} never reached ticket ${own} (inbox ids: update ${f.deliveryId}, problem ${ev.problemDelivery}${ev.recoveryDelivery !== undefined ? `, recovery ${ev.recoveryDelivery}` : ''})`);
    }
  }

  // Rule 5: follow-ups and solutions name their own cycle's events only.
  const texts: { ticket: number; kind: string; content: string }[] = [
    ...o.followups.map((f) => ({ ticket: f.items_id, kind: `follow-up ${f.id}`, content: decodeHtml(f.content) })),
    ...o.solutions.map((s) => ({ ticket: s.items_id, kind: `solution ${s.id}`, content: decodeHtml(s.content) })),
  ];
  for (const x of texts) {
    const c = ticketCycle.get(x.ticket);
    if (!c) continue;
    for (const id of idsIn(x.content)) {
      const hit = byId.get(id) as { ev: EventFacts; recovery: boolean };
      if (hit.ev.cycle !== c.key && !(hit.ev.cycle === -1 && hit.ev.inc === c.inc)) {
        const other = cycles[hit.ev.cycle];
        v.push(`${x.kind} on ticket #${x.ticket} (${cycleName(c)}) is about ${hit.recovery ? 'recovery of ' : ''}ev ${hit.ev.id} of ${other ? cycleName(other) : `incident ${spec.incidents[hit.ev.inc]?.token}`}`);
      }
    }
  }

  // Rule 6.
  for (const d of o.deadLetters) v.push(`dead letter: ${d}`);
  return [...new Set(v)];
}

/** A short text of what GLPI holds, for failure reports. */
export function glpiSummary(o: Outcome): string[] {
  const lines: string[] = [];
  for (const t of o.tickets) {
    lines.push(`ticket #${t.id} status ${t.status} "${t.name}"`);
    for (const f of o.followups.filter((x) => x.items_id === t.id)) lines.push(`    follow-up ${f.id}: ${decodeHtml(f.content).replace(/<br>\n?/g, ' / ').replace(/<[^>]+>/g, '').slice(0, 220)}`);
    for (const s of o.solutions.filter((x) => x.items_id === t.id)) lines.push(`    solution ${s.id}: ${decodeHtml(s.content).replace(/<br>\n?/g, ' / ').slice(0, 160)}`);
  }
  return lines;
}
