import axios, { type AxiosInstance } from '../axios/index.js';
import http from 'node:http';
import https from 'node:https';
import * as z from 'zod';
import type { Secret } from '../../config/secret.js';
import type { Logger } from '../../observability/logger.js';
import type { EventAcknowledger, EventRow, ItemHistory, MaintenanceRow, ProblemRow, ProblemState, TriggerRow, TriggerState, ValueHistoryReader, ZabbixReader } from '../../core/ports.js';
import { RemoteError } from '../../core/remote-error.js';

export type { EventRow, MaintenanceRow, ProblemRow, ProblemState, TriggerRow, TriggerState };
import { isRedirect, redirectMessage, tlsAgentOptions, type TlsSettings } from '../transport.js';

export type AuthMode = 'auto' | 'body' | 'header';

export interface ZabbixApiOptions {
  /** …/api_jsonrpc.php */
  readonly url: string;
  readonly token: Secret;
  readonly authMode: AuthMode;
  readonly timeoutMs: number;
  readonly logger: Logger;
  /** CA file and certificate checking for an https Zabbix frontend. */
  readonly tls?: TlsSettings;
}

const rpcAnswer = z.union([
  z.object({ jsonrpc: z.literal('2.0'), result: z.unknown(), id: z.unknown() }),
  z.object({ jsonrpc: z.literal('2.0'), error: z.object({ code: z.number(), message: z.string(), data: z.string().optional() }), id: z.unknown() }),
]);

const tag = z.object({ tag: z.string(), value: z.string() });
export const problemRow = z.object({
  eventid: z.string(),
  source: z.string(),
  object: z.string(),
  objectid: z.string(),
  clock: z.string(),
  name: z.string(),
  severity: z.string(),
  r_eventid: z.string().optional(),
  acknowledged: z.string().optional(),
  opdata: z.string().optional(),
  /** The cause of a symptom (6.4+, with output extend; "0" for a cause; absent before 6.4). */
  cause_eventid: z.string().optional(),
  tags: z.array(tag).default([]),
});

export const triggerRow = z.object({
  triggerid: z.string(),
  description: z.string(),
  priority: z.string(),
  hosts: z.array(z.object({ hostid: z.string(), host: z.string(), name: z.string().optional() })).default([]),
  items: z.array(z.object({ itemid: z.string(), key_: z.string(), lastvalue: z.string().optional(), units: z.string().optional() })).default([]),
});

export const problemStateRow = z.object({
  eventid: z.string(),
  objectid: z.string(),
  suppressed: z.string().optional(),
  suppression_data: z.array(z.object({ maintenanceid: z.string(), suppress_until: z.string(), userid: z.string().optional() })).default([]),
});

export const triggerStateRow = z.object({
  triggerid: z.string(),
  description: z.string(),
  status: z.string(),
  hosts: z
    .array(
      z.object({
        hostid: z.string(),
        host: z.string(),
        name: z.string().optional(),
        status: z.string().optional(),
        maintenance_status: z.string().optional(),
        maintenanceid: z.string().optional(),
        maintenance_type: z.string().optional(),
        maintenance_from: z.string().optional(),
      }),
    )
    .default([]),
  items: z.array(z.object({ itemid: z.string(), key_: z.string(), name: z.string().optional(), status: z.string().optional() })).default([]),
});

export const maintenanceRow = z.object({ maintenanceid: z.string(), name: z.string(), maintenance_type: z.string().optional(), active_till: z.string().optional() });

const itemTypeRow = z.object({ itemid: z.string(), value_type: z.string(), units: z.string().default('') });
const historyRow = z.object({ itemid: z.string(), clock: z.string(), value: z.string() });

/**
 * history.get's `history` values with text values: 0 float, 1 character, 2 log, 3 unsigned, 4 text (6.0 → 7.4);
 * 7.0's 5 (binary: images, base64) is no text for a ticket.
 */
const HISTORY_TYPES = new Set(['0', '1', '2', '3', '4']);

