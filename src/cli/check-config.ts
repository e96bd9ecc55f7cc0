import { pino } from 'pino';
import type { Config } from '../config/schema.js';
import { namesInRules, type GlpiFieldsPatch } from '../core/rules.js';
import { RemoteError } from '../core/remote-error.js';
import { glpiClient, zabbixApi } from '../composition/clients.js';
import { loadOrReport } from './common.js';
import { AUTHORIZATION_FIX } from '../adapters/glpi/outcome.js';
import { GlpiClient } from '../adapters/glpi/client.js';

interface Reference {
  readonly itemtype: 'ITILCategory' | 'Group' | 'Entity' | 'RequestType';
  readonly field: keyof GlpiFieldsPatch;
  readonly id: number;
  readonly usedBy: string[];
}

const FIELDS = [
  ['itilcategories_id', 'ITILCategory'],
  ['groups_id_assign', 'Group'],
  ['entities_id', 'Entity'],
  ['requesttypes_id', 'RequestType'],
] as const;

/** Every GLPI id the rules refer to, with the places that use it. */
export function referencedIds(config: Config): Reference[] {
  const refs = new Map<string, Reference>();
  const add = (patch: GlpiFieldsPatch, where: string) => {
    for (const [field, itemtype] of FIELDS) {
      const id = patch[field];
      if (typeof id !== 'number' || (id === 0 && itemtype !== 'Entity')) continue;
      const key = `${itemtype}:${id}`;
      const ref = refs.get(key) ?? { itemtype, field, id, usedBy: [] };
      ref.usedBy.push(where);
      refs.set(key, ref);
    }
  };
  const r = config.rules;
  add(r.defaults, 'defaults');
  for (const [sev, p] of Object.entries(r.severities)) add(p ?? {}, `severities.${sev}`);
  for (const c of [...r.categories, r.fallback]) {
    add(c.glpi, `category ${c.name}`);
    for (const [sev, p] of Object.entries(c.severities)) add(p ?? {}, `category ${c.name}, severity ${sev}`);
  }
  return [...refs.values()];
}

/**
 * Warnings about a configuration that is valid but probably not what the
 * operator wants: polling with no host group scope tickets problems that the
 * Zabbix action would never have sent.
 */
export function configWarnings(config: Config): string[] {
  const poll = config.zabbix.poll;
  if (config.zabbix.url === '' || !poll.enabled || poll.host_groups.length > 0) return [];
  const fix = 'set ZABBIX_POLL_HOST_GROUPS (zabbix.poll.host_groups) to the host groups your Zabbix action covers';
  if (poll.baseline === 'import') {
    return [
      `zabbix.poll: polling every host the API user can see with baseline: import — the first sweep opens a GLPI ticket for every problem open in Zabbix now (stock ones such as "Zabbix agent is not available" included); ${fix}, or use baseline: skip`,
    ];
  }
  return [
    `zabbix.poll: no host_groups scope — every new problem on any host the API user can see becomes a ticket, also those your Zabbix action does not send (problems already open at the first start are skipped: baseline: skip); ${fix}`,
  ];
}

