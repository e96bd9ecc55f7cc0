/**
 * A model case: the Zabbix side of a few incidents (problem events, updates,
 * recoveries, in Zabbix's order), how Zabbix delivers them (retries after a
 * failed webhook, lost answers, several at once), what goes wrong meanwhile
 * (GLPI faults, kill -9, power cuts) and when model time jumps. Plain data,
 * generated from a seed; the runner executes it, the oracle judges the end.
 */
import type { Faults } from '../../src/glpi-fake/server.js';
import { Prng } from './prng.js';

export type RecoveryMode = 'solve' | 'close' | 'followup';

export interface Settings {
  readonly recovery: RecoveryMode;
  readonly coalesceMs: number;
  readonly concurrency: number;
}

export interface Tag {
  readonly tag: string;
  readonly value: string;
}

export interface IncidentSpec {
  /** Index in CaseSpec.incidents. */
  readonly k: number;
  readonly host: string;
  readonly triggerId: string;
  readonly itemId: string;
  /** Unique in the case, at the start of the trigger name: tells which incident a GLPI ticket belongs to. */
  readonly token: string;
  readonly triggerName: string;
  readonly tags: readonly Tag[];
  readonly itemKey: string;
  readonly itemValue: string;
}

export interface EventSpec {
  readonly id: string;
  readonly inc: number;
  readonly recoveryId: string;
  /** Zabbix severity number at the problem (2 warning .. 5 disaster). */
  readonly severity: number;
}

export interface UpdateSpec {
  readonly ack: boolean;
  /** Unique in the case; absent: an update without a message. */
  readonly message?: string;
  /** New severity (a "change severity" update). */
  readonly severity?: number;
  /** The message starts with the bridge's own write-back prefix. */
  readonly own?: boolean;
}

export type OccSpec =
  | { readonly n: number; readonly ev: string; readonly kind: 'problem' }
  | { readonly n: number; readonly ev: string; readonly kind: 'recovery' }
  | { readonly n: number; readonly ev: string; readonly kind: 'update'; readonly update: UpdateSpec };

/** ok: delivered and answered 202; lost: never reached the bridge; noanswer: committed, but Zabbix timed out (so it retries). */
export type Fate = 'ok' | 'lost' | 'noanswer';

export const GLPI_OPS = ['createTicket', 'addFollowup', 'addSolution', 'updateTicket', 'findTicketByMarker', 'followupContents'] as const;
export type GlpiOp = (typeof GLPI_OPS)[number];

/** Where an armed kill fires: around the nth GLPI call of a kind, after the nth state commit, or after the nth intake commit (before its 202). */
export type Trigger =
  | { readonly on: 'glpi'; readonly op: GlpiOp; readonly when: 'before' | 'after'; readonly nth: number }
  | { readonly on: 'commit'; readonly nth: number }
  | { readonly on: 'accept'; readonly nth: number };

/** The state file after the cut: as at its last fsync, or as at the nth commit after it (a prefix of the unsynced tail survived). */
export interface PowerCut {
  readonly restore: 'fsync' | 'commit';
  readonly commits: number;
}

export type Step =
  | { readonly t: 'occur'; readonly occ: number }
  | { readonly t: 'send'; readonly occ: number; readonly fate: Fate }
  | { readonly t: 'burst'; readonly sends: readonly { readonly occ: number; readonly fate: Fate }[] }
  | { readonly t: 'wait'; readonly ms: number }
  | { readonly t: 'kill'; readonly power?: PowerCut }
  | { readonly t: 'arm'; readonly trigger: Trigger; readonly power?: PowerCut }
  | { readonly t: 'faults'; readonly faults: Partial<Faults> }
  | { readonly t: 'expire' }
  /** backlog: the bridge has not decided on everything received yet when time jumps and housekeeping runs. */
  | { readonly t: 'jump'; readonly ms: number; readonly backlog: boolean };

export interface CaseSpec {
  readonly seed: number;
  readonly settings: Settings;
  /** Updates may be delivered before their problem (family `early`). */
  readonly early: boolean;
  readonly incidents: readonly IncidentSpec[];
  readonly events: readonly EventSpec[];
  readonly occs: readonly OccSpec[];
  readonly steps: readonly Step[];
}

