/**
 * The one place that turns a GLPI answer or a transport failure into what
 * to do about it: retry later, give up (permanent), or open a new session.
 */
import { RemoteError } from '../../core/remote-error.js';

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
  // GLPI itself answered (its ["CODE", message] form): it refused this request, nothing was applied.
  const fromGlpi = code !== undefined;
  if (status === 401 && code === 'ERROR_SESSION_TOKEN_INVALID') return new RemoteError('session', code, text, status, undefined, { mayHaveLanded: false });
  if (status === 400 && code === 'ERROR_SESSION_TOKEN_MISSING') return new RemoteError('session', code, text, status, undefined, { mayHaveLanded: false });
  if (code !== undefined && LOGIN_CODES.has(code)) return new RemoteError('login', code, text, status, undefined, { mayHaveLanded: false });
  // A rate limiter refuses before the application runs.
  if (status === 429) return new RemoteError('retryable', code ?? 'HTTP_429', text, status, retryAfterMs(retryAfter), { outage: true, mayHaveLanded: false });
  if (status >= 500 || status === 408) {
    // 502/503 with the web server's own page: PHP never ran (or never got the request). 500 and 504 may come after a commit.
    const notSent = status === 408 || ((status === 502 || status === 503) && !fromGlpi);
    return new RemoteError('retryable', code ?? `HTTP_${status}`, text, status, retryAfterMs(retryAfter), { outage: true, mayHaveLanded: !notSent });
  }
  return new RemoteError('permanent', code ?? `HTTP_${status}`, text, status, undefined, { mayHaveLanded: !fromGlpi });
}

/** Transport failures where the request never left: nothing can have landed. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

/**
 * Refused, reset, timed out, DNS: GLPI may come back, so every transport
 * failure is retryable and says "GLPI is down". A reset on a reused
 * keep-alive connection is the server having closed it while idle
 * (`staleConnection`): retried at once, not an outage.
 */
export function fromNetwork(code: string | undefined, message: string, reusedSocket = false): RemoteError {
  const stale = reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE');
  return new RemoteError('retryable', code ?? 'NETWORK', `GLPI unreachable: ${message}`, undefined, undefined, {
    outage: !stale,
    mayHaveLanded: code === undefined || !NOT_SENT.has(code),
    staleConnection: stale,
  });
}

/** The web-server settings that pass the `Authorization` header on to PHP. */
export const AUTHORIZATION_FIX =
  'Apache: `CGIPassAuth On` in GLPI\'s <Directory> (Apache 2.4.13+), or `SetEnvIf Authorization "(.*)" HTTP_AUTHORIZATION=$1`; nginx: `fastcgi_param HTTP_AUTHORIZATION $http_authorization;`';

/**
 * initSession answered ERROR_LOGIN_PARAMETERS_MISSING ("parameter(s) login,
 * password or user_token are missing", API::initSession()) although the
 * request carried the credentials in its `Authorization` header: the web
 * server in front of PHP dropped it (APIRest::parseIncomingParams() reads
 * `user_token` from that header, login/password from PHP_AUTH_USER/PW).
 * Still a login failure (GLPI's code kept, for /readyz), with the fix.
 */
export function strippedAuthorization(e: RemoteError, sent: 'user_token' | 'basic'): RemoteError {
  const fallback = sent === 'user_token'
    ? ' — or set glpi.user_token_in_query: true to send the user token in the query string instead (it then appears in the web server\'s access log)'
    : ' — or use a glpi.user_token with glpi.user_token_in_query: true (the token then appears in the web server\'s access log)';
  return new RemoteError(
    'login',
    e.code,
    `GLPI answered ${e.status ?? 400} ${e.code} to initSession although the request carried the ${sent === 'user_token' ? 'user token' : 'login and password'} in its Authorization header: the web server in front of GLPI strips that header before PHP sees it. Fix the web server: ${AUTHORIZATION_FIX}${fallback}`,
    e.status,
    undefined,
    { mayHaveLanded: false },
  );
}

/** Ticket statuses (CommonITILObject), as both APIs give and take them. */
export const TICKET_STATUS = { incoming: 1, assigned: 2, pending: 4, solved: 5, closed: 6 } as const;

/**
 * addSolution (either API) when GLPI refused the solution or its outcome is unknown (sent, no answer): a ticket
 * already solved or closed counts as done, since GLPI refuses a second solution and a lost answer may hide one
 * that landed. `e` itself otherwise, and for any other failure.
 */
export async function solvedAlready(e: unknown, ticketStatus: () => Promise<number | undefined>): Promise<'already_solved' | 'already_closed'> {
  const refusedOrUnknown = e instanceof RemoteError && (e.code === 'ERROR_GLPI_ADD' || (e.kind === 'retryable' && e.mayHaveLanded && !e.outage));
  if (!refusedOrUnknown) throw e;
  const status = await ticketStatus();
  if (status === TICKET_STATUS.solved) return 'already_solved';
  if (status === TICKET_STATUS.closed) return 'already_closed';
  throw e;
}
