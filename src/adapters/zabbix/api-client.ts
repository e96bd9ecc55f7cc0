import axios, { type AxiosInstance } from 'axios';
import http from 'node:http';
import https from 'node:https';
import { z } from 'zod';
import type { Secret } from '../../config/secret.js';
import type { Logger } from '../../observability/logger.js';
import type { EventAcknowledger, EventRow, ProblemRow, TriggerRow, ZabbixReader } from '../../core/ports.js';
import { RemoteError } from '../../core/remote-error.js';

export type { EventRow, ProblemRow, TriggerRow };
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
  tags: z.array(tag).default([]),
});

export const triggerRow = z.object({
  triggerid: z.string(),
  description: z.string(),
  priority: z.string(),
  hosts: z.array(z.object({ hostid: z.string(), host: z.string(), name: z.string().optional() })).default([]),
  items: z.array(z.object({ itemid: z.string(), key_: z.string(), lastvalue: z.string().optional(), units: z.string().optional() })).default([]),
});

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

/**
 * Zabbix JSON-RPC client (6.0 → 7.x). The API token goes in the `auth` member
 * for 6.0 and 6.2, and in an `Authorization: Bearer` header from 6.4 on (7.2+
 * accepts only the header); `auto` picks by `apiinfo.version`. Answers are
 * validated; failures are classified like GLPI ones (retryable, permanent, login).
 */
export class ZabbixApi implements ZabbixReader, EventAcknowledger {
  readonly #http: AxiosInstance;
  readonly #opt: ZabbixApiOptions;
  #mode: Promise<'body' | 'header'> | undefined;
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
      // A refused token is for the operator to fix (dead letter, then `queue retry`); it must not pause GLPI work.
      if (AUTH.test(`${message} ${data ?? ''}`)) throw new RemoteError('permanent', 'ZABBIX_AUTH', text);
      if (PERMANENT.test(`${message} ${data ?? ''}`)) throw new RemoteError('permanent', 'ZABBIX_API', text);
      throw new RemoteError('retryable', 'ZABBIX_API', text);
    }
    return parsed.data.result;
  }

  /** apiinfo.version; must be called without any auth. */
  async version(): Promise<string> {
    const v = await this.#post('apiinfo.version', [], 'none');
    return z.string().parse(v);
  }

  async #authMode(): Promise<'body' | 'header'> {
    if (this.#opt.authMode !== 'auto') return this.#opt.authMode;
    this.#mode ??= this.version().then(
      (v) => {
        const [major = 0, minor = 0] = v.split('.').map(Number);
        const mode = major > 6 || (major === 6 && minor >= 4) ? 'header' : 'body';
        this.#opt.logger.info({ zabbix_version: v, auth: mode }, 'Zabbix API version detected');
        return mode;
      },
      (e: unknown) => {
        this.#mode = undefined;
        throw e;
      },
    );
    return this.#mode;
  }

  async call(method: string, params: unknown): Promise<unknown> {
    return this.#post(method, params, await this.#authMode());
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

  async events(ids: readonly string[]): Promise<EventRow[]> {
    if (ids.length === 0) return [];
    const r = await this.call('event.get', { eventids: ids, output: ['eventid', 'value', 'r_eventid', 'clock'], select_acknowledges: ['message'] });
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

  /** event.acknowledge: action 4 = add message, 6 = acknowledge + message (Zabbix 6.0 bits). */
  async acknowledge(eventIds: readonly string[], message: string, acknowledge: boolean): Promise<void> {
    await this.call('event.acknowledge', { eventids: eventIds, action: acknowledge ? 6 : 4, message });
  }
}