/** Families of scenarios; each can be switched off by env (MODEL_NO_<NAME>=1) for debugging. The default runs them all. */
export interface Families {
  /** kill -9 at random moments and at chosen steps (around GLPI calls, after commits). */
  readonly crash: boolean;
  /** Power cuts: the state file goes back to its last fsynced content. */
  readonly powerloss: boolean;
  /** GLPI 5xx, 429, answers dropped after commit, session expiry, latency. */
  readonly faults: boolean;
  /** Zabbix retries a failed webhook later: recoveries (and updates) before their problem. */
  readonly reorder: boolean;
  /** Updates may reach the bridge before their problem (off: Zabbix holds an update back until its problem got in). */
  readonly early: boolean;
  /** The same alert delivered again (Zabbix timed out waiting for the 202). */
  readonly redelivery: boolean;
  /** Model time jumps (1 h, or past the 24 h reopen window). */
  readonly jumps: boolean;
  /** glpi.recovery close and followup besides solve. */
  readonly modes: boolean;
  /** Acknowledgements, messages, severity changes. */
  readonly updates: boolean;
  /** Several webhooks in the same event-loop turn. */
  readonly bursts: boolean;
  /** Trigger names with <, >, & and quotes. */
  readonly titles: boolean;
  /** MODEL_RECOVERY=solve|close|followup: every case uses this glpi.recovery. */
  readonly recovery?: RecoveryMode;
}

export const FAMILY_NAMES = ['crash', 'powerloss', 'faults', 'reorder', 'early', 'redelivery', 'jumps', 'modes', 'updates', 'bursts', 'titles'] as const;

export function familiesFromEnv(env: Readonly<Record<string, string | undefined>> = process.env): Families {
  const on = (name: string) => env[`MODEL_NO_${name.toUpperCase()}`] !== '1';
  const recovery = env.MODEL_RECOVERY;
  if (recovery !== undefined && !['solve', 'close', 'followup'].includes(recovery)) throw new Error(`MODEL_RECOVERY=${recovery}: use solve, close or followup`);
  return { ...(Object.fromEntries(FAMILY_NAMES.map((n) => [n, on(n)])) as unknown as Families), ...(recovery ? { recovery: recovery as RecoveryMode } : {}) };
}

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
export const OWN_PREFIX = '[glpi-bridge]';

const PLAIN_NAMES = ['CPU load is high', 'Memory usage over threshold', 'Interface eth0 flapping', 'Service check failed'];
const SPECIAL_NAMES = ['Free disk space < 20% on /var', 'Temperature > 80 C & rising', 'Link "uplink-1" down', "Queue size <= 5 isn't met"];
const COMPONENTS = ['cpu', 'memory', 'storage', 'network', 'temperature', 'other'];

interface Draft {
  kind: 'problem' | 'recovery' | 'update';
  ev: string;
  update?: UpdateSpec;
}

/** Random merge of sequences, keeping each one's order. */
function interleave<T>(r: Prng, seqs: readonly (readonly T[])[]): T[] {
  const idx = seqs.map(() => 0);
  const out: T[] = [];
  for (;;) {
    const live = seqs.map((s, i) => i).filter((i) => (idx[i] as number) < (seqs[i] as readonly T[]).length);
    if (live.length === 0) return out;
    // Weighted by what is left, so long sequences do not all end up at the end.
    const i = r.weighted(live.map((j) => [(seqs[j] as readonly T[]).length - (idx[j] as number), j] as const));
    out.push((seqs[i] as readonly T[])[idx[i] as number] as T);
    idx[i] = (idx[i] as number) + 1;
  }
}

