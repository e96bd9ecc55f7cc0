import { readFileSync } from 'node:fs';
import { normalise } from '../core/normalise.js';
import { parseWebhookBody } from '../adapters/zabbix/webhook-body.js';
import { explainAlert, explainMarkerKey } from '../composition/explain.js';
import { loadStoreBackend } from '../composition/store.js';
import { loadOrReport, UsageError } from './common.js';
import { pino } from 'pino';
import type { Config } from '../config/schema.js';
import type { TicketDraft } from '../core/decide.js';
import { NAMED_FIELDS, type NamedField } from '../core/rules.js';
import { glpiClient } from '../composition/clients.js';
import { describeResolution, nameSettings, NameResolver } from '../composition/from-config.js';

/**
 * The names a ticket would carry and, when GLPI answers, their ids and the
 * host's asset (read-only lookups; GLPI unreachable: said, names shown alone).
 */
async function resolveOnline(config: Config, draft: TicketDraft): Promise<Record<string, unknown>> {
  const names = draft.names;
  const wanted = (names ? Object.keys(names).length : 0) > 0 || (config.assets.enabled && draft.host !== undefined);
  if (!wanted) return {};
  const glpi = glpiClient(config, pino({ level: 'silent' }));
  const resolver = new NameResolver(glpi, { now: () => Date.now() }, pino({ level: 'silent' }), undefined, () => nameSettings(config));
  const out: Record<string, unknown> = {};
  try {
    const lines: Record<string, string> = {};
    for (const field of Object.keys(NAMED_FIELDS) as NamedField[]) {
      const name = names?.[field];
      if (name === undefined) continue;
      const r = await resolver.resolve(NAMED_FIELDS[field].itemtype, name);
      lines[NAMED_FIELDS[field].key] = `"${name}" → ${r.kind === 'found' ? `id ${r.id}` : describeResolution(r, NAMED_FIELDS[field].itemtype)}`;
    }
    for (const [role, list] of Object.entries(names?.users ?? {})) {
      for (const name of list ?? []) {
        const r = await resolver.resolve('User', name);
        lines[`users.${role}`] = `${lines[`users.${role}`] ? `${lines[`users.${role}`]}; ` : ''}"${name}" → ${r.kind === 'found' ? `id ${r.id}` : describeResolution(r, 'User')}`;
      }
    }
    if (Object.keys(lines).length > 0) out.names = lines;
    if (config.assets.enabled && draft.host) {
      const asset = await resolver.findAsset(draft.host);
      out.asset = asset ? `${asset.itemtype} ${asset.id}` : `none found (by ${config.assets.by.join(', then ')} in ${config.assets.itemtypes.join(', ')}): the ticket goes without one`;
    }
  } catch (e) {
    out.glpi = `not reachable (${(e as Error).message}): names shown unresolved`;
    if (names) out.names = names;
  } finally {
    await glpi.close();
  }
  return out;
}

/** `explain --config FILE [--online] [ALERT.json | -]`: what would this webhook body become? No side effects (GLPI is only read, for the names' ids and the asset). */
export async function explainCommand(file: string | undefined, input: string | undefined, online = false): Promise<number> {
  const config = loadOrReport(file);
  if (!config) return 1;
  await loadStoreBackend(config);
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
  // On PostgreSQL the marker is the one the bridges render: with the key stored in the database.
  const marker = explainMarkerKey(config);
  const { out, draft } = explainAlert(config, alert, Date.now(), marker.key);
  if (marker.note !== undefined && draft) out.marker_key = marker.note;
  if (online && draft) out.ticket = { ...(out.ticket as Record<string, unknown>), names: undefined, ...(await resolveOnline(config, draft)) };
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  return 0;
}
