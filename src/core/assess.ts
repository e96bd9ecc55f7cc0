import type { Alert, Severity } from './alert.js';
import { classify, type Classification } from './classify.js';
import { decide, problemGroup, rankedAsCause, type DecideInput, type Decision, type EventInfo, type Incident, type Policy } from './decide.js';
import { fingerprint, type FingerprintField } from './fingerprint.js';
import type { Rules } from './rules.js';

// One alert assessed: classified, filed under its incident, decided. Pure apart from the state lookups it is given;
// the processor runs it against the store, `explain` against no state.

/** What the processor needs from the (reloadable) configuration. */
export interface ProcessingSettings {
  readonly rules: Rules;
  readonly policy: Policy;
  readonly fingerprintFields: readonly FingerprintField[];
  /** Follow-ups and solutions wait this long so a storm can merge into them. */
  readonly coalesceWindowMs: number;
}

export interface Explained {
  readonly classification: Classification;
  readonly fingerprint: string;
  readonly decision: Decision;
}

/** What a decision may look up about the bridge's state. */
export interface DecisionState {
  /** The incident under a fingerprint. */
  incident(fp: string): Incident | undefined;
  /** The event index's entry for a problem event. */
  event(eventId: string): EventInfo | undefined;
  /** Whether a recovery of this alert's event was received before it. */
  recoveredEarlier(alert: Alert): boolean;
  /** The problem of this alert's event as delivered, if the inbox holds it (a symptom skipped, ranked as cause later). */
  problemAlert?(alert: Alert): Alert | undefined;
  /** Fingerprint definitions of incidents still open that differ from the one in force (a reload changed it). */
  readonly otherDefinitions?: readonly (readonly FingerprintField[])[];
}

/** No incident, no event known: what the `explain` command assumes. */
export const NO_STATE: DecisionState = { incident: () => undefined, event: () => undefined, recoveredEarlier: () => false };

/**
 * Classify, fingerprint and decide one alert. Updates and recoveries go to
 * the incident their event belongs to (whatever the fingerprint definition
 * now says); a problem joins an open incident of an earlier definition
 * before it opens one under the current definition. Pure apart from the lookups.
 */
export function assessAlert(settings: ProcessingSettings, alert: Alert, state: DecisionState, now: number): Explained {
  const classification = classify(settings.rules, alert);
  const event = state.event(alert.eventId);
  let fp = alert.kind !== 'problem' && event ? event.fingerprint : fingerprint(alert, classification.category, settings.fingerprintFields);
  let incident = state.incident(fp);
  if (alert.kind === 'problem' && incident?.status !== 'open') {
    for (const fields of state.otherDefinitions ?? []) {
      const other = fingerprint(alert, classification.category, fields);
      const found = state.incident(other);
      if (found?.status === 'open') {
        fp = other;
        incident = found;
        break;
      }
    }
  }
  // A new cycle joins the group of its category as classified now; a recovery or note (a flap leaving it) the one its cycle joined.
  const group = alert.kind === 'problem' ? problemGroup(settings.rules, alert, classification.category) : alert.kind === 'recovery' || alert.kind === 'note' ? problemGroup(settings.rules, alert, incident?.category ?? classification.category) : undefined;
  const decision = decide({
    ...decisionBasis(settings, alert, classification, fp, incident, now),
    event,
    // Looked up only where it can matter: a problem the bridge has not taken in yet.
    recoveredEarlier: alert.kind === 'problem' && event === undefined && state.recoveredEarlier(alert),
    // A symptom (Zabbix 6.4+): its cause's event, to link their tickets (issue 14 item 1).
    ...(alert.causeEventId !== undefined && alert.causeEventId !== alert.eventId ? { cause: state.event(alert.causeEventId) } : {}),
    // Ranked as cause in Zabbix, an event without a ticket: the skipped symptom's problem, to open its ticket now.
    ...(alert.kind === 'update' && event === undefined && rankedAsCause(alert)
      ? { skippedSymptom: state.problemAlert?.(alert), recoveredEarlier: state.recoveredEarlier(alert) }
      : {}),
    // problems.together: the record of the incident's problem group, from the same state as the incident's (decide.ts groupRecord).
    ...(group !== undefined ? { group: state.incident(group) } : {}),
  });
  return { classification, fingerprint: fp, decision };
}

/** What every decision about an alert is taken against: the settings in force and the alert's incident. */
export function decisionBasis(settings: ProcessingSettings, alert: Alert, classification: Classification, fingerprint: string, incident: Incident | undefined, now: number): DecideInput {
  return {
    alert,
    classification,
    fingerprint,
    incident,
    now,
    policy: { ...settings.policy, fingerprintFields: settings.fingerprintFields },
    rules: settings.rules,
    reclassify: (severity: Severity) => classify(settings.rules, { ...alert, kind: 'update', severity }),
  };
}
