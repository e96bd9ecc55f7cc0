import { createServer, STATUS_CODES, type IncomingMessage, type ServerOptions, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import Fastify, { LogController, type ConnectionError, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { BridgeError, ERROR_CODES, type ErrorCode } from '../../core/errors.js';
import { normalise } from '../../core/normalise.js';
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import type { AlertIntake } from '../../core/ports.js';
import { parseWebhookBody } from '../zabbix/webhook-body.js';
import { bearerMatches, errorBody, INTERNAL_ERROR_BODY } from './answers.js';
import { Connections } from './connections.js';
import { RejectionLog, pathOf, type RejectionLogOptions } from './rejection-log.js';
import { registerStatusRoutes, type StatusSources } from './status/routes.js';
import { WebhookFront } from './webhook.js';

export interface ReadinessCheck {
  readonly ok: boolean;
  readonly detail: string;
}

/** What one client may hold of the listener (webhook.* in the configuration); fixed at start. */
export interface HttpLimits {
  /** The whole request, headers and body, must arrive within this; slow senders get 408 and are disconnected. */
  readonly requestTimeoutMs: number;
  readonly headerTimeoutMs: number;
  /** An idle kept-alive connection is closed after this. */
  readonly keepAliveTimeoutMs: number;
  /** Requests one connection may carry (0: no cap). */
  readonly maxRequestsPerSocket: number;
  /** Connections open at once; more are closed at accept. */
  readonly maxConnections: number;
}

export interface ServerDeps {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly intake: AlertIntake;
  readonly webhookPath: string;
  readonly bodyLimit: number;
  readonly limits: HttpLimits;
  /** The current webhook token (reloadable). */
  readonly token: () => string;
  /** The current admin token (reloadable); empty: admin endpoints answer 403. */
  readonly adminToken: () => string;
  /** /metrics and /readyz need the admin token (metrics.auth). */
  readonly metricsAuth: () => boolean;
  readonly timezoneOffsetMinutes: () => number;
  readonly readiness: () => Promise<Record<string, ReadinessCheck>>;
  /** The /metrics exposition (Prometheus text format), gathered from every thread. */
  readonly scrape: () => Promise<string>;
  readonly isStopping: () => boolean;
  /** Re-read the configuration; returns the problems when it is invalid (the running one is kept). */
  readonly reload?: () => { ok: true; summary: Record<string, unknown> } | { ok: false; problems: string[] };
  /** The rejection log's window and clock (tests). */
  readonly rejectionLog?: RejectionLogOptions;
  /** The status page's data and actions (GET /status; behind the admin token, or loopback only without one). */
  readonly status?: StatusSources;
}

/** A refused request, as the rejection log names it. */
export interface RequestLine {
  readonly method: string;
  /** Without its query string (pathOf). */
  readonly path: string;
}

/** How often Node checks the request and header timeouts (its default, 30 s, would let a 1 s timeout run 30 s). */
function checkingInterval(limits: HttpLimits): number {
  return Math.max(100, Math.min(1000, Math.floor(limits.headerTimeoutMs / 2)));
}

/**
 * The fastify app (not listening): webhook, health, readiness, metrics and
 * reload. Every refused request is counted in zgb_webhook_rejected_total and
 * logged through a rate limit, its connection closed (its body may not have
 * been read); closing the app closes every connection but those whose
 * webhook was accepted, which get their answer first.
 */
export function buildServer(deps: ServerDeps): FastifyInstance {
  const log = deps.logger.child({ component: 'http' });
  const limits = deps.limits;
  const rejections = new RejectionLog(log, deps.rejectionLog);
  /** Counts a refusal (zgb_webhook_rejected_total) and logs it through the rate limit; both webhook paths use it. */
  const rejected = (code: ErrorCode, message: string, ip: string | undefined, request?: RequestLine, field?: string): void => {
    deps.metrics.webhookRejected.inc({ code });
    rejections.record({ code, message, ip, ...(request ? { method: request.method, path: request.path } : {}), ...(field !== undefined ? { field } : {}) });
  };
  const requestLine = (req: FastifyRequest): RequestLine => ({ method: req.method, path: pathOf(req.url) });

  const app = Fastify({
    // The listener as fastify would make it (lib/server.js: node:http with the same options and timeouts), with
    // the webhook's fast path (`front`, below) in front of fastify's handler. Called again for each extra address
    // of "localhost".
    serverFactory: (handler, options) => {
      const opts = options as { http?: ServerOptions; keepAliveTimeout?: number; requestTimeout?: number; connectionTimeout?: number; maxRequestsPerSocket?: number };
      const server = createServer(opts.http ?? {}, (req: IncomingMessage, res: ServerResponse) => {
        if (front.takes(req)) front.serve(req, res);
        else handler(req, res);
      });
      // fastify has filled in its defaults for the options below (a 0 here means Node's default).
      server.keepAliveTimeout = opts.keepAliveTimeout ?? 0;
      server.requestTimeout = opts.requestTimeout ?? 0;
      server.setTimeout(opts.connectionTimeout ?? 0);
      if ((opts.maxRequestsPerSocket ?? 0) > 0) server.maxRequestsPerSocket = opts.maxRequestsPerSocket ?? 0;
      return server;
    },
    loggerInstance: log as FastifyBaseLogger,
    // One log line per decision, not per request: the rejected ones are logged by reject().
    logController: new LogController({ disableRequestLogging: true }),
    // No child logger per request (fastify's default builds one, its bindings serialised, for every webhook):
    // the few lines a request logs (errors, a rejected reload) name their path themselves.
    childLoggerFactory: (logger) => logger,
    bodyLimit: deps.bodyLimit,
    return503OnClosing: true,
    // Connections are closed by the preClose hook below (all but those carrying accepted work).
    forceCloseConnections: false,
    requestTimeout: limits.requestTimeoutMs,
    // Inactivity of a socket (a handler that stalls, a client that stops reading).
    connectionTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    maxRequestsPerSocket: limits.maxRequestsPerSocket,
    http: { headersTimeout: limits.headerTimeoutMs, requestTimeout: limits.requestTimeoutMs, connectionsCheckingInterval: checkingInterval(limits) },
    // Timeouts and malformed HTTP: answered, counted and logged like the other rejections.
    clientErrorHandler: (err: ConnectionError, socket: Socket) => {
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      const code: ErrorCode = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'BRIDGE_REQUEST_TIMEOUT' : 'BRIDGE_BAD_HTTP';
      const message =
        code === 'BRIDGE_REQUEST_TIMEOUT'
          ? `request not received within ${limits.headerTimeoutMs} ms (headers) / ${limits.requestTimeoutMs} ms (whole request)`
          : err.code === 'HPE_HEADER_OVERFLOW'
            ? 'request headers too large'
            : `malformed HTTP request (${err.code})`;
      rejected(code, message, socket.remoteAddress);
      const status = ERROR_CODES[code].status;
      const body = JSON.stringify(errorBody(code, message));
      if (socket.writable) {
        socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      }
      socket.destroy();
    },
  });
  app.server.maxConnections = limits.maxConnections;
  app.server.on('drop', (d) => rejected('BRIDGE_TOO_MANY_CONNECTIONS', `connection closed at accept: ${limits.maxConnections} connections open (webhook.max_connections)`, d?.remoteAddress));

  const connections = new Connections(app.server, limits.maxRequestsPerSocket);
  // The webhook's common case is served by node:http directly (webhook.ts); everything else goes to fastify.
  const front = new WebhookFront({ ...deps, connections, rejected, log });

  // Stop: idle and slow connections are closed at once; accepted webhooks are answered, then their connection closed.
  app.addHook('preClose', async () => {
    const closed = connections.closeIdle();
    rejections.flush();
    if (closed > 0) log.info({ closed }, 'closed idle and unfinished connections');
  });
  app.addHook('onSend', async (req, reply) => {
    if (connections.answer(req.raw.socket)) reply.header('connection', 'close');
  });

  // Zabbix sends JSON; anything else is refused with 415 rather than guessed at.
  app.removeContentTypeParser('text/plain');

  const reject = (reply: FastifyReply, req: FastifyRequest, code: ErrorCode, message: string, field?: string) => {
    rejected(code, message, req.ip, requestLine(req), field);
    // The body may not have been read (refused before it): a client still sending it is not kept.
    return reply.code(ERROR_CODES[code].status).header('connection', 'close').send(errorBody(code, message, field));
  };

  /** Admin endpoints: the admin token only, never the webhook token. */
  const requireAdmin = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const admin = deps.adminToken();
    if (admin === '') return reject(reply, req, 'BRIDGE_ADMIN_DISABLED', 'admin endpoints are off: no admin token is configured (admin.token, BRIDGE_ADMIN_TOKEN); SIGHUP still reloads');
    if (!bearerMatches(req.headers.authorization, admin)) return reject(reply, req, 'BRIDGE_UNAUTHORIZED', 'missing or wrong admin bearer token (admin.token)');
    return undefined;
  };
  const requireAdminForMetrics = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => (deps.metricsAuth() ? requireAdmin(req, reply) : undefined);

  app.setErrorHandler((err: Error & { code?: string; statusCode?: number }, req, reply) => {
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return reject(reply, req, 'BRIDGE_BODY_TOO_LARGE', `body larger than ${deps.bodyLimit} bytes`);
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return reject(reply, req, 'BRIDGE_BAD_CONTENT_TYPE', `unsupported content type ${req.headers['content-type'] ?? '(none)'}`);
    if (err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || (err instanceof SyntaxError && err.statusCode === 400)) {
      return reject(reply, req, 'BRIDGE_BAD_JSON', `body is not valid JSON: ${err.message}`);
    }
    if (err instanceof BridgeError && err.code in ERROR_CODES && ERROR_CODES[err.code].status > 0) {
      return reject(reply, req, err.code, err.message);
    }
    if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
      return reject(reply, req, 'BRIDGE_INVALID_FIELD', err.message);
    }
    req.log.error({ err, path: pathOf(req.url), req_id: req.id }, 'unexpected error answering a request');
    return reply.code(500).send(INTERNAL_ERROR_BODY);
  });

  app.setNotFoundHandler((req, reply) => reply.code(404).send(errorBody('BRIDGE_NOT_FOUND', `no route ${req.method} ${pathOf(req.url)}`)));

  app.post(deps.webhookPath, {
    onRequest: async (req, reply) => {
      if (deps.isStopping()) return reject(reply, req, 'BRIDGE_SHUTTING_DOWN', 'the bridge is stopping');
      if (!bearerMatches(req.headers.authorization, deps.token())) {
        return reject(reply, req, 'BRIDGE_UNAUTHORIZED', 'missing or wrong bearer token');
      }
      return undefined;
    },
    handler: async (req, reply) => {
      const parsed = parseWebhookBody(req.body);
      if (!parsed.ok) return reject(reply, req, 'BRIDGE_INVALID_FIELD', parsed.message, parsed.field);
      const alert = normalise(parsed.event, 'webhook', deps.timezoneOffsetMinutes());
      // Accepted work: a stop waits for its answer instead of cutting its connection.
      const socket = req.raw.socket;
      connections.busy(socket);
      reply.raw.once('close', () => connections.done(socket));
      const accepted = await deps.intake.accept(alert);
      return reply.code(202).send({ status: accepted.duplicate ? 'duplicate' : 'accepted', delivery_id: accepted.deliveryId });
    },
  });

  app.post('/-/reload', {
    onRequest: requireAdmin,
    handler: async (req, reply) => {
      if (!deps.reload) return reply.code(404).send(errorBody('BRIDGE_NOT_FOUND', 'reload is not available in this mode'));
      const r = deps.reload();
      if (r.ok) return reply.code(200).send({ reloaded: true, ...r.summary });
      deps.metrics.webhookRejected.inc({ code: 'CONFIG_INVALID' });
      req.log.warn({ code: 'CONFIG_INVALID', problems: r.problems }, 'reload rejected');
      return reply.code(400).send({ error: { code: 'CONFIG_INVALID', message: 'the new configuration is invalid; the running one is kept', problems: r.problems, hint: ERROR_CODES.CONFIG_INVALID.hint } });
    },
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', { onRequest: requireAdminForMetrics }, async (_req, reply) => {
    const checks = await deps.readiness();
    const ready = Object.values(checks).every((c) => c.ok);
    return reply.code(ready ? 200 : 503).send({ ready, checks });
  });

  app.get('/metrics', { onRequest: requireAdminForMetrics }, async (_req, reply) => {
    const body = await deps.scrape();
    return reply.type(deps.metrics.registry.contentType).send(body);
  });

  if (deps.status) {
    registerStatusRoutes(app, {
      sources: deps.status,
      adminToken: deps.adminToken,
      isAdmin: (authorization) => bearerMatches(authorization, deps.adminToken()),
      readiness: deps.readiness,
      scrape: deps.scrape,
      bodyLimit: deps.bodyLimit,
      rejected: (code, message, req) => rejected(code, message, req.ip, requestLine(req)),
      logger: log,
    });
  }

  return app;
}
