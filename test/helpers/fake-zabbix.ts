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
}

/** Just enough of the Zabbix 6.0 JSON-RPC API for the poller and the write-back; every call is recorded. */
export class FakeZabbix {
  readonly calls: Rpc[] = [];
  /** Open problem event id → its problem. */
  readonly problems = new Map<string, FakeProblem>();
  /** What event.get returns for an id (missing: not returned). */
  readonly events = new Map<string, { eventid: string; value: string; r_eventid: string }>();
  #server: Server | undefined;

  async listen(): Promise<string> {
    this.#server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        const rpc = JSON.parse(body) as Rpc & { id: number };
        this.calls.push({ method: rpc.method, params: rpc.params });
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ jsonrpc: '2.0', id: rpc.id, result: this.#answer(rpc) }));
      });
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.#server!.address() as AddressInfo).port}/api_jsonrpc.php`;
  }

  #answer(rpc: Rpc): unknown {
    switch (rpc.method) {
      case 'apiinfo.version':
        return '6.0.14';
      case 'problem.get':
        return [...this.problems].map(([eventid, p]) => ({
          eventid, source: '0', object: '0', objectid: p.trigger, clock: '1795414091', name: `problem ${eventid}`, severity: '4', r_eventid: '0', tags: [],
          ...(p.opdata !== undefined ? { opdata: p.opdata } : {}),
        }));
      case 'trigger.get':
        return (rpc.params.triggerids as string[]).flatMap((triggerid) => {
          const p = [...this.problems.values()].find((q) => q.trigger === triggerid);
          return [{ triggerid, description: p?.description ?? `trigger ${triggerid}`, priority: '4', hosts: [{ hostid: triggerid, host: p?.host ?? `host-${triggerid}` }], items: [] }];
        });
      case 'event.get':
        return (rpc.params.eventids as string[]).flatMap((id) => this.events.get(id) ?? []);
      case 'event.acknowledge':
        return { eventids: rpc.params.eventids };
      default:
        return [];
    }
  }

  count(method: string): number {
    return this.calls.filter((c) => c.method === method).length;
  }

  acknowledged(): string[] {
    return this.calls.filter((c) => c.method === 'event.acknowledge').flatMap((c) => c.params.eventids as string[]);
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }
}
