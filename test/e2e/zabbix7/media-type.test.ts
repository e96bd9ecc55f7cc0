import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ROOT } from '../../helpers/fixtures.js';
import { ZabbixAdmin } from '../zabbix-api.js';

/**
 * The shipped config/zabbix-media-type-7.0.yaml imported through the API (configuration.import) into a
 * real Zabbix 7.0 (started by test/e2e/zabbix7/up.sh, which prints ZABBIX7_E2E_URL), then read back:
 * every parameter in the file's order, the script, the retries and the message templates.
 * Selected by jest.config.js only when ZABBIX7_E2E_URL is set.
 */
const API = process.env.ZABBIX7_E2E_URL ?? '';
if (!API) throw new Error('ZABBIX7_E2E_URL is not set (bash test/e2e/zabbix7/up.sh starts a Zabbix 7.0 and prints it)');

interface MediaTypeFile {
  zabbix_export: {
    version: string;
    media_types: {
      name: string;
      parameters: { name: string; value: string }[];
      script: string;
      attempts: string;
      attempt_interval: string;
      timeout: string;
      message_templates: { event_source: string; operation_mode: string; subject: string; message: string }[];
    }[];
  };
}

interface MediaType {
  mediatypeid: string;
  type: string;
  parameters: { name: string; value: string; sortorder?: string }[];
  script: string;
  maxattempts: string;
  attempt_interval: string;
  timeout: string;
  message_templates: { eventsource: string; recovery: string; subject: string; message: string }[];
}

describe('the 7.0 media type on a real Zabbix 7.0', () => {
  const zbx = new ZabbixAdmin(API);
  // Under a name of its own, so that the end-to-end run's 'GLPI bridge' (pointed at its bridge) is left alone.
  const NAME = 'GLPI bridge (import check)';
  const source = readFileSync(join(ROOT, 'config', 'zabbix-media-type-7.0.yaml'), 'utf8')
    .replace('<BRIDGE WEBHOOK TOKEN>', 'e2e-token')
    .replace("name: 'GLPI bridge'", `name: '${NAME}'`);
  const file = parse(source) as MediaTypeFile;
  const shipped = file.zabbix_export.media_types[0]!;

  it('imports through configuration.import (created, then updated in place) and reads back as written', async () => {
    const version = await zbx.call<string>('apiinfo.version', []);
    expect(version).toMatch(/^7\.0\./);
    await zbx.login();
    expect(shipped.name).toBe(NAME);
    const before = await zbx.call<{ mediatypeid: string }[]>('mediatype.get', { filter: { name: NAME }, output: ['mediatypeid'] });
    if (before.length > 0) await zbx.call('mediatype.delete', before.map((m) => m.mediatypeid));
    const rules = { mediaTypes: { createMissing: true, updateExisting: true } };
    expect(await zbx.call('configuration.import', { format: 'yaml', source, rules })).toBe(true);
    // A second import updates the same media type (an operator re-importing a newer file).
    expect(await zbx.call('configuration.import', { format: 'yaml', source, rules })).toBe(true);

    const found = await zbx.call<MediaType[]>('mediatype.get', { filter: { name: shipped.name }, output: 'extend', selectMessageTemplates: 'extend' });
    expect(found).toHaveLength(1);
    const mt = found[0]!;
    expect(mt.type).toBe('4'); // webhook
    const params = [...mt.parameters].sort((a, b) => Number(a.sortorder ?? 0) - Number(b.sortorder ?? 0));
    expect(params.map((p) => ({ name: p.name, value: p.value }))).toEqual(shipped.parameters);
    // Zabbix stores the script with CRLF line ends.
    expect(mt.script.replace(/\r\n/g, '\n').trim()).toBe(shipped.script.trim());
    expect({ maxattempts: mt.maxattempts, attempt_interval: mt.attempt_interval, timeout: mt.timeout }).toEqual({
      maxattempts: shipped.attempts,
      attempt_interval: shipped.attempt_interval,
      timeout: shipped.timeout,
    });
    // Export names → API values: TRIGGERS is event source 0; PROBLEM, RECOVERY, UPDATE are 0, 1, 2.
    const mode: Record<string, string> = { PROBLEM: '0', RECOVERY: '1', UPDATE: '2' };
    const templates = mt.message_templates.map((t) => ({ eventsource: t.eventsource, recovery: t.recovery, subject: t.subject, message: t.message }));
    expect(templates).toEqual(
      expect.arrayContaining(shipped.message_templates.map((t) => ({ eventsource: '0', recovery: mode[t.operation_mode], subject: t.subject, message: t.message }))),
    );
    process.stdout.write(`zabbix ${version}: config/zabbix-media-type-7.0.yaml imported as media type ${mt.mediatypeid} (${params.length} parameters)\n`);
    await zbx.call('mediatype.delete', [mt.mediatypeid]);
  }, 60_000);
});