async function online(config: Config, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<string[]> {
  const problems: string[] = [];
  const glpi = glpiClient(config, pino({ level: 'silent' }));
  try {
    await glpi.open();
    const major = await glpi.glpiMajor();
    const how = config.glpi.api === 'v2' ? 'high-level API (v2): OAuth2 token obtained' : 'legacy API (v1): session opened';
    out.write(`  GLPI: ${how} at ${config.glpi.url}${major !== undefined ? ` (GLPI ${major}: text ${major >= 11 ? 'as stored' : 'HTML-encoded, decoded by the bridge'})` : ''}\n`);
    if (glpi instanceof GlpiClient && glpi.userTokenInQuery) {
      err.write(
        `warning: GLPI: the web server in front of GLPI strips the Authorization header; logged in with user_token in the query string (glpi.user_token_in_query: true), so the token appears in the web server's access log. Fix the web server: ${AUTHORIZATION_FIX}\n`,
      );
    }
    for (const ref of referencedIds(config)) {
      const status = await glpi.itemStatus(ref.itemtype, ref.id);
      if (status !== 'exists') {
        problems.push(`GLPI: ${ref.field} ${ref.id} (${ref.usedBy.join('; ')}): ${ref.itemtype} ${ref.id} ${status === 'missing' ? 'does not exist' : 'is not readable by the bridge\'s GLPI user'}`);
      }
    }
    if (problems.length === 0) out.write(`  GLPI: every id the rules use exists (${referencedIds(config).length} checked)\n`);
    // Names the rules give instead of ids: each must match exactly one item (unknown or ambiguous: listed with its YAML path).
    const uses = namesInRules(config.rules);
    const where = config.sources.rules !== config.sources.config ? `${config.sources.rules}: ` : 'rules.';
    let named = 0;
    for (const use of uses) {
      let ids: number[];
      try {
        ids = await glpi.findByName(use.itemtype, use.name);
      } catch (e) {
        if (e instanceof RemoteError && e.code === 'GLPI_LOOKUP_UNSUPPORTED') {
          problems.push(`GLPI: ${where}${use.path} "${use.name}": ${e.message}`);
          continue;
        }
        throw e;
      }
      const unique = [...new Set(ids)];
      if (unique.length === 1) named++;
      else if (unique.length === 0) problems.push(`GLPI: ${where}${use.path} "${use.name}": unknown: no ${use.itemtype} has this ${use.itemtype === 'User' ? 'login or name' : 'name or complete name'} (or the bridge's GLPI user cannot see it)`);
      else problems.push(`GLPI: ${where}${use.path} "${use.name}": ambiguous: ${unique.length} ${use.itemtype} items have this name (ids ${unique.join(', ')}); give the complete name ("Parent > Child") or the id`);
    }
    if (uses.length > 0 && named === uses.length) out.write(`  GLPI: every name the rules use resolves to one item (${named} checked)\n`);
  } catch (e) {
    problems.push(`GLPI: ${(e as Error).message}`);
  } finally {
    await glpi.close();
  }
  const zabbix = zabbixApi(config, pino({ level: 'silent' }));
  if (zabbix) {
    try {
      const version = await zabbix.version();
      await zabbix.problems({ severities: [5] });
      if (config.zabbix.poll.host_groups.length > 0) await zabbix.groupIds(config.zabbix.poll.host_groups);
      out.write(`  Zabbix: API ${version} answers with the token\n`);
    } catch (e) {
      problems.push(`Zabbix: ${(e as Error).message}`);
    }
  }
  return problems;
}

/** `check-config --config FILE [--online]`: exit 0 when valid, 1 with every problem and its YAML path. */
export async function checkConfigCommand(file: string | undefined, checkOnline = false, out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  const config = loadOrReport(file, err);
  if (!config) return 1;
  const r = config.rules;
  out.write(
    `${file}: OK\n` +
      `  rules from ${config.sources.rules}: ${r.categories.length} categories (${r.categories.map((c) => c.name).join(', ')}), fallback ${r.fallback.name}\n` +
      `  GLPI ${config.glpi.url}, store ${config.data_dir}/${config.store.file}, listen ${config.listen}${config.webhook.path}\n`,
  );
  const poll = config.zabbix.poll;
  if (config.zabbix.url !== '' && poll.enabled) {
    out.write(
      `  Zabbix polling ${poll.schedule}: ${poll.host_groups.length > 0 ? `host groups ${poll.host_groups.join(', ')}` : 'every host group'}, severity ${poll.min_severity} and above, first sweep: baseline ${poll.baseline}\n`,
    );
  }
  // Valid all the same: exit 0.
  for (const w of configWarnings(config)) err.write(`warning: ${file}: ${w}\n`);
  if (!checkOnline) return 0;
  const problems = await online(config, out, err);
  if (problems.length === 0) return 0;
  err.write(`CONFIG_INVALID: ${file}: ${problems.length} problem(s) found online:\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
  return 1;
}
