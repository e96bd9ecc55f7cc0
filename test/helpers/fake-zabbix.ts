import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

interface Rpc {
  readonly method: string;
  readonly params: Record<string, unknown>;
}

/** An open problem as the fake serves it: its trigger, and what trigger.get says of it (defaults: `host-<trigger>`, `trigger <trigger>`). */
export interface FakeProblem {
  readonly trigger: string;
  readonly host?: string;
  readonly description?: string;
  readonly opdata?: string;
  /** The problem's suppression by a maintenance (problem.get `suppressed` "1", `suppression_data`): left out of `suppressed: false`. */
  readonly suppressedBy?: { readonly maintenanceid: string; readonly suppress_until: string };
  /** Zabbix 6.4+: the cause event of this symptom (problem.get cause_eventid; left out when undefined, as 6.0 does). */
  readonly cause?: string;
  /** The trigger allows manual close (trigger.get manual_close "1"); event.acknowledge refuses to close it otherwise. */
  readonly manualClose?: boolean;
  /** The trigger's item (trigger.get selectItems), for value history. */
  readonly item?: { readonly itemid: string; readonly key_: string; readonly name?: string };
}

/** A host's state as host fields give it (trigger.get selectHosts). */
export interface FakeHost {
  /** "1": not monitored (disabled). */
  status?: string;
  /** The maintenance it is in (maintenance_status "1", maintenanceid, maintenance_type, maintenance_from). */
  maintenance?: { readonly maintenanceid: string; readonly type: string; readonly from: string };
}

/** Just enough of the Zabbix 6.0 JSON-RPC API for the poller and the write-back; every call is recorded. */
export class FakeZabbix {
  readonly calls: Rpc[] = [];
  /** Events closed through event.acknowledge (action bit 1). */
  readonly closed: string[] = [];
  /** Open problem event id → its problem. */
  readonly problems = new Map<string, FakeProblem>();
  /** What event.get returns for an id (missing: not returned). */
  readonly events = new Map<string, { eventid: string; value: string; r_eventid: string }>();
  /** Host name → its state (default: monitored, not in maintenance). */
  readonly hosts = new Map<string, FakeHost>();
  /** Trigger ids that are disabled (trigger.get status "1"). */
  readonly disabledTriggers = new Set<string>();
  /** Maintenances by id (maintenance.get). */
  readonly maintenances = new Map<string, { readonly name: string; readonly maintenance_type: string }>();
  /** maintenance.get answers as Zabbix does for a user below Admin. */
  maintenanceGetRefused = false;
  /** The audit log's last disabling of `trigger:<id>` or `host:<hostid>` (auditlog.get). */
  readonly audit = new Map<string, { readonly username: string; readonly clock: number }>();
  /** auditlog.get answers as Zabbix does for a user below Super admin. */
  auditGetRefused = false;
  /** Item id → its value_type and units (item.get) and its history, newest last ({clock, value}). */
  readonly items = new Map<string, { value_type: string; units: string; history: { clock: number; value: string }[] }>();
  /** history.get fails (an HTTP 500), to show the ticket goes without history. */
  historyFails = false;
  /** history.get answers this late (ms). */
  historyDelayMs = 0;
  #server: Server | undefined;
  /** The API's URL once listening (listen answers it too). */
  url: string | undefined;

