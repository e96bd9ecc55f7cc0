import { readFileSync } from 'node:fs';
import { normalise } from '../core/normalise.js';
import { parseWebhookBody } from '../adapters/zabbix/webhook-body.js';
import { processingSettings } from '../composition/from-config.js';
import { assessAlert, NO_STATE } from '../core/assess.js';
import { readMarkerKey } from '../adapters/marker-key.js';
import { loadOrReport, UsageError } from './common.js';

/** `explain --config FILE [ALERT.json | -]`: what would this webhook body become? No side effects. */
export function explainCommand(file: string | undefined, input: string | undefined): number {
  const config = loadOrReport(file);
  if (!config) return 1;
  const text = input === undefined || input === '-' ? readFileSync(0, 'utf8') : readFileSync(input, 'utf8');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${input ?? 'stdin'}: not valid JSON: ${(e as Error).message}`);
  }
  const parsed = parseWebhookBody(body);
  if (!parsed.ok) {
    process.stderr.write(`${input ?? 'stdin'}: BRIDGE_INVALID_FIELD: ${parsed.message}\n`);
    return 1;
  }
  const alert = normalise(parsed.event, 'webhook', config.zabbix.timezone_offset_minutes);
  const { classification: c, fingerprint, decision } = assessAlert(processingSettings(config, readMarkerKey(config.data_dir) ?? 'no-marker-key-yet-0123456789abcdef'), alert, NO_STATE, Date.now());
  const create = decision.jobs.find((j) => j.type === 'create_ticket');
  const out = {
    alert,
    category: c.category,
    matched_by: c.matchedBy,
    severity: c.severity,
    severity_reason: c.severityReason,
    fingerprint,
    action: decision.action,
    reason: decision.reason,
    glpi: c.glpi,
    jobs: decision.jobs.map((j) => j.type),
    ...(create?.type === 'create_ticket' ? { ticket: { title: create.ticket.name, body: create.ticket.content, marker: create.ticket.marker } } : {}),
    note: 'evaluated as if no incident were open for this fingerprint',
  };
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  return 0;
}
