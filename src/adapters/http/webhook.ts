import type { IncomingMessage, ServerResponse } from 'node:http';
import { BridgeError, ERROR_CODES, type ErrorCode } from '../../core/errors.js';
import { normalise } from '../../core/normalise.js';
import type { Logger } from '../../observability/logger.js';
import { parseWebhookBody } from '../zabbix/webhook-body.js';
import { bearerMatches, errorBody, INTERNAL_ERROR_BODY } from './answers.js';
import type { Connections } from './connections.js';
import { pathOf } from './rejection-log.js';
import type { RequestLine, ServerDeps } from './server.js';

/**
 * The webhook served by node:http directly, in front of fastify (issue 16: fastify's body reading, content-type
 * parsing, request/reply objects and hooks were a third of the main thread's CPU per alert). It takes only the
 * common case — POST to the configured path with the Content-Type Zabbix's media type sends — and answers it
 * exactly as the fastify route does (server.ts keeps that route, and serves everything else: other content
 * types, odd spellings of the path, requests arriving while fastify closes): the same checks in the same order,
 * the same codes, messages and headers, the same metric and rejection log. test/adapters/webhook-front.test.ts
 * posts the same requests both ways and compares the answers.
 */

/** What the fastify route's JSON parser says (fastify lib/errors.js), kept word for word in our 400s. */
export const EMPTY_JSON_MESSAGE = "Body cannot be empty when content-type is set to 'application/json'";
export const INVALID_JSON_MESSAGE = "Body is not valid JSON but content-type is set to 'application/json'";
const CONTENT_LENGTH_MISMATCH = 'Request body size did not match Content-Length';

/** Content types taken here; fastify reads these (and only these, of what we take) with its JSON parser. */
const FAST_CONTENT_TYPES = new Set(['application/json', 'application/json; charset=utf-8']);

/** Paths fastify's router matches literally (no parameters, wildcards or escapes): only these are taken here. */
const PLAIN_PATH = /^\/[A-Za-z0-9._~/-]*$/;

/**
 * JSON.parse with fastify's refusal of prototype poisoning (secure-json-parse, protoAction and constructorAction
 * "error"): a byte-order mark is skipped; a body holding, at any depth, an object with its own "__proto__" key, or
 * a "constructor" key whose value is an object with its own "prototype", is not valid JSON to us. The walk only
 * runs when the text could spell such a key (literally or with \u escapes), as secure-json-parse's does.
 */
export function parseJsonText(text: string): { ok: true; value: unknown } | { ok: false } {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false };
  }
  if (value === null || typeof value !== 'object') return { ok: true, value };
  if (text.indexOf('__proto__') === -1 && text.indexOf('constructor') === -1 && text.indexOf('\\u') === -1) return { ok: true, value };
  return poisoned(value) ? { ok: false } : { ok: true, value };
}

function poisoned(root: object): boolean {
  const has = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);
  const todo: object[] = [root];
  while (todo.length > 0) {
    const node = todo.pop() as Record<string, unknown>;
    if (has(node, '__proto__')) return true;
    const ctor = node['constructor'];
    if (has(node, 'constructor') && ctor !== null && typeof ctor === 'object' && has(ctor, 'prototype')) return true;
    for (const key of Object.keys(node)) {
      const v = node[key];
      if (v !== null && typeof v === 'object') todo.push(v);
    }
  }
  return false;
}

/** The server's webhook settings (ServerDeps), and what buildServer shares between this path and the fastify route. */
export interface WebhookFrontDeps extends Pick<ServerDeps, 'webhookPath' | 'bodyLimit' | 'intake' | 'token' | 'isStopping' | 'timezoneOffsetMinutes'> {
  /** Counts and logs a refusal (zgb_webhook_rejected_total, the rejection log). */
  readonly rejected: (code: ErrorCode, message: string, ip: string | undefined, request: RequestLine, field?: string) => void;
  readonly connections: Connections;
  readonly log: Logger;
}

const JSON_TYPE = 'application/json; charset=utf-8';
const INTERNAL_ERROR = JSON.stringify(INTERNAL_ERROR_BODY);

/** The webhook's fast path; `takes` says whether a request is its, `serve` answers it. */
export class WebhookFront {
  readonly #d: WebhookFrontDeps;
  readonly #plain: boolean;
  readonly #prefix: string;

  constructor(deps: WebhookFrontDeps) {
    this.#d = deps;
    this.#plain = PLAIN_PATH.test(deps.webhookPath);
    this.#prefix = `${deps.webhookPath}?`;
  }

