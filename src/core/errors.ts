/**
 * Stable, documented error codes. A code is never reused; each shows up in
 * the HTTP 4xx body, the log line, the dead-letter reason and the README's
 * troubleshooting table (a test keeps them in sync).
 */
export const ERROR_CODES = {
  BRIDGE_UNAUTHORIZED: { status: 401, hint: 'Send "Authorization: Bearer <token>" with the token the bridge is configured with: webhook.token for the webhook, admin.token for admin endpoints.' },
  BRIDGE_BAD_JSON: { status: 400, hint: 'The body is not valid JSON; check the media type script (it must JSON.stringify the parameters).' },
  BRIDGE_BAD_CONTENT_TYPE: { status: 415, hint: 'Send Content-Type: application/json.' },
  BRIDGE_INVALID_FIELD: { status: 400, hint: 'A media type parameter is missing or malformed; the message names it. Compare with the shipped media type.' },
  BRIDGE_BODY_TOO_LARGE: { status: 413, hint: 'The body exceeds webhook.body_limit; trim the media type parameters.' },
  BRIDGE_STORE_UNAVAILABLE: { status: 503, hint: 'The state store cannot commit (disk full, permissions). Zabbix will retry; see /readyz and the log.' },
  BRIDGE_SHUTTING_DOWN: { status: 503, hint: 'The bridge is stopping; Zabbix will retry the delivery.' },
  BRIDGE_ADMIN_DISABLED: { status: 403, hint: 'Admin endpoints (POST /-/reload; /metrics and /readyz with metrics.auth) need admin.token (BRIDGE_ADMIN_TOKEN); without one they are off and only SIGHUP reloads.' },
  BRIDGE_REQUEST_TIMEOUT: { status: 408, hint: 'The request did not arrive within webhook.header_timeout / webhook.request_timeout; the connection is closed. A slow network or a client that trickles its body.' },
  BRIDGE_BAD_HTTP: { status: 400, hint: 'The request is not valid HTTP (or its headers are too large); the connection is closed.' },
  BRIDGE_TOO_MANY_CONNECTIONS: { status: 0, hint: 'webhook.max_connections connections were open: the new one was closed at accept. Raise the cap, or find the client that holds them (the log names the address).' },
  BRIDGE_NOT_FOUND: { status: 404, hint: 'Unknown path; the webhook is POST /zabbix/webhook by default.' },
  BRIDGE_DELIVERY_PARKED: { status: 0, hint: 'Deciding on an alert failed (an internal error): it is parked, listed by `queue`, and the alerts after it are decided. Report the logged error.' },
  BRIDGE_PROCESSING_FAILED: { status: 0, hint: 'The processing thread (decisions, GLPI dispatch) stopped on an error; the bridge exits 1 so systemd restarts it. Report the logged stack.' },
  CONFIG_INVALID: { status: 0, hint: 'Fix the configuration file at the YAML path given; run check-config.' },
  GLPI_PERMANENT: { status: 0, hint: 'GLPI refused the request (4xx). Fix the rule or the GLPI rights, then `queue retry`.' },
  GLPI_LOGIN_FAILED: { status: 0, hint: 'GLPI refused the credentials (app token, user token or login). Check glpi.* settings.' },
  GLPI_MARKER_SPOOFED: { status: 0, hint: 'A GLPI ticket carries an incident\'s marker but was not created by the bridge\'s GLPI user: not adopted; a new ticket is created.' },
  ZABBIX_EVENT_UNKNOWN: { status: 0, hint: 'An open event is not returned by the Zabbix API (host not visible to the API user, event housekept): the incident stays open; check the API user\'s host groups.' },
  TLS_INSECURE: { status: 0, hint: 'glpi.tls_insecure or zabbix.tls_insecure is true: certificates are not checked. Give the CA in ca_file and set tls_insecure: false.' },
  GLPI_TICKET_MISSING: { status: 0, hint: 'The ticket this incident points at could not be created or no longer exists.' },
  GLPI_MARKER_NOT_STORED: { status: 0, hint: 'GLPI (v2) did not store the ticket\'s external_id even after a second try: a retry after a lost answer could not find this ticket. Check ticket templates and rules that clear External ID.' },
  GLPI_FIELD_NOT_STORED: { status: 0, hint: 'GLPI (v2) stored a ticket with other values than sent (a business rule, a template, or a property the API dropped). Check GLPI\'s rules if the difference is unwanted.' },
  GLPI_GROUP_NOT_ASSIGNED: { status: 0, hint: 'GLPI (v2) created the ticket but refused to add the assigned group as a team member: check the group id and the bridge user\'s rights on it.' },
  GLPI_STATUS_NOT_SET: { status: 0, hint: 'GLPI (v2) took the follow-up but not the status the bridge set afterwards (keep it pending, or reopen it): check the bridge user\'s status rights (ticket status matrix).' },
  GLPI_NAME_UNKNOWN: { status: 0, hint: 'A name in the rules matches no GLPI item: the ticket goes without that field. Fix the name (complete name "Parent > Child") or create the item; check-config --online lists them.' },
  GLPI_NAME_AMBIGUOUS: { status: 0, hint: 'A name in the rules matches several GLPI items: the ticket goes without that field. Give the complete name or the id.' },
  GLPI_LOOKUP_UNSUPPORTED: { status: 0, hint: 'glpi.api: v2 cannot link the host\'s asset to a ticket (GLPI\'s high-level API has no Item_Ticket route): the ticket goes without it.' },
  GLPI_NAMES_KEPT: { status: 0, hint: 'GLPI could not be asked for the rules\' names at start or reload: the last resolution is kept.' },
  GLPI_ASSET_AMBIGUOUS: { status: 0, hint: 'Several GLPI assets match a host by name or IP: none is linked. Add the host to assets.map.' },
  GLPI_ASSET_MAP_UNRESOLVED: { status: 0, hint: 'An assets.map entry names an asset GLPI does not have exactly once. Fix the entry (prefer id).' },
  PG_LEASE_LOST: { status: 0, hint: 'Several bridges on one PostgreSQL: this node\'s claim on a job lapsed while it ran (paused, partitioned, or PostgreSQL unreachable longer than store.postgres.lease) and another node took the job over; nothing is recorded twice. Frequent: raise store.postgres.lease or find what pauses the node.' },
  NODE_NAME_IN_USE: { status: 0, hint: 'Several bridges on one PostgreSQL: another running bridge (its host and pid in the message) holds this store.postgres.node_name, so this one does not start (or, after being stopped longer than a lease, lost its name to a new start: /readyz fails). Give each bridge its own store.postgres.node_name (the default is the host\'s name).' },
  MARKER_KEY_FROM_DATABASE: { status: 0, hint: 'Bridges on one PostgreSQL share the marker key stored in the database; this node\'s data_dir/marker-key differs and is not used. Nothing to fix; replace the file with the shared key to silence it.' },
  GLPI_ASSET_NOT_FOUND: { status: 0, hint: 'No GLPI asset matches the host: the ticket goes without one.' },
  GLPI_SOLUTION_REFUSED: { status: 0, hint: 'GLPI refused the recovery\'s solution (a template, a rule, the status matrix): glpi.recovery_fallback ran. Fix what glpi_reason names, or keep the fallback.' },
  GLPI_PROBLEMS_UNSUPPORTED: { status: 0, hint: 'glpi.api: v2 cannot link tickets to a problem or to each other (no Problem_Ticket / Ticket_Ticket route): problems are created, and a follow-up names each ticket to link by hand (logged once).' },
  GLPI_ROWS_REFUSED: { status: 0, hint: 'GLPI answered the read-back\'s search with rows whose fields are missing or not in GLPI\'s documented form: those rows were left out (listed in the log line with the field and what it held), the others were read. Check GLPI\'s version, a plugin changing search results, or a proxy rewriting answers.' },
  GLPI_WATCH_TICKET_SKIPPED: { status: 0, hint: 'The GLPI read-back could not read a ticket\'s follow-ups in several sweeps in a row: it moved past the ticket, whose technicians\' follow-ups until then are not mirrored to Zabbix. Check the error logged with it (rights on the ticket, GLPI\'s log).' },
  SYSTEMD_NOTIFY_FAILED: { status: 0, hint: 'systemd-notify failed: readiness, status and watchdog pings may be lost, and a watchdog may restart the service. Check that the systemd package is installed and NOTIFY_SOCKET reachable.' },
  LOG_LINES_DROPPED: { status: 0, hint: 'The reader of standard output (journald) fell more than 4 MiB of lines behind: the newest lines were dropped and counted (zgb_log_lines_dropped_total). No decision is lost; check journald\'s load.' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error with a stable code, a human message and a kind that tells what to do with it. */
export class BridgeError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
    this.name = 'BridgeError';
  }
}

/** The inbox is briefly unavailable (being checkpointed by the other thread): try again soon. */
export class StoreBusy extends Error {
  constructor() {
    super('the inbox is being checkpointed');
    this.name = 'StoreBusy';
  }
}
