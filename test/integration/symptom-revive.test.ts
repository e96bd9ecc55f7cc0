import { afterEach, describe, expect, it } from '@jest/globals';
import { writeFileSync } from 'node:fs';
import { FakeGlpi } from '../../src/glpi-fake/server.js';
import { Daemon, runCli, waitFor } from '../helpers/daemon.js';
import { tagsJson, zabbixBody } from '../helpers/fixtures.js';

/**
 * Issue 14 item 1 through the built daemon and the CLI: a cause whose ticket GLPI refuses (the rules put it in an
 * entity the API user cannot create in: GLPI's can(-1, CREATE) fails, 400 ERROR_GLPI_ADD, a dead letter), and its
 * symptom, whose own ticket is made. The operator fixes the rule and runs `queue retry --all`, as the dead-letter
 * alert says: the cause's ticket is made, and the symptom's ticket must end linked to it (its link job went to
 * the dead letters with the cause's create, and comes back with it). Unit level: test/services/symptom-revive.unit.test.ts.
 */
let glpi: FakeGlpi | undefined;
let daemon: Daemon | undefined;

afterEach(async () => {
  await daemon?.stop();
  await glpi?.close();
  daemon = undefined;
  glpi = undefined;
});

const rules = (networkGlpi: string): string =>
  `categories:\n  - name: network\n    match:\n      tags: [{ tag: component, value: network }]\n${networkGlpi}  - name: cpu\n    match:\n      tags: [{ tag: component, value: cpu }]\n`;

describe('a symptom whose cause\'s create is a dead letter', () => {
  it('is linked to its cause\'s ticket once the operator fixed the rule and ran queue retry --all', async () => {
    // Only the root entity exists (a fresh GLPI): entity 7 is refused.
    glpi = new FakeGlpi({ userTokens: ['user-token'] });
    await glpi.listen();
    daemon = new Daemon({ glpiUrl: glpi.url, rulesYaml: rules('    glpi: { entities_id: 7 }\n') });
    await daemon.start();

    const cause = await daemon.post(zabbixBody('problem', { host_host: 'core-sw', host_name: 'core-sw', trigger_id: '100', event_id: '901', event_tags: tagsJson({ component: 'network' }) }));
    expect(cause.status).toBe(202);
    await waitFor(() => daemon!.logs.some((l) => l.msg === 'job moved to dead letters' && l.job_type === 'create_ticket'), 'the cause\'s create a dead letter');
    const symptom = await daemon.post(zabbixBody('problem', { host_host: 'web-01', host_name: 'web-01', trigger_id: '200', event_id: '902', event_cause_id: '901', event_tags: tagsJson({ component: 'cpu' }) }));
    expect(symptom.status).toBe(202);
    await waitFor(() => daemon!.logs.some((l) => l.msg === 'job moved to dead letters' && l.job_type === 'link_ticket'), 'the symptom\'s link job a dead letter with it');
    expect(glpi.tickets.size).toBe(1);
    const listed = await runCli(['queue', '--config', daemon.configFile]);
    expect(listed.stdout).toMatch(/dead letters: 2/);
    expect(listed.stdout).toMatch(/GLPI_TICKET_MISSING: the ticket of its cause .* \(event 901\) was never created/);

    // The operator fixes the rule (GLPI is not changed), then retries every dead letter.
    writeFileSync(daemon.rulesFile, rules(''));
    const retried = await runCli(['queue', 'retry', '--config', daemon.configFile, '--all']);
    expect(retried.stdout).toContain('2 dead letter(s) queued again');
    await waitFor(() => glpi!.itil.ticketTickets.length === 1, 'the symptom\'s ticket linked to the cause\'s', 20_000);
    const ticketOf = (host: string): number => {
      const t = [...glpi!.tickets.values()].filter((x) => x.name.includes(host) || x.content.includes(host));
      expect(t).toHaveLength(1);
      return t[0]!.id;
    };
    expect(glpi.itil.linkedTickets(ticketOf('web-01'))).toEqual([{ id: ticketOf('core-sw'), link: 1 }]);
    expect((await runCli(['queue', '--config', daemon.configFile])).stdout).toMatch(/dead letters: 0/);
  });
});