const auditRow = z.object({ username: z.string(), clock: z.string(), details: z.string().default('') });
/** auditlog.get's resourcetype: 4 host, 13 trigger (the same from 6.0 to 7.4). */
const AUDIT_RESOURCE = { host: 4, trigger: 13 } as const;

export const eventRow = z.object({
  eventid: z.string(),
  value: z.string().optional(),
  r_eventid: z.string().optional(),
  clock: z.string().optional(),
  acknowledges: z.array(z.object({ message: z.string() })).default([]),
});

/** Event ids per event.get call when checking open events. */
const EVENTS_PER_CALL = 500;

/** Messages of Zabbix API errors that no retry will fix. */
const PERMANENT = /no permissions|invalid param|incorrect value|does not exist|not supported|cannot be/i;
const AUTH = /not authori[sz]ed|session terminated|api token expired|login name or password is incorrect/i;
/** Zabbix 7.2+ refuses a request with the `auth` member (CJsonRpc::validate, data `Invalid parameter "/": unexpected parameter "auth".`). */
const AUTH_IN_BODY_REFUSED = /unexpected parameter "auth"/i;
/** A request shape this Zabbix does not take (an upgrade under a running bridge): the version is asked again at the next call. */
const SHAPE_REFUSED = /unexpected parameter|deprecated parameter/i;

/** The API versions this client knows (each pinned by recorded answers in test/fixtures/zabbix/api/). */
export const KNOWN_VERSIONS = ['6.0', '6.2', '6.4', '7.0', '7.2', '7.4'] as const;
export type KnownVersion = (typeof KNOWN_VERSIONS)[number];

/** How the client talks to one Zabbix API version. */
export interface ZabbixApiProfile {
  /** What apiinfo.version answered (undefined: it answered no version; see `note`). */
  readonly version: string | undefined;
  /** The known version whose rules apply (the nearest one for a version outside them). */
  readonly treatedAs: KnownVersion;
  /** Where the token goes: the JSON-RPC `auth` member (6.0, 6.2; refused from 7.2) or `Authorization: Bearer` (6.4+). */
  readonly auth: 'body' | 'header';
  /** event.get's acknowledges selector: `select_acknowledges` before 7.0 (6.0 silently ignores the other), `selectAcknowledges` from 7.0 (7.2 removed the old one; 7.0 refuses both at once). */
  readonly acknowledgesParam: 'select_acknowledges' | 'selectAcknowledges';
  /** Why the version was treated as another one, or the configured auth overridden (logged once as a warning). */
  readonly note?: string;
}

const rank = (v: KnownVersion): number => {
  const [major = 0, minor = 0] = v.split('.').map(Number);
  return major * 100 + minor;
};

/**
 * The rules for an apiinfo.version answer and the configured `zabbix.auth`
 * (pure). A version older than 6.0 is treated as 6.0, one newer than 7.4 as
 * 7.4, a development release (6.3, 7.1…) as the release before it; `body` is
 * never used from 7.2 on, whatever the setting (7.2 refuses the request).
 */
