/**
 * The one place that turns a GLPI answer or a transport failure into what
 * to do about it: retry later, give up (permanent), or open a new session.
 */
import { RemoteError } from '../remote-error.js';

const LOGIN_CODES = new Set([
  'ERROR_GLPI_LOGIN', 'ERROR_GLPI_LOGIN_USER_TOKEN', 'ERROR_LOGIN_PARAMETERS_MISSING', 'ERROR_LOGIN_WITH_CREDENTIALS_DISABLED',
  'ERROR_APP_TOKEN_PARAMETERS_MISSING', 'ERROR_WRONG_APP_TOKEN_PARAMETER', 'ERROR_NOT_ALLOWED_IP',
]);

/** GLPI errors are ["CODE", message]; proxies answer HTML. Returns the code and a readable message. */
export function glpiErrorBody(body: unknown): { code?: string; message: string } {
  if (Array.isArray(body) && typeof body[0] === 'string') {
    const detail = body[1];
    const message = typeof detail === 'string' ? detail : detail === null || detail === undefined ? '' : JSON.stringify(detail);
    return { code: body[0], message };
  }
  if (typeof body === 'string') return { message: body.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 200) };
  return { message: JSON.stringify(body ?? null).slice(0, 200) };
}

/** Retry-After as seconds or an HTTP date → milliseconds. */
export function retryAfterMs(header: string | undefined, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const secs = Number(header);
  if (Number.isFinite(secs) && secs >= 0) return Math.round(secs * 1000);
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export function fromResponse(status: number, body: unknown, retryAfter: string | undefined): RemoteError {
  const { code, message } = glpiErrorBody(body);
  const text = `GLPI answered ${status}${code ? ` ${code}` : ''}${message ? `: ${message}` : ''}`;
  if (status === 401 && code === 'ERROR_SESSION_TOKEN_INVALID') return new RemoteError('session', code, text, status);
  if (status === 400 && code === 'ERROR_SESSION_TOKEN_MISSING') return new RemoteError('session', code, text, status);
  if (code !== undefined && LOGIN_CODES.has(code)) return new RemoteError('login', code, text, status);
  if (status === 429) return new RemoteError('retryable', code ?? 'HTTP_429', text, status, retryAfterMs(retryAfter));
  if (status >= 500 || status === 408) return new RemoteError('retryable', code ?? `HTTP_${status}`, text, status, retryAfterMs(retryAfter));
  return new RemoteError('permanent', code ?? `HTTP_${status}`, text, status);
}

/** Refused, reset, timed out, DNS: GLPI may come back, so every transport failure is retryable. */
export function fromNetwork(code: string | undefined, message: string): RemoteError {
  return new RemoteError('retryable', code ?? 'NETWORK', `GLPI unreachable: ${message}`);
}