  async listen(): Promise<string> {
    this.#server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        const rpc = JSON.parse(body) as Rpc & { id: number };
        this.calls.push({ method: rpc.method, params: rpc.params });
        res.setHeader('Content-Type', 'application/json');
        if (rpc.method === 'history.get' && this.historyFails) {
          res.statusCode = 500;
          res.end('{}');
          return;
        }
        const answer = (): void => {
          const error = this.#refusal(rpc);
          res.end(JSON.stringify(error ? { jsonrpc: '2.0', id: rpc.id, error } : { jsonrpc: '2.0', id: rpc.id, result: this.#answer(rpc) }));
        };
        if (rpc.method === 'history.get' && this.historyDelayMs > 0) setTimeout(answer, this.historyDelayMs);
        else answer();
      });
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server!.address() as AddressInfo).port}/api_jsonrpc.php`;
    return this.url;
  }

  /** What Zabbix 6.0 refuses: parameters it does not know, maintenance.get below Admin (CMaintenance ACCESS_RULES). */
  #refusal(rpc: Rpc): { code: number; message: string; data: string } | undefined {
    if (rpc.method === 'event.acknowledge' && (Number(rpc.params.action) & 1) === 1) {
      const stuck = (rpc.params.eventids as string[]).find((id) => this.problems.get(id)?.manualClose !== true);
      if (stuck !== undefined) return { code: -32500, message: 'Application error.', data: 'Cannot close problem: trigger does not allow manual closing.' };
    }
    if (rpc.method === 'maintenance.get' && this.maintenanceGetRefused) return { code: -32500, message: 'Application error.', data: 'No permissions to call "maintenance.get".' };
    if (rpc.method === 'auditlog.get' && this.auditGetRefused) return { code: -32500, message: 'Application error.', data: 'No permissions to call "auditlog.get".' };
    const known: Record<string, readonly string[]> = {
      'problem.get': ['output', 'source', 'object', 'suppressed', 'selectTags', 'sortfield', 'sortorder', 'groupids', 'severities', 'eventids', 'selectSuppressionData'],
      'trigger.get': ['triggerids', 'output', 'expandDescription', 'selectHosts', 'selectItems'],
      'item.get': ['itemids', 'output'],
      'history.get': ['history', 'itemids', 'output', 'sortfield', 'sortorder', 'limit'],
      'maintenance.get': ['maintenanceids', 'output'],
      'auditlog.get': ['output', 'filter', 'sortfield', 'sortorder', 'limit'],
    };
    const allowed = known[rpc.method];
    const extra = allowed && Object.keys(rpc.params).find((k) => !allowed.includes(k));
    return extra ? { code: -32602, message: 'Invalid params.', data: `Invalid parameter "/": unexpected parameter "${extra}".` } : undefined;
  }

  #answer(rpc: Rpc): unknown {
    switch (rpc.method) {
      case 'apiinfo.version':
        return '6.0.14';
      case 'problem.get': {
        const ids = rpc.params.eventids as string[] | undefined;
        return [...this.problems]
          .filter(([eventid]) => ids === undefined || ids.includes(eventid))
          .filter(([, p]) => rpc.params.suppressed === undefined || (rpc.params.suppressed === true) === (p.suppressedBy !== undefined))
          .map(([eventid, p]) => ({
            eventid, source: '0', object: '0', objectid: p.trigger, clock: '1795414091', name: `problem ${eventid}`, severity: '4', r_eventid: '0', tags: [],
            suppressed: p.suppressedBy ? '1' : '0',
            ...(p.cause !== undefined ? { cause_eventid: p.cause } : {}),
            ...(p.opdata !== undefined ? { opdata: p.opdata } : {}),
            ...(rpc.params.selectSuppressionData !== undefined ? { suppression_data: p.suppressedBy ? [p.suppressedBy] : [] } : {}),
          }));
      }
      case 'trigger.get':
        return (rpc.params.triggerids as string[]).flatMap((triggerid) => {
          const p = [...this.problems.values()].find((q) => q.trigger === triggerid);
          const host = p?.host ?? `host-${triggerid}`;
          const h = this.hosts.get(host);
          return [{
            triggerid, description: p?.description ?? `trigger ${triggerid}`, priority: '4', status: this.disabledTriggers.has(triggerid) ? '1' : '0', manual_close: p?.manualClose ? '1' : '0',
            hosts: [{
              hostid: triggerid, host, name: host, status: h?.status ?? '0',
              maintenance_status: h?.maintenance ? '1' : '0', maintenanceid: h?.maintenance?.maintenanceid ?? '0',
              maintenance_type: h?.maintenance?.type ?? '0', maintenance_from: h?.maintenance?.from ?? '0',
            }],
            items: p?.item ? [{ ...p.item, name: p.item.name ?? p.item.key_, status: '0', lastvalue: '0', units: this.items.get(p.item.itemid)?.units ?? '' }] : [],
          }];
        });
      case 'maintenance.get':
        return (rpc.params.maintenanceids as string[]).flatMap((id) => {
          const m = this.maintenances.get(id);
          return m ? [{ maintenanceid: id, ...m }] : [];
        });
      case 'auditlog.get': {
        // As recorded on 6.0.14 and 7.0.22: details is JSON, {"trigger.status":["update",1,"0"]} (new, then old).
        const f = rpc.params.filter as { resourcetype: number; resourceid: string };
        const resource = f.resourcetype === 13 ? 'trigger' : f.resourcetype === 4 ? 'host' : 'other';
        const a = this.audit.get(`${resource}:${f.resourceid}`);
        return a ? [{ username: a.username, clock: String(a.clock), resourceid: f.resourceid, details: JSON.stringify({ [`${resource}.status`]: ['update', 1, '0'] }) }] : [];
      }
      case 'item.get':
        return (rpc.params.itemids as string[]).flatMap((itemid) => {
          const i = this.items.get(itemid);
          return i ? [{ itemid, value_type: i.value_type, units: i.units }] : [];
        });
      case 'history.get': {
        const ids = rpc.params.itemids as string[];
        const type = String(rpc.params.history);
        // history.get reads the table of the value type asked: an item of another type has no rows there.
        const rows = ids.flatMap((itemid) => {
          const i = this.items.get(itemid);
          return i && i.value_type === type ? i.history.map((h) => ({ itemid, clock: String(h.clock), value: h.value, ns: '0' })) : [];
        });
        rows.sort((a, b) => (rpc.params.sortorder === 'DESC' ? Number(b.clock) - Number(a.clock) : Number(a.clock) - Number(b.clock)));
        return typeof rpc.params.limit === 'number' ? rows.slice(0, rpc.params.limit) : rows;
      }
      case 'event.get':
        // An open problem's event (suppressed or not) is returned unresolved, as Zabbix does; `events` overrides.
        return (rpc.params.eventids as string[]).flatMap((id) => this.events.get(id) ?? (this.problems.has(id) ? [{ eventid: id, value: '1', r_eventid: '0' }] : []));
      case 'event.acknowledge': {
        // Action bit 1 closes the problems (CEvent::acknowledge(): every event's trigger must allow manual close,
        // else the whole call fails); the close resolves them (a recovery event, r_eventid set).
        const ids = rpc.params.eventids as string[];
        if ((Number(rpc.params.action) & 1) === 1) {
          for (const id of ids) {
            const p = this.problems.get(id);
            if (p) this.closed.push(id);
            this.problems.delete(id);
            this.events.set(id, { eventid: id, value: '1', r_eventid: `9${id}` });
          }
        }
        return { eventids: ids };
      }
      default:
        return [];
    }
  }

  count(method: string): number {
    return this.calls.filter((c) => c.method === method).length;
  }

  /** Completed poller sweeps so far: each starts with problem.get of the scope (`suppressed: false`). */
  sweeps(): number {
    return this.calls.filter((c) => c.method === 'problem.get' && c.params.suppressed === false).length;
  }

  acknowledged(): string[] {
    return this.calls.filter((c) => c.method === 'event.acknowledge').flatMap((c) => c.params.eventids as string[]);
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }
}
