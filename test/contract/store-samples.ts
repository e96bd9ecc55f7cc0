/** Small values the store contracts are written with. */
import { nodeDigests } from '../../src/adapters/digests.js';
import type { Alert } from '../../src/core/alert.js';
import type { Incident, JobSpec } from '../../src/core/decide.js';
import { fingerprintKey } from '../../src/core/fingerprint.js';

export const T = 1_800_000_000_000;

/** The key a store files an incident under. */
export const keyOf = (fp: string): string => fingerprintKey(fp, nodeDigests);

export const followup = (line: string, isPrivate = false): JobSpec => ({ type: 'followup', lines: [line], isPrivate });
export const solve = (line = 'resolved'): JobSpec => ({ type: 'solve', mode: 'solve', lines: [line] });
export const reopen = (line = 'again'): JobSpec => ({ type: 'reopen', lines: [line] });
export const zabbixAck = (eventId = '1'): JobSpec => ({ type: 'zabbix_ack', eventIds: [eventId], message: '[glpi-bridge] ticket #1', acknowledge: true });
export const create = (delayMs = 0, marker = '[zbx:m]'): JobSpec => ({
  type: 'create_ticket',
  delayMs,
  eventId: '1',
  ticket: { name: 'n', content: 'c', marker, urgency: 3, impact: 3, type: 1, itilcategories_id: 0, entities_id: 0, requesttypes_id: 0, groups_id_assign: 0 },
});

export const incident = (fingerprint: string, status: Incident['status'] = 'open', over: Partial<Incident> = {}): Incident => ({
  fingerprint, cycle: 1, status, marker: '[zbx:m]', category: 'cpu', severity: 'high', urgency: 4, impact: 4,
  openCount: status === 'open' ? 1 : 0, occurrences: 1, openedAt: T, ...over,
});

export const alert = (kind: Alert['kind'] = 'problem', eventId = '1', over: Partial<Alert> = {}): Alert => ({
  source: 'webhook', eventSource: '0', eventId, kind, severity: 'high', eventName: 'x', host: 'h', hostName: 'h', triggerName: 't', tags: [], ...over,
});
