/** A minimal Zabbix JSON-RPC client for provisioning the end-to-end test (Zabbix 6.0: auth in the body). */
export class ZabbixAdmin {
  #auth: string | undefined;
  #id = 1;
  constructor(readonly url: string) {}

  async call<T = unknown>(method: string, params: unknown): Promise<T> {
    const body: Record<string, unknown> = { jsonrpc: '2.0', method, params, id: this.#id++ };
    if (this.#auth && method !== 'apiinfo.version' && method !== 'user.login') body.auth = this.#auth;
    const res = await fetch(this.url, { method: 'POST', headers: { 'Content-Type': 'application/json-rpc' }, body: JSON.stringify(body) });
    const json = (await res.json()) as { result?: T; error?: { message: string; data?: string } };
    if (json.error) throw new Error(`${method}: ${json.error.message} ${json.error.data ?? ''}`);
    return json.result as T;
  }

  async login(username = 'Admin', password = 'zabbix'): Promise<void> {
    this.#auth = await this.call<string>('user.login', { username, password });
  }
}
