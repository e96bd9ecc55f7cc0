/**
 * A failed call to GLPI or Zabbix, sorted by the adapter that saw it into
 * what to do next: retry later, give up (permanent: dead letter), open a new
 * session, or stop for bad credentials. The dispatcher never parses HTTP.
 */
export type FailureKind = 'retryable' | 'permanent' | 'session' | 'login';

export class RemoteError extends Error {
  constructor(
    readonly kind: FailureKind,
    /** GLPI's error code (ERROR_…), an HTTP status, or a network error name. */
    readonly code: string,
    message: string,
    readonly status?: number,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'RemoteError';
  }
}
