import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { BridgeError, ERROR_CODES, type ErrorCode } from '../../core/errors.js';
import { normalise } from '../../core/normalise.js';
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import type { Intake } from '../../services/intake.js';
import { parseWebhookBody } from '../zabbix/webhook-body.js';

export interface ReadinessCheck {
  readonly ok: boolean;
  readonly detail: string;
}

export interface ServerDeps {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly intake: Intake;
  readonly webhookPath: string;
  readonly bodyLimit: number;
  /** The current webhook token (reloadable). */
  readonly token: () => string;
  readonly timezoneOffsetMinutes: () => number;
  readonly readiness: () => Promise<Record<string, ReadinessCheck>>;
  /** The /metrics exposition (Prometheus text format), gathered from every thread. */
  readonly scrape: () => Promise<string>;
  readonly isStopping: () => boolean;
  /** Re-read the configuration; returns the problems when it is invalid (the running one is kept). */
  readonly reload?: () => { ok: true; summary: Record<string, unknown> } | { ok: false; problems: string[] };
}

export interface ErrorBody {
  readonly error: { readonly code: ErrorCode; readonly message: string; readonly field?: string; readonly hint: string };
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

let expectedCache: { token: string; digest: Buffer } | undefined;

/** Bearer token check in constant time (compares fixed-length digests). */
export function bearerMatches(header: string | undefined, expected: string): boolean {
  if (!header || expected === '') return false;
  const m = /^Bearer\s+(.+)$/i.exec(header.trim());
  if (!m) return false;
  if (expectedCache?.token !== expected) expectedCache = { token: expected, digest: digest(expected) };
  return timingSafeEqual(digest(m[1] ?? ''), expectedCache.digest);
}

export function errorBody(code: ErrorCode, message: string, field?: string): ErrorBody {
  return { error: { code, message, ...(field !== undefined ? { field } : {}), hint: ERROR_CODES[code].hint } };
}

/** The fastify app (not listening): webhook, health, readiness and metrics. */
export function buildServer(deps: ServerDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.logger.child({ component: 'http' }) as FastifyBaseLogger,
    // One log line per decision, not per request: the rejected ones are logged by reject().
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.bodyLimit,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });

  // Zabbix sends JSON; anything else is refused with 415 rather than guessed at.
  app.removeContentTypeParser('text/plain');

  const reject = (reply: FastifyReply, req: FastifyRequest, code: ErrorCode, message: string, field?: string) => {
    deps.metrics.webhookRejected.inc({ code });
    req.log.warn({ code, field, ip: req.ip, url: req.url }, message);
    return reply.code(ERROR_CODES[code].status).send(errorBody(code, message, field));
  };

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
    req.log.error({ err }, 'unexpected error answering a request');
    return reply.code(500).send({ error: { code: 'INTERNAL', message: 'internal error; see the bridge log' } });
  });

  app.setNotFoundHandler((req, reply) => reply.code(404).send(errorBody('BRIDGE_NOT_FOUND', `no route ${req.method} ${req.url}`)));

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
      const accepted = await deps.intake.accept(alert);
      return reply.code(202).send({ status: accepted.duplicate ? 'duplicate' : 'accepted', delivery_id: accepted.deliveryId });
    },
  });

  app.post('/-/reload', {
    onRequest: async (req, reply) => {
      if (!bearerMatches(req.headers.authorization, deps.token())) return reject(reply, req, 'BRIDGE_UNAUTHORIZED', 'missing or wrong bearer token');
      return undefined;
    },
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

  app.get('/readyz', async (_req, reply) => {
    const checks = await deps.readiness();
    const ready = Object.values(checks).every((c) => c.ok);
    return reply.code(ready ? 200 : 503).send({ ready, checks });
  });

  app.get('/metrics', async (_req, reply) => {
    const body = await deps.scrape();
    return reply.type(deps.metrics.registry.contentType).send(body);
  });

  return app;
}