export function apiProfile(version: string | undefined, authMode: AuthMode): ZabbixApiProfile {
  const notes: string[] = [];
  let treatedAs: KnownVersion = '6.0';
  if (version === undefined) {
    notes.push('the Zabbix API version is unknown: requests are shaped as for Zabbix 6.0');
  } else {
    const m = /^(\d+)\.(\d+)/.exec(version);
    const n = m ? Number(m[1]) * 100 + Number(m[2]) : Number.NaN;
    const oldest = KNOWN_VERSIONS[0];
    const newest = KNOWN_VERSIONS[KNOWN_VERSIONS.length - 1]!;
    if (Number.isNaN(n)) {
      notes.push(`Zabbix API version "${version}" is not a version number: requests are shaped as for Zabbix ${oldest}`);
    } else if (n < rank(oldest)) {
      notes.push(`Zabbix API ${version} is older than ${oldest}, the oldest this bridge knows: treated like ${oldest} (upgrade Zabbix; some requests may be refused)`);
    } else if (n > rank(newest)) {
      treatedAs = newest;
      notes.push(`Zabbix API ${version} is newer than ${newest}, the newest this bridge knows: treated like ${newest}`);
    } else {
      treatedAs = [...KNOWN_VERSIONS].reverse().find((k) => rank(k) <= n) ?? oldest;
    }
  }
  const r = rank(treatedAs);
  let auth: 'body' | 'header' = authMode === 'auto' ? (r >= rank('6.4') ? 'header' : 'body') : authMode;
  if (auth === 'body' && r >= rank('7.2')) {
    auth = 'header';
    notes.push(`zabbix.auth is "body", but Zabbix ${treatedAs}+ refuses the token in the request body: it goes in the Authorization header (set zabbix.auth to auto or header)`);
  }
  if (authMode === 'header' && version !== undefined && r < rank('6.4')) {
    notes.push(`zabbix.auth is "header", but Zabbix ${treatedAs} does not read the Authorization header (6.4+); set zabbix.auth to auto or body`);
  }
  return {
    version,
    treatedAs,
    auth,
    acknowledgesParam: r >= rank('7.0') ? 'selectAcknowledges' : 'select_acknowledges',
    ...(notes.length > 0 ? { note: notes.join('; ') } : {}),
  };
}

/** event.acknowledge's answer: event ids as numbers (6.0.14 and 7.x seen) or strings; both are taken. */
const acknowledgeAnswer = z.object({ eventids: z.array(z.union([z.string(), z.number()])) });

/**
 * Zabbix JSON-RPC client (6.0 → 7.4). It asks `apiinfo.version` once (without
 * auth) and shapes every request for that version (`apiProfile`): the API token
 * in the `auth` member for 6.0 and 6.2, in an `Authorization: Bearer` header
 * from 6.4 on (7.2+ accepts only the header, and refuses a request with `auth`);
 * event.get's acknowledges selector by version. The client logs in with the
 * token only, never with user.login (which takes `username` from 6.0 on; 6.0.14
 * still accepts the deprecated `user`). Answers are validated; failures are
 * classified like GLPI ones (retryable, permanent, login).
 */
export class ZabbixApi implements ZabbixReader, EventAcknowledger, ValueHistoryReader {
  readonly #http: AxiosInstance;
  readonly #opt: ZabbixApiOptions;
  #profile: Promise<ZabbixApiProfile> | undefined;
  #warned = new Set<string>();
  #id = 1;

