/**
 * A failed call to GLPI or Zabbix, sorted by the adapter that saw it into
 * what to do next: retry later, give up (permanent: dead letter), open a new
 * session, or stop for bad credentials. The dispatcher never parses HTTP.
 */
export type FailureKind = 'retryable' | 'permanent' | 'session' | 'login';

/** What else the adapter knows about a failure, for the dispatcher's circuit breaker and idempotency checks. */
export interface FailureDetails {
  /**
   * The remote system is down or overloaded (network error, 5xx, 429), as
   * opposed to answering and refusing this request. Opens the dispatcher's
   * circuit breaker.
   */
  readonly outage?: boolean;
  /**
   * Whether the request may have been applied before it failed. False only
   * when it provably was not: the connection was refused, the web server
   * answered 502/503 with its own page, GLPI answered with an error. A
   * timeout or a connection reset after sending may have landed (default).
   */
  readonly mayHaveLanded?: boolean;
  /**
   * The request went out on a reused keep-alive connection the server had
   * already closed (ECONNRESET / EPIPE on a reused socket): not a failure of
   * the remote system; retry at once on a fresh connection.
   */
  readonly staleConnection?: boolean;
}

export class RemoteError extends Error {
  readonly outage: boolean;
  readonly mayHaveLanded: boolean;
  readonly staleConnection: boolean;

  constructor(
    readonly kind: FailureKind,
    /** GLPI's error code (ERROR_…), an HTTP status, or a network error name. */
    readonly code: string,
    message: string,
    readonly status?: number,
    readonly retryAfterMs?: number,
    details: FailureDetails = {},
  ) {
    super(message);
    this.name = 'RemoteError';
    this.outage = details.outage ?? false;
    this.mayHaveLanded = details.mayHaveLanded ?? true;
    this.staleConnection = details.staleConnection ?? false;
  }
}
