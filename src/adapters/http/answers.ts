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

const BEARER = /^Bearer\s+(.+)$/i;
/** A character trim() and \s never take (every one they take is a space, a control character or beyond ASCII). */
const visibleAscii = (c: number) => c > 32 && c < 127;

/**
 * Bearer token check in constant time: how long it takes depends on the configured token's length only, never
 * on how much of it a guess got right nor on the guess's length. The common spelling ("Bearer <token>", one
 * space, nothing around it to trim) is read without the regular expression, with the same result. Issue 16:
 * this replaces SHA-256 digests of both sides, which cost about 1.1 µs per webhook against 0.1 (2-3 % of the
 * main thread's CPU per alert).
 */
export function bearerMatches(header: string | undefined, expected: string): boolean {
  if (!header || expected === '') return false;
  let token: string;
  if (header.startsWith('Bearer ') && visibleAscii(header.charCodeAt(7)) && visibleAscii(header.charCodeAt(header.length - 1))) token = header.slice(7);
  else {
    const m = BEARER.exec(header.trim());
    if (!m) return false;
    token = m[1] ?? '';
  }
  return sameText(token, expected);
}

/**
 * Whether `given` equals `expected`, in a time that depends on `expected`'s length alone: every character of
 * `expected` is compared, the differences gathered without a branch (a character past `given`'s end reads as 0,
 * and the lengths' difference is gathered too).
 */
export function sameText(given: string, expected: string): boolean {
  let diff = given.length ^ expected.length;
  for (let i = 0; i < expected.length; i++) diff |= (given.charCodeAt(i) | 0) ^ expected.charCodeAt(i);
  return diff === 0;
}