export function generate(seed: number, fam: Families): CaseSpec {
  const r = new Prng(seed);
  const settings: Settings = {
    recovery: ((m: RecoveryMode) => fam.recovery ?? m)(fam.modes ? r.weighted([[70, 'solve'], [12, 'close'], [18, 'followup']] as const) : 'solve'),
    coalesceMs: r.pick([0, 0, 5]),
    concurrency: r.pick([1, 2, 4]),
  };

  // Incidents: host + trigger; two triggers may share a host.
  const nInc = r.weighted([[3, 1], [4, 2], [3, 3], [1, 4]] as const);
  const incidents: IncidentSpec[] = [];
  for (let k = 0; k < nInc; k++) {
    const host = `mhost-${r.int(1, Math.max(1, nInc - 1))}`;
    const special = fam.titles && r.chance(0.3);
    const token = `ZT${k + 1}`;
    const component = r.pick(COMPONENTS);
    incidents.push({
      k,
      host,
      triggerId: String(31000 + k * 7 + r.int(0, 6)),
      itemId: String(52000 + k),
      token,
      triggerName: `${token} on ${host}: ${r.pick(special ? SPECIAL_NAMES : PLAIN_NAMES)}`,
      tags: [{ tag: 'component', value: component }, { tag: 'model', value: 'yes' }],
      itemKey: component === 'cpu' ? 'system.cpu.util' : `model.check[${k}]`,
      itemValue: `${r.int(40, 99)} %`,
    });
  }

  // Zabbix event ids: 7 digits, unique in the case (the oracle finds them in GLPI texts).
  let nextId = r.int(1_000, 8_000) * 1_000;
  const newId = () => String(nextId++);
  const events: EventSpec[] = [];
  let messages = 0;
  const incidentScripts: Draft[][] = incidents.map((inc) => {
    const nEv = r.weighted([[4, 1], [3, 2], [2, 3]] as const);
    const overlap = r.chance(0.4);
    const perEvent: Draft[][] = [];
    for (let e = 0; e < nEv; e++) {
      const id = newId();
      const recoveryId = newId();
      let severity = r.int(2, 5);
      events.push({ id, inc: inc.k, recoveryId, severity });
      const seq: Draft[] = [{ kind: 'problem', ev: id }];
      const nUpd = fam.updates ? r.weighted([[4, 0], [3, 1], [2, 2], [1, 3]] as const) : 0;
      const updates: Draft[] = [];
      for (let u = 0; u < nUpd; u++) {
        const type = r.weighted([[4, 'ack+msg'], [3, 'msg'], [2, 'severity'], [1, 'ack'], [1, 'own']] as const);
        let update: UpdateSpec;
        const message = () => `note${++messages}x${r.int(100, 999)}`;
        switch (type) {
          case 'ack+msg':
            update = { ack: true, message: message() };
            break;
          case 'msg':
            update = { ack: false, message: message() };
            break;
          case 'severity': {
            const next = r.pick([2, 3, 4, 5].filter((s) => s !== severity));
            severity = next;
            update = r.chance(0.6) ? { ack: false, severity: next, message: message() } : { ack: false, severity: next };
            break;
          }
          case 'ack':
            update = { ack: true };
            break;
          case 'own':
            update = { ack: false, message: `${OWN_PREFIX} GLPI ticket #${r.int(1, 99)}: ${message()}`, own: true };
            break;
        }
        updates.push({ kind: 'update', ev: id, update });
      }
      const recovers = r.chance(e < nEv - 1 ? 0.85 : 0.65);
      // Most updates come while the problem is open; Zabbix also delivers updates of resolved problems.
      const after = recovers && updates.length > 0 && r.chance(0.15) ? 1 : 0;
      seq.push(...updates.slice(0, updates.length - after));
      if (recovers) seq.push({ kind: 'recovery', ev: id });
      seq.push(...updates.slice(updates.length - after));
      perEvent.push(seq);
    }
    if (!overlap) return perEvent.flat();
    // Overlapping problems of one trigger ("multiple problem events" mode): problems still start in order.
    return interleave(r, perEvent);
  });

  const drafts = interleave(r, incidentScripts);
  const occs: OccSpec[] = drafts.map((d, n) =>
    d.kind === 'update' ? { n, ev: d.ev, kind: 'update', update: d.update as UpdateSpec } : { n, ev: d.ev, kind: d.kind },
  );
  const slots = occs.length;

  // Time jumps between slots (a jump at j happens before slot j). Short jumps add up to at most 3 h, long ones are past 24 h:
  // no gap between a recovery and the next problem is near the reopen window.
  const jumps = new Map<number, { ms: number; backlog: boolean }>();
  if (fam.jumps && slots > 2 && r.chance(0.35)) {
    let short = 0;
    for (let i = r.int(1, 2); i > 0; i--) {
      const at = r.int(1, slots - 1);
      const long = r.chance(0.6) || short >= 3;
      const ms = long ? r.pick([25 * HOUR, 3 * DAY, 40 * DAY]) : HOUR;
      if (!long) short++;
      jumps.set(at, { ms: (jumps.get(at)?.ms ?? 0) + ms, backlog: r.chance(0.5) });
    }
  }
  const epochEnd = (slot: number): number => {
    const later = [...jumps.keys()].filter((j) => j > slot);
    return later.length > 0 ? Math.min(...later) : slots;
  };

  // Deliveries: each occurrence's webhook attempts, at a slot and an order within it.
  interface Attempt {
    occ: number;
    fate: Fate;
    key: number;
  }
  const attempts: Attempt[] = [];
  const slotOf = (kind: OccSpec['kind'], ev: string): number | undefined => occs.find((o) => o.kind === kind && o.ev === ev)?.n;
  for (const o of occs) {
    const end = epochEnd(o.n);
    const retryAt = (from: number) => (from + 1 < end ? r.int(from + 1, Math.min(end - 1, from + 4)) : undefined);
    let first: Fate = 'ok';
    if (fam.reorder && r.chance(0.12)) first = 'lost';
    else if (fam.redelivery && r.chance(0.1)) first = 'noanswer';
    let retry: { slot: number; key: number } | undefined;
    if (o.kind === 'problem' && fam.reorder) {
      // Recovery (or an update) before its problem: the problem's webhook failed and Zabbix retries it attempt_interval later.
      const rec = slotOf('recovery', o.ev);
      const upd = occs.find((x) => x.kind === 'update' && x.ev === o.ev && x.n < end)?.n;
      if (rec !== undefined && rec < end && r.chance(0.25)) {
        first = 'lost';
        const s = r.int(rec, Math.min(end - 1, rec + 2));
        retry = { slot: s, key: s + (s === rec ? 0.5 + 0.01 + r.next() * 0.4 : r.next()) };
      } else if (upd !== undefined && fam.early && r.chance(0.15)) {
        first = 'lost';
        retry = { slot: upd, key: upd + 0.5 + 0.01 + r.next() * 0.4 };
      }
    }
    attempts.push({ occ: o.n, fate: first, key: o.n + 0.5 });
    if (first !== 'ok') {
      if (!retry) {
        const s = retryAt(o.n);
        if (s !== undefined) retry = { slot: s, key: s + r.next() };
      }
      // No retry slot left in this epoch: the barrier before the jump (or the end) delivers it.
      if (retry) {
        const fate: Fate = fam.redelivery && r.chance(0.1) ? 'noanswer' : 'ok';
        attempts.push({ occ: o.n, fate, key: retry.key });
      }
    }
  }
  attempts.sort((a, b) => a.key - b.key);

  // Crash points and faults, placed at slots.
  const extras = new Map<number, Step[]>();
  const add = (slot: number, s: Step) => extras.set(slot, [...(extras.get(slot) ?? []), s]);
  const powerCut = (): PowerCut | undefined =>
    fam.powerloss && r.chance(0.45) ? { restore: r.chance(0.75) ? 'fsync' : 'commit', commits: r.int(1, 6) } : undefined;
  if ((fam.crash || fam.powerloss) && r.chance(0.6)) {
    for (let i = r.int(1, 3); i > 0; i--) {
      const slot = r.int(0, slots - 1);
      const power = fam.crash ? powerCut() : { restore: 'fsync' as const, commits: 1 };
      if (r.chance(0.4)) {
        add(slot, { t: 'wait', ms: r.int(0, 20) });
        add(slot, power ? { t: 'kill', power } : { t: 'kill' });
      } else {
        const trigger: Trigger = r.weighted([
          [6, { on: 'glpi', op: r.pick(GLPI_OPS.slice(0, 4)), when: r.chance(0.7) ? 'after' : 'before', nth: r.int(1, 3) }],
          [2, { on: 'glpi', op: r.pick(GLPI_OPS.slice(4)), when: r.chance(0.5) ? 'after' : 'before', nth: 1 }],
          [3, { on: 'commit', nth: r.int(1, 10) }],
          [2, { on: 'accept', nth: r.int(1, 3) }],
        ] as const);
        add(slot, power ? { t: 'arm', trigger, power } : { t: 'arm', trigger });
      }
    }
  }
  const start: Step[] = [];
  if (fam.faults && r.chance(0.6)) {
    if (r.chance(0.35)) start.push({ t: 'faults', faults: { errorRate: r.pick([0.1, 0.2, 0.3]) } });
    if (r.chance(0.2)) start.push({ t: 'faults', faults: { latencyMs: r.int(1, 3) } });
    for (let i = r.int(1, 4); i > 0; i--) {
      const slot = r.int(0, slots - 1);
      const f = r.weighted<Step>([
        [3, { t: 'faults', faults: { rateLimitNext: r.int(1, 3), retryAfterSeconds: r.chance(0.85) ? 0 : 1 } }],
        [3, { t: 'faults', faults: { dropAfterCommitNext: r.int(1, 2) } }],
        [2, { t: 'expire' }],
        [1, { t: 'faults', faults: { errorRate: r.pick([0, 0.25]) } }],
      ]);
      add(slot, f);
    }
  }

  const steps: Step[] = [...start];
  let a = 0;
  for (let slot = 0; slot < slots; slot++) {
    const jump = jumps.get(slot);
    if (jump !== undefined) steps.push({ t: 'jump', ms: jump.ms, backlog: jump.backlog });
    steps.push({ t: 'occur', occ: slot });
    const here: Attempt[] = [];
    while (a < attempts.length && (attempts[a] as Attempt).key < slot + 1) here.push(attempts[a++] as Attempt);
    if (fam.bursts && here.length >= 2 && r.chance(0.3)) {
      steps.push({ t: 'burst', sends: here.map((x) => ({ occ: x.occ, fate: x.fate })) });
    } else {
      for (const x of here) steps.push({ t: 'send', occ: x.occ, fate: x.fate });
    }
    if (r.chance(0.25)) steps.push({ t: 'wait', ms: r.int(1, 25) });
    for (const s of extras.get(slot) ?? []) steps.push(s);
  }
  return { seed, settings, early: fam.early, incidents, events, occs, steps };
}

