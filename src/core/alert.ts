/**
 * The normalised alert: what every intake source (webhook, poller) turns a
 * Zabbix event into. Plain readonly data, no behaviour.
 */

export type AlertKind = 'problem' | 'update' | 'recovery' | 'note';

/** Zabbix severities, by their numeric value (EVENT.NSEVERITY). */
export const SEVERITIES = ['not_classified', 'information', 'warning', 'average', 'high', 'disaster'] as const;
export type Severity = (typeof SEVERITIES)[number];

export function severityFromNumber(n: number): Severity | undefined {
  return SEVERITIES[n];
}

export function severityRank(s: Severity): number {
  return SEVERITIES.indexOf(s);
}

/** The names Zabbix's frontend shows ({EVENT.SEVERITY} with the default severity names), for text people read. */
const SEVERITY_LABELS: Readonly<Record<Severity, string>> = {
  not_classified: 'Not classified',
  information: 'Information',
  warning: 'Warning',
  average: 'Average',
  high: 'High',
  disaster: 'Disaster',
};

export function severityLabel(s: Severity): string {
  return SEVERITY_LABELS[s];
}

export interface Tag {
  readonly tag: string;
  readonly value: string;
}

/** What an update (acknowledge, message, severity change, close) carried. */
export interface AlertUpdate {
  readonly action: string;
  readonly message?: string;
  readonly user?: string;
  readonly at?: string;
  readonly acknowledged: boolean;
  readonly severityChanged: boolean;
  readonly closed: boolean;
}

/** Why the poller noted something on an open problem's ticket (seen through the Zabbix API, not sent by Zabbix). */
export type NoteReason = 'maintenance' | 'maintenance_end' | 'disabled';

/**
 * What the poller saw change on an open problem: its host entered or left a
 * maintenance, its trigger, host or item was disabled. One note per change:
 * `key` names the change (the delivery key and the incident's memory of what
 * was announced are made of it), so a sweep that sees it again, or a restart,
 * announces nothing twice.
 */
export interface AlertNote {
  readonly reason: NoteReason;
  /** The change, e.g. `maintenance:3:1796000000` (maintenance id, start) or `disabled:trigger`; ids only, short. */
  readonly key: string;
  /** The follow-up's text ("Host db-01 entered maintenance 'Patch night' (until …)."). */
  readonly text: string;
  /** Solve the ticket with this reason (zabbix.poll.on_maintenance / on_disabled: solve) rather than only noting it. */
  readonly solve: boolean;
  /** A note that only makes sense after another one was announced (leaving a maintenance: its entry's key). */
  readonly after?: string;
}

/**
 * Every text field has a maximum (core/limits.ts, the README's field limits):
 * a field Zabbix itself bounds (host, ids, event name, item key, tags) is
 * refused when longer; long text (trigger name, value, operational data,
 * update message) is kept truncated, with a marker. Both intake paths
 * (normalise for the webhook, boundAlert for the poller) apply them.
 */
export interface Alert {
  /** Where it came from: the webhook or the poller. Not part of the delivery key. */
  readonly source: 'webhook' | 'poller';
  /** Zabbix event source (0 = triggers). */
  readonly eventSource: string;
  /** The problem event id (recoveries and updates carry the problem's id). */
  readonly eventId: string;
  readonly kind: AlertKind;
  readonly severity: Severity;
  readonly eventName: string;
  readonly host: string;
  readonly hostName: string;
  readonly hostIp?: string;
  readonly triggerId?: string;
  readonly triggerName: string;
  /** The trigger's description ({TRIGGER.DESCRIPTION}): what the problem means and what to do, as the template's author wrote it. */
  readonly triggerDescription?: string;
  /** The item's visible name ({ITEM.NAME1}). */
  readonly itemName?: string;
  readonly itemKey?: string;
  readonly itemId?: string;
  /** The item value as Zabbix formatted it, units included ("97 %"). */
  readonly itemValue?: string;
  readonly opdata?: string;
  readonly tags: readonly Tag[];
  /** When the problem started, ISO 8601 (UTC assumed when Zabbix gives no zone). */
  readonly occurredAt?: string;
  readonly recoveryEventId?: string;
  readonly recoveredAt?: string;
  /** The cause event of a symptom ({EVENT.CAUSE.ID}, Zabbix 6.4+); absent for a cause, and from Zabbix 6.0 (the macro unexpanded). */
  readonly causeEventId?: string;
  readonly update?: AlertUpdate;
  /** kind note: what changed (the rest of the alert is the problem's, as first delivered). */
  readonly note?: AlertNote;
}