  constructor(opt: ZabbixApiOptions) {
    this.#opt = opt;
    this.#http = axios.create({
      url: opt.url,
      timeout: opt.timeoutMs,
      validateStatus: () => true,
      // Never follow a redirect: it would carry the API token to whatever host the Location names.
      maxRedirects: 0,
      httpAgent: new http.Agent({ keepAlive: true }),
      httpsAgent: new https.Agent({ keepAlive: true, ...tlsAgentOptions(opt.tls) }),
      headers: { 'Content-Type': 'application/json-rpc' },
    });
  }

  async #post(method: string, params: unknown, auth: 'none' | 'body' | 'header'): Promise<unknown> {
    const body: Record<string, unknown> = { jsonrpc: '2.0', method, params, id: this.#id++ };
    const headers: Record<string, string> = {};
    if (auth === 'body') body.auth = this.#opt.token.reveal();
    if (auth === 'header') headers.Authorization = `Bearer ${this.#opt.token.reveal()}`;
    let res;
    try {
      res = await this.#http.post(this.#opt.url, body, { headers });
    } catch (e) {
      const err = e as { code?: string; message?: string };
      throw new RemoteError('retryable', err.code ?? 'NETWORK', `Zabbix API unreachable: ${err.message ?? String(e)}`);
    }
    if (isRedirect(res.status)) throw new RemoteError('permanent', 'ZABBIX_REDIRECT', redirectMessage('Zabbix API', res.status, res.headers.location), res.status);
    if (res.status >= 500 || res.status === 429) throw new RemoteError('retryable', `HTTP_${res.status}`, `Zabbix API answered HTTP ${res.status}`, res.status);
    if (res.status >= 400) throw new RemoteError('permanent', `HTTP_${res.status}`, `Zabbix API answered HTTP ${res.status}`, res.status);
    const parsed = rpcAnswer.safeParse(res.data);
    if (!parsed.success) throw new RemoteError('retryable', 'BAD_ANSWER', `Zabbix API answer to ${method} is not JSON-RPC`);
    if ('error' in parsed.data) {
      const { code, message, data } = parsed.data.error;
      const text = `Zabbix API ${method}: ${message}${data ? ` ${data}` : ''} (${code})`;
      if (SHAPE_REFUSED.test(data ?? '')) this.#profile = undefined;
      if (AUTH_IN_BODY_REFUSED.test(data ?? '')) {
        throw new RemoteError('permanent', 'ZABBIX_AUTH', `${text}: Zabbix 7.2+ takes the API token only in the Authorization header (zabbix.auth: auto or header)`);
      }
      // A refused token is for the operator to fix (dead letter, then `queue retry`); it must not pause GLPI work.
      if (AUTH.test(`${message} ${data ?? ''}`)) throw new RemoteError('permanent', 'ZABBIX_AUTH', text);
      if (PERMANENT.test(`${message} ${data ?? ''}`)) throw new RemoteError('permanent', 'ZABBIX_API', text);
      throw new RemoteError('retryable', 'ZABBIX_API', text);
    }
    return parsed.data.result;
  }

  /** apiinfo.version (asked without any auth, as every version requires); a non-version answer is a BAD_ANSWER. */
  async version(): Promise<string> {
    const p = await this.profile();
    if (p.version !== undefined) return p.version;
    return this.#askVersion();
  }

  async #askVersion(): Promise<string> {
    const v = await this.#post('apiinfo.version', [], 'none');
    if (typeof v !== 'string' || !/^\d+\.\d+/.test(v)) throw new RemoteError('retryable', 'BAD_ANSWER', `Zabbix API apiinfo.version answered ${JSON.stringify(v)?.slice(0, 80)}, not a version`);
    return v;
  }

  /**
   * The version's rules, asked once (again after a failure, or after Zabbix
   * refused a request's shape). With `zabbix.auth: auto` the version must be
   * known; with `body` or `header` set, an answer that is no version (a proxy
   * or stand-in that does not implement apiinfo.version) is logged once and
   * the requests are shaped as for 6.0 with the configured auth. An
   * unreachable API fails the call either way.
   */
  profile(): Promise<ZabbixApiProfile> {
    this.#profile ??= this.#askVersion().then(
      (v) => this.#adopt(apiProfile(v, this.#opt.authMode)),
      (e: unknown) => {
        const noVersion = e instanceof RemoteError && ((e.code === 'BAD_ANSWER' && /apiinfo\.version answered/.test(e.message)) || e.code === 'ZABBIX_API' || e.code === 'ZABBIX_AUTH');
        if (this.#opt.authMode !== 'auto' && noVersion) {
          return this.#adopt({ ...apiProfile(undefined, this.#opt.authMode), note: `${(e as Error).message}: requests are shaped as for Zabbix 6.0 with zabbix.auth "${this.#opt.authMode}"` });
        }
        this.#profile = undefined;
        throw e;
      },
    );
    return this.#profile;
  }

  #adopt(p: ZabbixApiProfile): ZabbixApiProfile {
    const fields = { zabbix_version: p.version ?? 'unknown', treated_as: p.treatedAs, auth: p.auth, acknowledges: p.acknowledgesParam };
    if (p.note !== undefined && !this.#warned.has(p.note)) {
      this.#warned.add(p.note);
      this.#opt.logger.warn(fields, p.note);
    }
    this.#opt.logger.info(fields, 'Zabbix API version detected');
    return p;
  }

  async call(method: string, params: unknown): Promise<unknown> {
    return this.#post(method, params, (await this.profile()).auth);
  }

  /**
   * Current (unresolved) trigger problems with their tags, optionally limited
   * to host groups and severities. Problems suppressed by a maintenance are
   * left out (`suppressed: false`, problem.get from 4.0 through 7.x): Zabbix
   * does not notify about them either.
   */
  async problems(scope: { groupIds?: readonly string[]; severities?: readonly number[] } = {}): Promise<ProblemRow[]> {
    const r = await this.call('problem.get', {
      output: 'extend',
      source: 0,
      object: 0,
      suppressed: false,
      selectTags: 'extend',
      sortfield: ['eventid'],
      sortorder: 'ASC',
      ...(scope.groupIds ? { groupids: scope.groupIds } : {}),
      ...(scope.severities ? { severities: scope.severities } : {}),
    });
    return z.array(problemRow).parse(r);
  }

  /** Host group ids by name; a name that does not exist is an error (a typo would silently poll nothing). */
  async groupIds(names: readonly string[]): Promise<string[]> {
    const r = z.array(z.object({ groupid: z.string(), name: z.string() })).parse(await this.call('hostgroup.get', { output: ['groupid', 'name'], filter: { name: names } }));
    const missing = names.filter((n) => !r.some((g) => g.name === n));
    if (missing.length > 0) throw new RemoteError('permanent', 'ZABBIX_API', `host group(s) not found: ${missing.join(', ')} (zabbix.poll.host_groups)`);
    return r.map((g) => g.groupid);
  }

  async triggers(ids: readonly string[]): Promise<TriggerRow[]> {
    if (ids.length === 0) return [];
    const r = await this.call('trigger.get', {
      triggerids: ids,
      output: ['triggerid', 'description', 'priority'],
      expandDescription: true,
      selectHosts: ['hostid', 'host', 'name'],
      selectItems: ['itemid', 'key_', 'lastvalue', 'units'],
    });
    return z.array(triggerRow).parse(r);
  }

  /**
   * Open problems among these events with their suppression data: problem.get
   * by `eventids` without the `suppressed` filter (a problem in maintenance is
   * suppressed, and the sweep's problem list leaves it out). Only unresolved
   * problems come back (CProblem: `r_eventid IS NULL` unless `recent`);
   * `selectSuppressionData` takes maintenanceid and suppress_until on every
   * version (7.0 adds userid, for a problem suppressed by hand). Chunked.
   */
  async problemStates(eventIds: readonly string[]): Promise<ProblemState[]> {
    const rows: ProblemState[] = [];
    for (let i = 0; i < eventIds.length; i += EVENTS_PER_CALL) {
      const r = await this.call('problem.get', {
        eventids: eventIds.slice(i, i + EVENTS_PER_CALL),
        source: 0,
        object: 0,
        output: ['eventid', 'objectid', 'suppressed'],
        selectSuppressionData: 'extend',
      });
      rows.push(...z.array(problemStateRow).parse(r));
    }
    return rows;
  }

  /**
   * Triggers with their status, their hosts' status and maintenance
   * (maintenance_status, maintenanceid, maintenance_type, maintenance_from:
   * host fields from 6.0 to 7.4) and their items' status. trigger.get returns
   * disabled triggers too unless asked for `monitored`/`active`, which is
   * what this needs.
   */
  async triggerStates(ids: readonly string[]): Promise<TriggerState[]> {
    // Every open incident's trigger is asked each sweep: in chunks, like the events.
    const rows: TriggerState[] = [];
    for (let i = 0; i < ids.length; i += EVENTS_PER_CALL) {
      const r = await this.call('trigger.get', {
        triggerids: ids.slice(i, i + EVENTS_PER_CALL),
        output: ['triggerid', 'description', 'status'],
        expandDescription: true,
        selectHosts: ['hostid', 'host', 'name', 'status', 'maintenance_status', 'maintenanceid', 'maintenance_type', 'maintenance_from'],
        selectItems: ['itemid', 'key_', 'name', 'status'],
      });
      rows.push(...z.array(triggerStateRow).parse(r));
    }
    return rows;
  }

  /** Maintenances' names and type (maintenance.get is for admin users: a plain user's call fails, and the caller goes without names). */
  async maintenances(ids: readonly string[]): Promise<MaintenanceRow[]> {
    if (ids.length === 0) return [];
    const r = await this.call('maintenance.get', { maintenanceids: ids, output: ['maintenanceid', 'name', 'maintenance_type', 'active_till'] });
    return z.array(maintenanceRow).parse(r);
  }

  /**
   * Who last disabled a trigger or host: auditlog.get of its updates (action
   * 1), newest first, the first whose details set `<resource>.status` to 1
   * (details is JSON: {"trigger.status":["update",1,"0"]}, new then old; the
   * same on 6.0 and 7.0, recorded). auditlog.get is for Super admins only: a
   * lesser API user's call fails, and the caller goes without the name.
   */
  async disabledBy(resource: 'trigger' | 'host', id: string): Promise<{ username: string; clock: string } | undefined> {
    const rows = z.array(auditRow).parse(
      await this.call('auditlog.get', {
        output: ['username', 'clock', 'resourceid', 'details'],
        filter: { resourcetype: AUDIT_RESOURCE[resource], resourceid: id, action: 1 },
        sortfield: 'clock',
        sortorder: 'DESC',
        limit: 10,
      }),
    );
    for (const r of rows) {
      let details: unknown;
      try {
        details = JSON.parse(r.details);
      } catch {
        continue;
      }
      const change = (details as Record<string, unknown> | null)?.[`${resource}.status`];
      if (Array.isArray(change) && String(change[1]) === '1') return { username: r.username, clock: r.clock };
    }
    return undefined;
  }

  /**
   * An item's last values for a ticket body: item.get for its value_type and
   * units, then history.get of that type's table (`history` must match the
   * item's value_type, or the answer is empty), newest first, at most
   * `count` (sortfield clock, sortorder DESC, limit: the same on 6.0 and
   * 7.0, recorded in test/fixtures/zabbix/api). History of a type without
   * text (7.0's binary) and an item Zabbix does not return give no values.
   */
  async itemHistory(itemId: string, count: number): Promise<ItemHistory> {
    const [item] = z.array(itemTypeRow).parse(await this.call('item.get', { itemids: [itemId], output: ['itemid', 'value_type', 'units'] }));
    if (!item || !HISTORY_TYPES.has(item.value_type)) return { units: item?.units ?? '', points: [] };
    const rows = z.array(historyRow).parse(
      await this.call('history.get', { history: Number(item.value_type), itemids: [itemId], output: 'extend', sortfield: 'clock', sortorder: 'DESC', limit: count }),
    );
    return { units: item.units, points: rows.map((r) => ({ at: Number(r.clock) * 1000, value: r.value })) };
  }

  /**
   * Events with their acknowledges' messages: the selector is
   * `select_acknowledges` before 7.0 and `selectAcknowledges` from 7.0 (only
   * one of them: 7.0 refuses both at once, 6.0 silently ignores the new one,
   * 7.2 removed the old one). Only parameters event.get takes on every version.
   */
  async events(ids: readonly string[]): Promise<EventRow[]> {
    if (ids.length === 0) return [];
    const p = await this.profile();
    const r = await this.#post('event.get', { eventids: ids, output: ['eventid', 'value', 'r_eventid', 'clock'], [p.acknowledgesParam]: ['message'] }, p.auth);
    return z.array(eventRow).parse(r);
  }

  /**
   * Problem events by id, with their recovery event id (r_eventid "0": still
   * a problem). An id missing from the answer is unknown (the API user cannot
   * see the host, the event was housekept), not resolved. Asks in chunks;
   * no acknowledges (their select parameter differs between 6.0 and 7.2).
   */
  async eventStates(ids: readonly string[]): Promise<EventRow[]> {
    const rows: EventRow[] = [];
    for (let i = 0; i < ids.length; i += EVENTS_PER_CALL) {
      const r = await this.call('event.get', { eventids: ids.slice(i, i + EVENTS_PER_CALL), source: 0, object: 0, output: ['eventid', 'value', 'r_eventid', 'clock'] });
      rows.push(...z.array(eventRow).parse(r));
    }
    return rows;
  }

  async hasMessage(eventId: string, message: string): Promise<boolean> {
    const [event] = await this.events([eventId]);
    return event?.acknowledges.some((a) => a.message === message) ?? false;
  }

  /**
   * event.acknowledge: action 4 = add message, 6 = acknowledge + message (the
   * same bits from 6.0 to 7.4; 7.0 added 32/64 suppress, 128/256 cause and
   * symptom, unused here). Returns the event ids Zabbix answered, as strings
   * (it answers numbers or strings depending on the version). An answer of
   * another shape is logged, not an error: the update is done.
   */
  async acknowledge(eventIds: readonly string[], message: string, acknowledge: boolean): Promise<void> {
    await this.acknowledgeEvents(eventIds, message, acknowledge);
  }

  /**
   * Close problems with a message (issue 14 item 5, zabbix.write_back.close_problem): event.acknowledge
   * action 1 (close) + 4 (message) — the same bits from 6.0 to 7.4 — for the events whose trigger allows
   * manual close (trigger.get `manual_close` "1"; Zabbix refuses the whole call otherwise: "Cannot close
   * problem: trigger does not allow manual closing.", CEvent::validateAcknowledge in zabbix/zabbix
   * ui/include/classes/api/services/CEvent.php); the others get the message only. Events already gone from
   * problem.get (recovered) get the message only too.
   */
  async closeProblems(eventIds: readonly string[], message: string): Promise<void> {
    const rows = z.array(z.object({ eventid: z.string(), objectid: z.string() })).parse(await this.call('problem.get', { eventids: eventIds, source: 0, object: 0, output: ['eventid', 'objectid'] }));
    const triggerIds = [...new Set(rows.map((r) => r.objectid))];
    const triggers = triggerIds.length === 0 ? [] : z.array(z.object({ triggerid: z.string(), manual_close: z.string().optional() })).parse(await this.call('trigger.get', { triggerids: triggerIds, output: ['triggerid', 'manual_close'] }));
    const closable = new Set(triggers.filter((t) => t.manual_close === '1').map((t) => t.triggerid));
    const close = rows.filter((r) => closable.has(r.objectid)).map((r) => r.eventid);
    const rest = eventIds.filter((id) => !close.includes(id));
    if (close.length > 0) await this.call('event.acknowledge', { eventids: close, action: 1 | 4, message });
    if (rest.length > 0) {
      this.#opt.logger.info({ events: rest }, 'Zabbix problems not closed: their trigger does not allow manual close (or they are no longer open); message only');
      await this.call('event.acknowledge', { eventids: rest, action: 4, message });
    }
  }

  /** `acknowledge`, answering the event ids Zabbix reported as updated (strings). */
  async acknowledgeEvents(eventIds: readonly string[], message: string, acknowledge: boolean): Promise<string[]> {
    const r = await this.call('event.acknowledge', { eventids: eventIds, action: acknowledge ? 6 : 4, message });
    const parsed = acknowledgeAnswer.safeParse(r);
    if (!parsed.success) {
      this.#opt.logger.warn({ answer: JSON.stringify(r)?.slice(0, 200) }, 'Zabbix API event.acknowledge answered without an eventids list');
      return [...eventIds];
    }
    return parsed.data.eventids.map(String);
  }
}