  /** POST to the webhook path with JSON as Zabbix sends it, while the listener is open; the rest is fastify's. */
  takes(req: IncomingMessage): boolean {
    if (req.method !== 'POST' || !this.#plain) return false;
    const url = req.url ?? '';
    if (url !== this.#d.webhookPath && !url.startsWith(this.#prefix)) return false;
    const type = req.headers['content-type'];
    return type !== undefined && FAST_CONTENT_TYPES.has(type) && !this.#d.connections.closing;
  }

  serve(req: IncomingMessage, res: ServerResponse): void {
    const d = this.#d;
    // The fastify route's onRequest hook: stopping, then the bearer token, before any of the body is read.
    if (d.isStopping()) return this.#reject(req, res, 'BRIDGE_SHUTTING_DOWN', 'the bridge is stopping');
    if (!bearerMatches(req.headers.authorization, d.token())) return this.#reject(req, res, 'BRIDGE_UNAUTHORIZED', 'missing or wrong bearer token');
    // fastify's body reading: an announced length over the limit is refused unread; a body growing past it is dropped.
    const declared = Number(req.headers['content-length']);
    if (declared > d.bodyLimit) return this.#reject(req, res, 'BRIDGE_BODY_TOO_LARGE', `body larger than ${d.bodyLimit} bytes`);
    let first: Buffer | undefined;
    let chunks: Buffer[] | undefined;
    let received = 0;
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > d.bodyLimit) {
        stopReading();
        this.#reject(req, res, 'BRIDGE_BODY_TOO_LARGE', `body larger than ${d.bodyLimit} bytes`);
        return;
      }
      if (first === undefined) first = chunk;
      else (chunks ??= [first]).push(chunk);
    };
    const onEnd = (err?: Error) => {
      stopReading();
      // A request that broke off (or a stream error) is answered as fastify's error handler answered it: a 4xx.
      if (err != null) return this.#reject(req, res, 'BRIDGE_INVALID_FIELD', err.message);
      if (!Number.isNaN(declared) && received !== declared) return this.#reject(req, res, 'BRIDGE_INVALID_FIELD', CONTENT_LENGTH_MISMATCH);
      const text = first === undefined ? '' : chunks === undefined ? first.toString('utf8') : Buffer.concat(chunks, received).toString('utf8');
      this.#body(req, res, text);
    };
    const stopReading = () => {
      req.removeListener('data', onData);
      req.removeListener('end', onEnd);
      req.removeListener('error', onEnd);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onEnd);
  }

  #body(req: IncomingMessage, res: ServerResponse, text: string): void {
    const d = this.#d;
    if (text.length === 0) return this.#reject(req, res, 'BRIDGE_BAD_JSON', `body is not valid JSON: ${EMPTY_JSON_MESSAGE}`);
    const json = parseJsonText(text);
    if (!json.ok) return this.#reject(req, res, 'BRIDGE_BAD_JSON', `body is not valid JSON: ${INVALID_JSON_MESSAGE}`);
    const parsed = parseWebhookBody(json.value);
    if (!parsed.ok) return this.#reject(req, res, 'BRIDGE_INVALID_FIELD', parsed.message, parsed.field);
    const alert = normalise(parsed.event, 'webhook', d.timezoneOffsetMinutes());
    // Accepted work: a stop waits for its answer instead of cutting its connection.
    const socket = req.socket;
    const connections = d.connections;
    connections.busy(socket);
    res.once('close', () => connections.done(socket));
    d.intake.accept(alert).then(
      (accepted) => {
        const body = `{"status":"${accepted.duplicate ? 'duplicate' : 'accepted'}","delivery_id":${String(accepted.deliveryId)}}`;
        this.#send(req, res, 202, body, false);
      },
      (err: unknown) => {
        if (err instanceof BridgeError && err.code in ERROR_CODES && ERROR_CODES[err.code].status > 0) return this.#reject(req, res, err.code, err.message);
        d.log.error({ err, path: pathOf(req.url) }, 'unexpected error answering a request');
        this.#send(req, res, 500, INTERNAL_ERROR, false);
      },
    );
  }

  /** A refusal: counted, logged through the rate limit, answered with Connection: close (the body may be unread). */
  #reject(req: IncomingMessage, res: ServerResponse, code: ErrorCode, message: string, field?: string): void {
    this.#d.rejected(code, message, req.socket.remoteAddress, { method: req.method ?? '', path: pathOf(req.url) }, field);
    const body = JSON.stringify(errorBody(code, message, field));
    this.#send(req, res, ERROR_CODES[code].status, body, true);
  }

  #send(req: IncomingMessage, res: ServerResponse, status: number, body: string, close: boolean): void {
    if (res.headersSent || res.destroyed) return;
    // As the fastify route's onSend hook: the last answer a connection may carry, or any once stopping, closes it.
    if (this.#d.connections.answer(req.socket)) close = true;
    const length = String(Buffer.byteLength(body));
    res.writeHead(status, close ? ['connection', 'close', 'content-type', JSON_TYPE, 'content-length', length] : ['content-type', JSON_TYPE, 'content-length', length]);
    res.end(body);
  }
}
