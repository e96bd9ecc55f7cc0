/**
 * The high-level API's answers turned into what to do about them, with the same kinds and codes the
 * legacy client gives (../outcome.ts), so the dispatcher treats both APIs alike. GLPI's facts are in
 * docs/glpi-api-v2.md (sources: Router.php, AbstractController.php, league/oauth2-server).
 */
import { RemoteError } from '../../../core/remote-error.js';
import { AUTHORIZATION_FIX, fromResponse, retryAfterMs } from '../outcome.js';

/** What the request did: a create and an update have refusals of their own. */
export type Action = 'read' | 'create' | 'update';

/** The high-level API's error body (AbstractController::getErrorResponseBody()). */
export interface HlError {
  status: string;
  title: string;
  detail: unknown;
  additional_messages?: { priority?: string; message?: string }[];
}

export function hlError(body: unknown): HlError | undefined {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return undefined;
  const b = body as Record<string, unknown>;
  if (typeof b.status !== 'string' || typeof b.title !== 'string') return undefined;
  return b as unknown as HlError;
}

/** league/oauth2-server's error body: `{error, error_description | message, hint?}`. */
export function oauthError(body: unknown): { error: string; description: string } | undefined {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return undefined;
  const b = body as Record<string, unknown>;
  if (typeof b.error !== 'string') return undefined;
  const description = [b.error_description ?? b.message, b.hint].filter((x): x is string => typeof x === 'string' && x !== '').join(' — ');
  return { error: b.error, description };
}

function describe(e: HlError): string {
  const extra = (e.additional_messages ?? []).map((m) => m.message).filter((m): m is string => typeof m === 'string' && m !== '');
  const detail = typeof e.detail === 'string' && e.detail !== '' ? e.detail : undefined;
  return [e.title, detail, ...extra].filter((x) => x !== undefined).join(': ');
}

/**
 * An API answer that is not a success.
 * - 400 "Invalid OAuth token" (a bad or expired token: league's hint in `detail`) and 401
 *   ERROR_UNAUTHENTICATED (no usable Authorization header): `session` — a new token, sent once more.
 * - A create or update GLPI refused — 500 "Failed to create/update item(s)" with GLPI's own error body,
 *   or 403 ERROR_RIGHT_MISSING — is `ERROR_GLPI_ADD` / `ERROR_GLPI_UPDATE`, permanent and not landed:
 *   the legacy API's codes for the same refusals (job-runner and addSolution look at them).
 * - Any other answer GLPI gave in its error form (403, 404, 400): permanent, not landed.
 * - The rest (proxies, 5xx without GLPI's body, 429): as the legacy client classifies it.
 */
export function fromV2Response(status: number, body: unknown, retryAfter: string | undefined, action: Action): RemoteError {
  const e = hlError(body);
  if (!e) return fromResponse(status, body, retryAfter);
  const text = `GLPI answered ${status} ${e.status}: ${describe(e)}`;
  const notLanded = { mayHaveLanded: false };
  if ((status === 400 && e.status === 'ERROR_INVALID_PARAMETER' && e.title === 'Invalid OAuth token') || (status === 401 && e.status === 'ERROR_UNAUTHENTICATED')) {
    return new RemoteError('session', e.status, text, status, undefined, notLanded);
  }
  if (status === 429) return new RemoteError('retryable', e.status, text, status, retryAfterMs(retryAfter), { outage: true, mayHaveLanded: false });
  const refused = (status === 500 && /^Failed to (create|update) item/.test(e.title)) || status === 403;
  if (refused && action !== 'read') return new RemoteError('permanent', action === 'create' ? 'ERROR_GLPI_ADD' : 'ERROR_GLPI_UPDATE', text, status, undefined, notLanded);
  if (status >= 500) return new RemoteError('retryable', e.status, text, status, retryAfterMs(retryAfter), { outage: true, mayHaveLanded: action !== 'read' });
  const code = status === 404 ? 'ERROR_ITEM_NOT_FOUND' : status === 403 ? 'ERROR_RIGHT_MISSING' : e.status;
  return new RemoteError('permanent', code, text, status, undefined, notLanded);
}

/**
 * A token request refused (league's `{error, …}`): the client id/secret, the user's login, the grant
 * or the scope — for the operator to fix, like bad credentials on the legacy API.
 */
export function fromTokenResponse(status: number, body: unknown, retryAfter: string | undefined): RemoteError {
  const o = oauthError(body);
  if (o && status >= 400 && status < 500 && status !== 429) {
    const why: Record<string, string> = {
      invalid_client: 'GLPI refused the OAuth client (glpi.client_id / glpi.client_secret, or the client is inactive)',
      invalid_grant: 'GLPI refused the user\'s login or password (glpi.username / glpi.password)',
      invalid_credentials: 'GLPI refused the user\'s login or password (glpi.username / glpi.password)',
      unauthorized_client: 'the OAuth client may not use the password grant (add "Password" to the client\'s grants in GLPI)',
      unsupported_grant_type: 'GLPI does not offer the password grant',
      invalid_scope: 'GLPI refused the scope "api" (allow it for the OAuth client)',
      // IPRestrictionRequestMiddleware: the OAuth client's "Allowed IPs" do not include the bridge's address.
      access_denied: 'GLPI denied the token request (is the bridge\'s address among the OAuth client\'s allowed IPs?)',
    };
    const message = `GLPI answered ${status} ${o.error} to the token request: ${why[o.error] ?? 'the token request was refused'}${o.description ? ` (${o.description})` : ''}`;
    return new RemoteError('login', `OAUTH_${o.error.toUpperCase()}`, message, status, undefined, { mayHaveLanded: false });
  }
  return fromResponse(status, body, retryAfter);
}

/**
 * A fresh token refused at once with 401 ERROR_UNAUTHENTICATED: the web server in front of GLPI dropped
 * the `Authorization` header (GLPI saw none). A login failure, whose message names the fix.
 */
export function strippedBearer(e: RemoteError): RemoteError {
  return new RemoteError(
    'login',
    e.code,
    `GLPI answered ${e.status ?? 401} ${e.code} to a request carrying a fresh access token in its Authorization header: the web server in front of GLPI strips that header before PHP sees it. Fix the web server: ${AUTHORIZATION_FIX}`,
    e.status,
    undefined,
    { mayHaveLanded: false },
  );
}