/** One line per step, for traces. */
export function describeStep(spec: CaseSpec, s: Step): string {
  const occ = (n: number): string => {
    const o = spec.occs[n];
    if (!o) return `occ ${n}?`;
    const ev = spec.events.find((e) => e.id === o.ev);
    const inc = ev ? spec.incidents[ev.inc] : undefined;
    const what = o.kind === 'update' ? `update(${describeUpdate(o.update)})` : o.kind;
    return `${what} of ev ${o.ev} [${inc?.token ?? '?'}]`;
  };
  switch (s.t) {
    case 'occur':
      return `zabbix: ${occ(s.occ)}`;
    case 'send':
      return `webhook ${occ(s.occ)}${s.fate === 'ok' ? '' : ` (${s.fate})`}`;
    case 'burst':
      return `webhooks at once: ${s.sends.map((x) => `${occ(x.occ)}${x.fate === 'ok' ? '' : ` (${x.fate})`}`).join(' | ')}`;
    case 'wait':
      return `wait ${s.ms} ms`;
    case 'kill':
      return s.power ? `POWER CUT now (${describeCut(s.power)})` : 'kill -9 now';
    case 'arm':
      return `arm ${s.power ? `POWER CUT (${describeCut(s.power)})` : 'kill -9'} ${describeTrigger(s.trigger)}`;
    case 'faults':
      return `glpi faults ${JSON.stringify(s.faults)}`;
    case 'expire':
      return 'glpi sessions expire';
    case 'jump':
      return `time jumps ${s.ms / HOUR} h${s.backlog ? ' (decisions lagging behind)' : ''}`;
  }
}

export function describeUpdate(u: UpdateSpec): string {
  const parts: string[] = [];
  if (u.ack) parts.push('ack');
  if (u.severity !== undefined) parts.push(`severity→${u.severity}`);
  if (u.message !== undefined) parts.push(`"${u.message}"`);
  return parts.join(' ');
}

export function describeTrigger(t: Trigger): string {
  switch (t.on) {
    case 'glpi':
      return `${t.when} GLPI ${t.op} #${t.nth}`;
    case 'commit':
      return `after state commit #${t.nth}`;
    case 'accept':
      return `after intake commit #${t.nth}, before its 202`;
  }
}

export function describeCut(c: PowerCut): string {
  return c.restore === 'fsync' ? 'state file back to its last fsync' : `state file back to commit ${c.commits} after its last fsync`;
}
