import type { FastifyInstance } from 'fastify';
import { Writable } from 'node:stream';
import { buildServer, type HttpLimits, type ServerDeps } from '../../src/adapters/http/server.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics, type Metrics } from '../../src/observability/metrics.js';
import { destroyRawSockets } from './raw-http.js';

// The HTTP listener (buildServer) on a free loopback port with its log captured, for the tests that talk to it
// over real sockets. A test file calls stopServer() after each test.

export const WEBHOOK_TOKEN = 'webhook-token-0123456789';
export const HTTP_LIMITS: HttpLimits = { requestTimeoutMs: 30_000, headerTimeoutMs: 10_000, keepAliveTimeoutMs: 5_000, maxRequestsPerSocket: 1000, maxConnections: 256 };

export interface LogLine {
  readonly level: string;
  readonly msg: string;
  readonly [key: string]: unknown;
}

/** A logger whose lines are kept: parsed, and as written. */
export function captureLogger(): { logger: ReturnType<typeof createLogger>; lines: LogLine[]; raw: string[] } {
  const lines: LogLine[] = [];
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) {
        if (l === '') continue;
        raw.push(l);
        lines.push(JSON.parse(l) as LogLine);
      }
      done();
    },
  });
  return { logger: createLogger('info', sink), lines, raw };
}

export interface ServerHarness {
  readonly app: FastifyInstance;
  readonly port: number;
  readonly metrics: Metrics;
  readonly lines: LogLine[];
  readonly raw: string[];
}

let current: FastifyInstance | undefined;

/**
 * The listener with a webhook at /zabbix/webhook (token WEBHOOK_TOKEN, no admin token, an intake that accepts
 * everything), `over` and `limits` replacing any of it; `beforeListen` may add hooks.
 */
export async function startServer(over: Partial<ServerDeps> = {}, limits: Partial<HttpLimits> = {}, beforeListen?: (app: FastifyInstance) => void): Promise<ServerHarness> {
  const { logger, lines, raw } = captureLogger();
  const metrics = createMetrics({ processMetrics: false });
  let id = 0;
  const app = buildServer({
    logger,
    metrics,
    intake: { accept: async () => ({ deliveryId: ++id, duplicate: false }) },
    webhookPath: '/zabbix/webhook',
    bodyLimit: 64 * 1024,
    limits: { ...HTTP_LIMITS, ...limits },
    token: () => WEBHOOK_TOKEN,
    adminToken: () => '',
    metricsAuth: () => false,
    timezoneOffsetMinutes: () => 0,
    readiness: async () => ({ store: { ok: true, detail: 'writable' } }),
    scrape: async () => metrics.registry.metrics(),
    isStopping: () => false,
    ...over,
  });
  beforeListen?.(app);
  current = app;
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { app, port: address.port, metrics, lines, raw };
}

/** After each test: the raw connections it opened, then the listener (unless the test closed it itself). */
export async function stopServer(): Promise<void> {
  destroyRawSockets();
  const app = current;
  current = undefined;
  if (app?.server.listening) await app.close();
}
