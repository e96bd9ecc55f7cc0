import * as crypto from 'node:crypto';
import { ERROR_CODES, type ErrorCode } from '../../core/errors.js';

/**
 * What both of the webhook's paths (webhook.ts on node:http, server.ts on fastify) and the admin endpoints
 * answer with besides the intake: the bearer token check and the body of a refusal.
 */

export interface ErrorBody {
  readonly error: { readonly code: ErrorCode; readonly message: string; readonly field?: string; readonly hint: string };
}

export function errorBody(code: ErrorCode, message: string, field?: string): ErrorBody {
  return { error: { code, message, ...(field !== undefined ? { field } : {}), hint: ERROR_CODES[code].hint } };
}

/** An unexpected error's answer (500): what went wrong is in the log, not in the answer. */
export const INTERNAL_ERROR_BODY = { error: { code: 'INTERNAL', message: 'internal error; see the bridge log' } } as const;

/** crypto.hash (Node 20.12+): a one-shot digest without a Hash object, about half the cost per request (issue 16). */
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'buffer') => Buffer }).hash;

function digest(s: string): Buffer {
  return oneShot !== undefined ? oneShot('sha256', s, 'buffer') : crypto.createHash('sha256').update(s).digest();
}

/** Digests of the configured tokens (the webhook's and the admin's; a reload may add one): computed once, not per request. */
const expectedDigests = new Map<string, Buffer>();
function expectedDigest(token: string): Buffer {
  let d = expectedDigests.get(token);
  if (!d) {
    if (expectedDigests.size >= 8) expectedDigests.clear();
    d = digest(token);
    expectedDigests.set(token, d);
  }
  return d;
}

/** Bearer token check in constant time (compares fixed-length digests). */
export function bearerMatches(header: string | undefined, expected: string): boolean {
  if (!header || expected === '') return false;
  const m = /^Bearer\s+(.+)$/i.exec(header.trim());
  if (!m) return false;
  return crypto.timingSafeEqual(digest(m[1] ?? ''), expectedDigest(expected));
}
