import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { rulesSchema } from '../../src/config/schema.js';
import type { Alert, AlertKind } from '../../src/core/alert.js';
import type { Rules } from '../../src/core/rules.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export type Body = Record<string, string>;

type Recorded = 'problem' | 'update-acknowledged' | 'recovery';

/**
 * A real webhook body: recorded from Zabbix 6.0 (see shared/reference/zabbix.md), or, as `7.0/<name>`, from the
 * real Zabbix 7.0.22 of the end-to-end test with config/zabbix-media-type-7.0.yaml (test/fixtures/zabbix/7.0/README.md).
 */
export function zabbixBody(name: Recorded | `7.0/${Recorded}`, overrides: Partial<Body> = {}): Body {
  const body = JSON.parse(readFileSync(join(ROOT, 'test', 'fixtures', 'zabbix', `${name}.json`), 'utf8')) as Body;
  return { ...body, ...overrides } as Body;
}

/** config/rules.example.yaml, as text. */
export function exampleRulesYaml(): string {
  return readFileSync(join(ROOT, 'config', 'rules.example.yaml'), 'utf8');
}

/**
 * The example rules with an operator's typo: the CPU category's GLPI category is 111, which GLPI does not have
 * (for 11), so GLPI refuses CPU tickets (400) and they become dead letters.
 */
export function exampleRulesYamlUnknownCpuCategory(): string {
  return exampleRulesYaml().replace('glpi: { itilcategories_id: 11,', 'glpi: { itilcategories_id: 111,');
}

export function exampleRules(): Rules {
  return rulesSchema.parse(parse(exampleRulesYaml()));
}

export function tagsJson(tags: Record<string, string>): string {
  return JSON.stringify(Object.entries(tags).map(([tag, value]) => ({ tag, value })));
}

/** A normalised alert of host srv, trigger 100 ("High CPU", tag component:cpu), event 10 unless overridden. */
export function cpuAlert(kind: AlertKind, over: Partial<Alert> = {}): Alert {
  return {
    source: 'webhook',
    eventSource: '0',
    eventId: '10',
    kind,
    severity: 'high',
    eventName: 'High CPU',
    host: 'srv',
    hostName: 'srv',
    triggerId: '100',
    triggerName: 'High CPU',
    tags: [{ tag: 'component', value: 'cpu' }],
    ...over,
  };
}
