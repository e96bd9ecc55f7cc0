import { describe, expect, it } from '@jest/globals';
import { decideFollowupsMirrored, decideTicketResolvedInGlpi, type Incident } from '../../src/core/decide.js';
import { plainText, secondBefore } from '../../src/services/glpi-watcher.js';

/** Issue 14 item 5, the pure part: what a technician's solve or close in GLPI says to Zabbix, once. */
const incident: Incident = { fingerprint: 'fp', cycle: 2, status: 'open', marker: '[zbx:1]', category: 'cpu', severity: 'high', urgency: 4, impact: 3, openCount: 2, occurrences: 2, openedAt: 0 };
const policy = { writeBackPrefix: '[glpi-bridge]' };

describe('a ticket solved or closed in GLPI while its problems are open', () => {
  it('one message on the open events, remembered so it is never said twice', () => {
    const d = decideTicketResolvedInGlpi(incident, 2, 7, 5, ['11', '12'], policy, false)!;
    expect(d.job).toEqual({ type: 'zabbix_ack', eventIds: ['11', '12'], message: '[glpi-bridge] GLPI ticket #7 was solved in GLPI while the problem is still open in Zabbix.', acknowledge: false });
    expect(d.incident.announced).toEqual(['glpi:solved:7']);
    expect(decideTicketResolvedInGlpi(d.incident, 2, 7, 5, ['11'], policy, false)).toBeUndefined();
    // Closed after solved: said once more (a different change).
    expect(decideTicketResolvedInGlpi(d.incident, 2, 7, 6, ['11'], policy, true)?.job).toMatchObject({ close: true, message: expect.stringMatching(/was closed in GLPI.*Closing the problem\.$/) });
  });

  it('nothing for another status, an ended or other cycle, or no open event', () => {
    expect(decideTicketResolvedInGlpi(incident, 2, 7, 4, ['11'], policy, false)).toBeUndefined();
    expect(decideTicketResolvedInGlpi(incident, 1, 7, 5, ['11'], policy, false)).toBeUndefined();
    expect(decideTicketResolvedInGlpi({ ...incident, status: 'solved' }, 2, 7, 5, ['11'], policy, false)).toBeUndefined();
    expect(decideTicketResolvedInGlpi(incident, 2, 7, 5, [], policy, false)).toBeUndefined();
  });

  it('the cursor steps back one second on GLPI\'s wall clock (its morethan is strict)', () => {
    expect(secondBefore('2026-12-02 00:00:00')).toBe('2026-12-01 23:59:59');
    expect(secondBefore('not a date')).toBe('not a date');
  });
});

describe('technicians\' public follow-ups mirrored to Zabbix (mirror_followups)', () => {
  it('each new follow-up once, in order; the highest id mirrored is remembered', () => {
    const d = decideFollowupsMirrored(incident, 2, 7, [{ id: 3, text: 'Rebooted the switch' }, { id: 5, text: 'Vendor called' }], ['11'], policy)!;
    expect(d.jobs.map((j) => (j.type === 'zabbix_ack' ? j.message : ''))).toEqual(['[glpi-bridge] GLPI ticket #7, follow-up: Rebooted the switch', '[glpi-bridge] GLPI ticket #7, follow-up: Vendor called']);
    expect(d.incident.announced).toEqual(['glpi:fup:7:5']);
    expect(decideFollowupsMirrored(d.incident, 2, 7, [{ id: 3, text: 'Rebooted the switch' }, { id: 5, text: 'Vendor called' }], ['11'], policy)).toBeUndefined();
    const next = decideFollowupsMirrored(d.incident, 2, 7, [{ id: 5, text: 'Vendor called' }, { id: 9, text: 'Fixed' }], ['11'], policy)!;
    expect(next.jobs).toHaveLength(1);
    expect(next.incident.announced).toEqual(['glpi:fup:7:9']);
  });

  it('never a text carrying the bridge\'s job tag or write-back prefix (no loop); nothing for an ended cycle', () => {
    const d = decideFollowupsMirrored(incident, 2, 7, [{ id: 4, text: 'Problem occurred again [zbx-job:12]' }, { id: 6, text: '[glpi-bridge] GLPI ticket #7 …' }], ['11'], policy)!;
    expect(d.jobs).toEqual([]);
    expect(d.incident.announced).toEqual(['glpi:fup:7:6']);
    expect(decideFollowupsMirrored({ ...incident, status: 'solved' }, 2, 7, [{ id: 4, text: 'x' }], ['11'], policy)).toBeUndefined();
  });

  it('HTML becomes plain text', () => {
    expect(plainText('<p>Rebooted&nbsp;the <b>switch</b></p><p>&lt;ok&gt; &amp; done</p>')).toBe('Rebooted the switch <ok> & done');
  });
});
