import { severityRank, type Alert, type Severity } from './alert.js';
import type { CategoryRule, GlpiFields, Rules } from './rules.js';
import { parseQuantity } from './units.js';

export interface Classification {
  readonly category: string;
  /** Which matcher picked the category, in words. */
  readonly matchedBy: string;
  readonly severity: Severity;
  readonly severityReason: string;
  readonly glpi: GlpiFields;
}

function matchCategory(rule: CategoryRule, alert: Alert): string | undefined {
  for (const m of rule.tags) {
    const hit = alert.tags.find((t) => t.tag === m.tag && (m.values === undefined || m.values.includes(t.value)));
    if (hit) return `tag ${hit.tag}=${hit.value}`;
  }
  if (alert.itemKey !== undefined) {
    const key = alert.itemKey;
    const re = rule.itemKeys.find((r) => r.test(key));
    if (re) return `item key ${key} ~ ${re.source}`;
  }
  const byName = rule.triggerNames.find((r) => r.test(alert.triggerName));
  if (byName) return `trigger name ~ ${byName.source}`;
  const byHost = rule.hosts.find((r) => r.test(alert.host));
  if (byHost) return `host ~ ${byHost.source}`;
  return undefined;
}

function thresholdSeverity(rule: CategoryRule, alert: Alert): { severity: Severity; reason: string } | undefined {
  if (rule.thresholds.length === 0 || alert.itemValue === undefined) return undefined;
  const q = parseQuantity(alert.itemValue);
  if (!q) return undefined;
  let best: { severity: Severity; reason: string } | undefined;
  for (const t of rule.thresholds) {
    const hit = (t.above !== undefined && q.value > t.above) || (t.below !== undefined && q.value < t.below);
    if (hit && (!best || severityRank(t.severity) > severityRank(best.severity))) {
      best = { severity: t.severity, reason: `value ${alert.itemValue} ${t.text} → ${t.severity}` };
    }
  }
  return best;
}

/** Rules + alert → category, severity (Zabbix's or from thresholds) and GLPI fields. Pure. */
export function classify(rules: Rules, alert: Alert): Classification {
  let rule = rules.fallback;
  let matchedBy = 'no category rule matched (fallback)';
  for (const candidate of rules.categories) {
    const why = matchCategory(candidate, alert);
    if (why !== undefined) {
      rule = candidate;
      matchedBy = why;
      break;
    }
  }
  const byValue = alert.kind === 'problem' ? thresholdSeverity(rule, alert) : undefined;
  const severity = byValue?.severity ?? alert.severity;
  const severityReason = byValue?.reason ?? `Zabbix severity ${alert.severity}`;
  const glpi: GlpiFields = {
    ...rules.defaults,
    ...rules.severities[severity],
    ...rule.glpi,
    ...rule.severities[severity],
  };
  return { category: rule.name, matchedBy, severity, severityReason, glpi };
}
