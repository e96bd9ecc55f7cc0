import axios, { type AxiosInstance } from '../axios/index.js';
import http from 'node:http';
import https from 'node:https';
import type { RemoteError } from '../../core/remote-error.js';
import type { Metrics } from '../../observability/metrics.js';
import { tlsAgentOptions, type TlsSettings } from '../transport.js';
import { fromNetwork } from './outcome.js';

/** How long an idle keep-alive connection to GLPI is kept, unless configured: below common web servers' 5 s. */
const IDLE_SOCKET_TIMEOUT_MS = 4_000;

/**
 * The keep-alive connections both GLPI clients (API v1, client.ts, and v2, v2/client.ts) hold, and what a
 * request that got no answer means for them.
 */
export class GlpiAgents {
  readonly http: http.Agent;
  readonly https: https.Agent;

  constructor(tls: TlsSettings | undefined, idleSocketTimeoutMs = IDLE_SOCKET_TIMEOUT_MS) {
    this.http = new http.Agent({ keepAlive: true, maxSockets: 64, timeout: idleSocketTimeoutMs });
    this.https = new https.Agent({ keepAlive: true, maxSockets: 64, timeout: idleSocketTimeoutMs, ...tlsAgentOptions(tls) });
  }

  /**
   * An axios instance on these connections, as both clients send: every answer returned as it came (text,
   * whatever its status: the client reads GLPI's errors itself), and a redirect never followed. It would carry
   * the credentials (App-Token and Session-Token, the access token or the password) to another address, and
   * without follow-redirects an error also carries the socket's reuse flag (unanswered()).
   */
  client(baseURL: string, timeoutMs: number, headers: Record<string, string>): AxiosInstance {
    return axios.create({
      baseURL,
      timeout: timeoutMs,
      validateStatus: () => true,
      transformResponse: [(data: unknown) => data],
      responseType: 'text',
      maxRedirects: 0,
      httpAgent: this.http,
      httpsAgent: this.https,
      headers,
    });
  }

  /**
   * A request that got no answer (axios's error) as the retryable RemoteError it is, and the status it is
   * counted under. A reset on a reused connection is GLPI having closed it while idle: the other idle ones are
   * suspect too, so they are dropped and the next request opens a fresh one.
   */
  unanswered(e: unknown): { failure: RemoteError; status: string } {
    const err = e as { code?: string; message?: string; request?: { reusedSocket?: boolean; _currentRequest?: { reusedSocket?: boolean } } };
    const reused = err.request?.reusedSocket ?? err.request?._currentRequest?.reusedSocket ?? false;
    const failure = fromNetwork(err.code, err.message ?? String(e), reused);
    if (!failure.staleConnection) return { failure, status: err.code ?? 'error' };
    for (const agent of [this.http, this.https]) {
      for (const list of Object.values(agent.freeSockets)) for (const socket of list ?? []) socket.destroy();
    }
    return { failure, status: 'stale_connection' };
  }

  destroy(): void {
    this.http.destroy();
    this.https.destroy();
  }
}

/** One request to GLPI in zgb_glpi_requests_total (by operation and status: an HTTP code or a network error's) and its latency. */
export function countRequest(metrics: Metrics | undefined, operation: string, status: string, started: bigint): void {
  metrics?.glpiRequests.inc({ operation, status });
  metrics?.glpiLatency.observe({ operation }, Number(process.hrtime.bigint() - started) / 1e9);
}
