/**
 * The Zabbix side of a model case: what each event looks like now, and the
 * webhook body the project's media type sends for it (the same keys and
 * macro conventions as test/fixtures/zabbix/*.json, recorded from Zabbix 6.0).
 */
import type { EventSpec, IncidentSpec, UpdateSpec } from './case.js';

const SEVERITY_NAMES = ['Not classified', 'Information', 'Warning', 'Average', 'High', 'Disaster'];

/** What Zabbix knows about one problem event at a moment. */
export interface ZabbixEvent {
  readonly spec: EventSpec;
  severity: number;
  acknowledged: boolean;
  /** Model time of the problem (ms). */
  problemAt?: number;
  /** Model time of the recovery (ms); undefined while open. */
  recoveredAt?: number;
}

export type Body = Record<string, string>;

function zabbixDate(ms: number): { date: string; time: string } {
  const iso = new Date(ms).toISOString();
  return { date: iso.slice(0, 10).replace(/-/g, '.'), time: iso.slice(11, 19) };
}

function updateAction(u: UpdateSpec, from: number): string {
  const parts: string[] = [];
  if (u.ack) parts.push('acknowledged');
  if (u.severity !== undefined) parts.push(`changed severity from ${SEVERITY_NAMES[from] ?? from} to ${SEVERITY_NAMES[u.severity] ?? u.severity}`);
  if (u.message !== undefined) parts.push('commented');
  if (parts.length <= 1) return parts[0] ?? 'commented';
  return `${parts.slice(0, -1).join(', ')} and ${parts[parts.length - 1] ?? ''}`;
}

/**
 * The body for a problem, recovery or update of `ev` as Zabbix expands it at
 * model time `at`. Updates carry the event's current state (resolved or not,
 * severity after the change).
 */
export function webhookBody(inc: IncidentSpec, ev: ZabbixEvent, kind: 'problem' | 'recovery' | 'update', at: number, update?: { readonly spec: UpdateSpec; readonly from: number }): Body {
  const started = zabbixDate(ev.problemAt ?? at);
  const resolved = ev.recoveredAt !== undefined;
  const recovered = resolved ? zabbixDate(ev.recoveredAt as number) : undefined;
  const when = zabbixDate(at);
  const isUpdate = kind === 'update' && update !== undefined;
  const value = resolved ? '10 %' : inc.itemValue;
  return {
    event_id: ev.spec.id,
    event_value: resolved ? '0' : '1',
    event_source: '0',
    event_object: '0',
    event_name: inc.triggerName,
    event_status: resolved ? 'RESOLVED' : 'PROBLEM',
    event_ack_status: ev.acknowledged ? 'Yes' : 'No',
    event_update_status: isUpdate ? '1' : '0',
    event_update_action: isUpdate ? updateAction(update.spec, update.from) : '{EVENT.UPDATE.ACTION}',
    event_update_message: isUpdate ? (update.spec.message ?? '') : '{EVENT.UPDATE.MESSAGE}',
    event_update_date: isUpdate ? when.date : '{EVENT.UPDATE.DATE}',
    event_update_time: isUpdate ? when.time : '{EVENT.UPDATE.TIME}',
    event_recovery_id: resolved ? ev.spec.recoveryId : '{EVENT.RECOVERY.ID}',
    event_recovery_date: recovered ? recovered.date : '{EVENT.RECOVERY.DATE}',
    event_recovery_time: recovered ? recovered.time : '{EVENT.RECOVERY.TIME}',
    event_nseverity: String(ev.severity),
    event_severity: SEVERITY_NAMES[ev.severity] ?? 'Not classified',
    event_tags: JSON.stringify(inc.tags),
    event_date: started.date,
    event_time: started.time,
    trigger_id: inc.triggerId,
    trigger_name: inc.triggerName,
    trigger_status: resolved ? 'OK' : 'PROBLEM',
    host_host: inc.host,
    host_name: inc.host,
    host_ip: '192.0.2.10',
    item_key: inc.itemKey,
    item_value: value,
    item_id: inc.itemId,
    event_opdata: `Current: ${value}`,
    user_fullname: isUpdate ? 'Model Operator (modelop)' : '{USER.FULLNAME}',
    alert_sendto: 'glpi',
    alert_subject: `${isUpdate ? 'Updated problem' : resolved ? 'Resolved' : 'Problem'}: ${inc.triggerName}`,
  };
}
