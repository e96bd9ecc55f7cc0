import { severityFromNumber, type Alert, type Tag } from './alert.js';

/** A current problem as the Zabbix API reports it, with its trigger's details. */
export interface PolledProblem {
  readonly eventId: string;
  readonly triggerId: string;
  readonly name: string;
  readonly severity: string;
  readonly clock: string;
  readonly opdata?: string;
  readonly tags: readonly Tag[];
  readonly trigger?: {
    readonly description: string;
    readonly host?: { readonly host: string; readonly name?: string };
    readonly item?: { readonly itemid: string; readonly key: string; readonly lastvalue?: string; readonly units?: string };
  };
}

/** Problem from the API → the same normalised alert the webhook would have produced. */
export function polledProblemAlert(p: PolledProblem): Alert | undefined {
  const host = p.trigger?.host;
  if (!host) return undefined;
  const item = p.trigger?.item;
  const value = item?.lastvalue !== undefined && item.lastvalue !== '' ? `${item.lastvalue}${item.units ? ` ${item.units}` : ''}` : undefined;
  const clock = Number(p.clock);
  return {
    source: 'poller',
    eventSource: '0',
    eventId: p.eventId,
    kind: 'problem',
    severity: severityFromNumber(Number(p.severity)) ?? 'not_classified',
    eventName: p.name,
    host: host.host,
    hostName: host.name ?? host.host,
    triggerId: p.triggerId,
    triggerName: p.trigger?.description ?? p.name,
    tags: p.tags,
    ...(item ? { itemKey: item.key, itemId: item.itemid } : {}),
    ...(value !== undefined ? { itemValue: value } : {}),
    ...(p.opdata ? { opdata: p.opdata } : {}),
    ...(Number.isFinite(clock) && clock > 0 ? { occurredAt: new Date(clock * 1000).toISOString() } : {}),
  };
}

/** Open events the bridge knows of that Zabbix no longer lists as problems: candidates for recovery. */
export function vanished(openEvents: readonly string[], current: ReadonlySet<string>): string[] {
  return openEvents.filter((id) => !current.has(id));
}

/** The recovery alert for a problem alert the bridge received earlier. */
/**
 * Zabbix 6.4+ "Rank as cause" seen by the poller (problem.get's cause_eventid "0" for an event that arrived as a
 * symptom): the update the webhook would have sent ("ranked as cause", core/decide.ts rankedAsCause). Its message
 * names the former cause, so its delivery key is the same at every sweep (taken in once).
 */
export function rankedAsCauseOf(problem: Alert): Alert {
  const { causeEventId, ...rest } = problem;
  return {
    ...rest,
    source: 'poller',
    kind: 'update',
    update: { action: 'ranked as cause', message: `No longer a symptom of event ${causeEventId ?? '?'} (problem.get lists it as a cause).`, acknowledged: false, severityChanged: false, closed: false },
  };
}

export function recoveryOf(problem: Alert, recoveryEventId: string | undefined, recoveredAt: string | undefined): Alert {
  return {
    ...problem,
    source: 'poller',
    kind: 'recovery',
    ...(recoveryEventId !== undefined ? { recoveryEventId } : {}),
    ...(recoveredAt !== undefined ? { recoveredAt } : {}),
  };
}
