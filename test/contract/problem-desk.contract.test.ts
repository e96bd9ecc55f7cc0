/**
 * The problem desk (ProblemDesk in src/core/ports.ts, issue 14 item 1) of the legacy client on the fake
 * GLPI 10 and 11, pinned to what GLPI does (glpi-project/glpi @ 0042059c82075d3223c145cb3609a83019fc0cd2):
 *
 * - Problem is a CommonITILObject: searched by name (option 1) with its status (12) and writer (22,
 *   users_id_recipient as the login) like tickets (src/CommonITILObject.php getSearchOptionsMain(),
 *   getSearchOptionsActors()); a problem another user wrote with the marker in its name is not adopted.
 * - Problem_Ticket and Ticket_Ticket extend CommonITILObject_CommonITILObject (src/Problem_Ticket.php,
 *   src/CommonITILObject_CommonITILObject.php): prepareInputForAdd() refuses a link that exists ("no multiple
 *   links": the legacy API answers ERROR_GLPI_ADD) and a ticket linked to itself; `link` defaults to LINK_TO (1).
 * - A follow-up on a Problem is an ITILFollowup with itemtype Problem, listed under Problem/:id/ITILFollowup.
 *   The message of a link's add answer is not pinned (unverified): the client never reads it.
 *
 * The high-level API client (GlpiV2Client, glpi.api: v2) on the fake GLPI 11, where it applies: Problems
 * are served like Tickets under /Assistance/Problem (search with RSQL, create, timeline follow-ups, team
 * members: src/Glpi/Api/HL/Controller/ITILController.php @ 03cf5b9a1637a5cc7bc4f139d1fa8181f82c7693), so
 * finding by marker (a problem whose requester is not the bridge's user is not adopted) and follow-ups hold
 * the same promises. No 2.x route links ITIL objects (Problem_Ticket, Ticket_Ticket: docs/glpi-api-v2.md):
 * a link is a follow-up naming the ticket, read back as the link list, so the job runner's "read the links,
 * add the missing ones" stays idempotent; GLPI_PROBLEMS_UNSUPPORTED is logged once.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { GlpiClient } from '../../src/adapters/glpi/client.js';
import { GlpiV2Client } from '../../src/adapters/glpi/v2/client.js';
import { Secret } from '../../src/config/secret.js';
import { RemoteError } from '../../src/core/remote-error.js';
import { FakeGlpi, type GlpiVersion } from '../../src/glpi-fake/server.js';

const BRIDGE = { id: 12, name: 'zabbix-bridge', userToken: 'tok-bridge' };
const ALICE = { id: 13, name: 'alice', userToken: 'tok-alice' };
const logger = pino({ level: 'silent' });

let fake: FakeGlpi | undefined;
const clients: GlpiClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await fake?.close();
});

async function open(version: GlpiVersion): Promise<{ fake: FakeGlpi; as: (u: typeof BRIDGE) => GlpiClient }> {
  fake = new FakeGlpi({ version, userTokens: [], accounts: [BRIDGE, ALICE] });
  await fake.listen();
  const f = fake;
  return {
    fake: f,
    as: (u) => {
      const c = new GlpiClient({ url: f.url, appToken: new Secret(''), userToken: new Secret(u.userToken), username: '', password: new Secret(''), timeoutMs: 3000, logger });
      clients.push(c);
      return c;
    },
  };
}

const DRAFT = { name: '[zbx:p0123456789abcdef0123] Recurring: High CPU', content: '<p>recurring</p>', urgency: 4, impact: 3, entities_id: 0, itilcategories_id: 0 };
const TICKET = { name: 't', content: 'x', marker: '[zbx:00000000000000000000]', urgency: 3, impact: 3, type: 1, itilcategories_id: 0, entities_id: 0, requesttypes_id: 0, groups_id_assign: 0 };

describe.each(['10', '11'] as const)('problem desk (legacy API) on GLPI %s', (version) => {
  it('finds the problems it wrote by marker, with their status, lowest id first; never one another user wrote', async () => {
    const { fake: f, as } = await open(version);
    const bridge = as(BRIDGE);
    const alice = as(ALICE);
    expect(await bridge.findProblemsByMarker('[zbx:p0123456789abcdef0123]')).toEqual([]);
    const spoof = await alice.createProblem(DRAFT);
    const first = await bridge.createProblem(DRAFT);
    f.itil.problems.get(first)!.status = 5; // a technician solved it
    const second = await bridge.createProblem(DRAFT);
    expect(await bridge.findProblemsByMarker('[zbx:p0123456789abcdef0123]')).toEqual([{ id: first, status: 5 }, { id: second, status: 1 }]);
    expect(spoof).toBeLessThan(first);
    expect(f.itil.problems.get(second)!.users_id_recipient).toBe(BRIDGE.id);
  });

  it('links tickets to a problem once: a second link is refused (ERROR_GLPI_ADD), the list shows each ticket once', async () => {
    const { as } = await open(version);
    const bridge = as(BRIDGE);
    const t1 = await bridge.createTicket(TICKET);
    const t2 = await bridge.createTicket(TICKET);
    const p = await bridge.createProblem(DRAFT);
    await bridge.linkProblemTicket(p, t1);
    await bridge.linkProblemTicket(p, t2);
    const again = await bridge.linkProblemTicket(p, t1).then(() => undefined, (e: unknown) => e);
    expect(again).toBeInstanceOf(RemoteError);
    expect((again as RemoteError).code).toBe('ERROR_GLPI_ADD');
    expect((await bridge.problemTickets(p)).sort()).toEqual([t1, t2]);
  });

  it('adds follow-ups to a problem and lists them; links two tickets "linked to", seen from both, never a ticket to itself', async () => {
    const { fake: f, as } = await open(version);
    const bridge = as(BRIDGE);
    const p = await bridge.createProblem(DRAFT);
    await bridge.addProblemFollowup(p, 'ticket #4 <small>[zbx-job:9]</small>');
    expect((await bridge.problemFollowupContents(p)).join()).toContain('[zbx-job:9]');
    expect(f.followups.filter((x) => x.itemtype === 'Problem' && x.items_id === p)).toHaveLength(1);
    const cause = await bridge.createTicket(TICKET);
    const symptom = await bridge.createTicket(TICKET);
    await bridge.linkTickets(symptom, cause);
    expect(await bridge.linkedTickets(symptom)).toEqual([cause]);
    expect(await bridge.linkedTickets(cause)).toEqual([symptom]);
    expect(f.itil.ticketTickets[0]!.link).toBe(1);
    const self = await bridge.linkTickets(cause, cause).then(() => undefined, (e: unknown) => e);
    expect((self as RemoteError).code).toBe('ERROR_GLPI_ADD');
    const twice = await bridge.linkTickets(cause, symptom).then(() => undefined, (e: unknown) => e);
    expect((twice as RemoteError).code).toBe('ERROR_GLPI_ADD');
  });

  it('removes a link between two tickets from either side (a relation is purged, no trash); none left: false', async () => {
    const { fake: f, as } = await open(version);
    const bridge = as(BRIDGE);
    const cause = await bridge.createTicket(TICKET);
    const symptom = await bridge.createTicket(TICKET);
    const other = await bridge.createTicket(TICKET);
    await bridge.linkTickets(symptom, cause);
    await bridge.linkTickets(symptom, other);
    expect(await bridge.unlinkTickets(cause, symptom)).toBe(true);
    expect(await bridge.linkedTickets(symptom)).toEqual([other]);
    expect(await bridge.linkedTickets(cause)).toEqual([]);
    expect(f.itil.ticketTickets).toHaveLength(1);
    expect(await bridge.unlinkTickets(symptom, cause)).toBe(false);
    // Linked again later (ranked as a symptom once more): GLPI takes the link as new.
    await bridge.linkTickets(symptom, cause);
    expect((await bridge.linkedTickets(symptom)).sort()).toEqual([cause, other].sort());
  });

  it('reads back the tickets it wrote, modified after a date (GLPI\'s clock), and the public follow-ups others wrote on one', async () => {
    const { fake: f, as } = await open(version);
    const bridge = as(BRIDGE);
    const alice = as(ALICE);
    const mine = await bridge.createTicket(TICKET);
    await alice.createTicket(TICKET); // not the bridge's: never read back
    const all = await bridge.ticketsModifiedSince(undefined);
    expect(all.map((t) => [t.id, t.status])).toEqual([[mine, 1]]);
    expect(all[0]!.dateMod).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
    expect(await bridge.ticketsModifiedSince(all[0]!.dateMod)).toEqual([]);
    expect((await bridge.ticketsModifiedSince('2000-01-01 00:00:00')).map((t) => t.id)).toEqual([mine]);
    await bridge.addFollowup(mine, 'the bridge speaking', { isPrivate: false });
    f.addTechnicianFollowup(mine, ALICE.id, '<p>Rebooted &amp; watching</p>');
    f.addTechnicianFollowup(mine, ALICE.id, '<p>private</p>', true);
    const theirs = await bridge.othersPublicFollowups(mine);
    expect(theirs.map((x) => x.content)).toEqual(['<p>Rebooted &amp; watching</p>']);
  });
});

describe('problem desk (high-level API, GlpiV2Client) on GLPI 11', () => {
  const BRIDGE2 = { ...BRIDGE, password: 'bridge-pass' };
  const ALICE2 = { ...ALICE, password: 'alice-pass' };
  const v2: GlpiV2Client[] = [];
  afterEach(async () => {
    for (const c of v2.splice(0)) await c.close();
  });

  async function open2(): Promise<{ fake: FakeGlpi; as: (u: typeof BRIDGE2) => GlpiV2Client; logs: Record<string, unknown>[] }> {
    fake = new FakeGlpi({ version: '11', userTokens: [], accounts: [BRIDGE2, ALICE2] });
    await fake.listen();
    const f = fake;
    const logs: Record<string, unknown>[] = [];
    const capture = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
    return {
      fake: f,
      logs,
      as: (u) => {
        const c = new GlpiV2Client({ url: f.url.replace(/\/apirest\.php$/, ''), clientId: new Secret('bridge-client'), clientSecret: new Secret('bridge-secret'), username: u.name, password: new Secret(u.password), timeoutMs: 3000, logger: capture });
        v2.push(c);
        return c;
      },
    };
  }

  it('finds the problems it created by marker, with their status, lowest id first; never one another user created', async () => {
    const { fake: f, as } = await open2();
    const bridge = as(BRIDGE2);
    const alice = as(ALICE2);
    expect(await bridge.findProblemsByMarker('[zbx:p0123456789abcdef0123]')).toEqual([]);
    const spoof = await alice.createProblem(DRAFT);
    const first = await bridge.createProblem(DRAFT);
    f.itil.problems.get(first)!.status = 5; // a technician solved it
    const second = await bridge.createProblem(DRAFT);
    await bridge.createProblem({ ...DRAFT, name: 'Recurring: High CPU without the marker' });
    expect(await bridge.findProblemsByMarker('[zbx:p0123456789abcdef0123]')).toEqual([{ id: first, status: 5 }, { id: second, status: 1 }]);
    expect(spoof).toBeLessThan(first);
    // The bridge's user is the problem's requester (what the marker search checks), once.
    expect(f.itil.problems.get(second)).toMatchObject({ users_id_recipient: BRIDGE.id, name: DRAFT.name, content: DRAFT.content, urgency: 4, impact: 3 });
    expect(f.itil.problems.get(second)!.users?.requester ?? []).toEqual([]);
  });

  it('adds follow-ups to a problem and lists them as written', async () => {
    const { fake: f, as } = await open2();
    const bridge = as(BRIDGE2);
    const p = await bridge.createProblem(DRAFT);
    await bridge.addProblemFollowup(p, 'ticket #4 & more <small>[zbx-job:9]</small>');
    expect(await bridge.problemFollowupContents(p)).toEqual(['ticket #4 & more <small>[zbx-job:9]</small>']);
    expect(f.followups.filter((x) => x.itemtype === 'Problem' && x.items_id === p)).toHaveLength(1);
  });

  it('no link route: a link is a follow-up naming the ticket (on the problem; private on a symptom\'s ticket), read back as the link list; said once', async () => {
    const { fake: f, as, logs } = await open2();
    const bridge = as(BRIDGE2);
    const t1 = await bridge.createTicket(TICKET);
    const t2 = await bridge.createTicket({ ...TICKET, marker: '[zbx:00000000000000000001]' });
    const p = await bridge.createProblem(DRAFT);
    expect(await bridge.problemTickets(p)).toEqual([]);
    await bridge.linkProblemTicket(p, t1);
    await bridge.linkProblemTicket(p, t2);
    expect((await bridge.problemTickets(p)).sort()).toEqual([t1, t2]);
    const notes = f.followups.filter((x) => x.itemtype === 'Problem' && x.items_id === p);
    expect(notes.map((n) => n.content).join()).toContain(`/front/ticket.form.php?id=${t1}`);
    expect(f.itil.problemTickets).toHaveLength(0);

    await bridge.linkTickets(t2, t1);
    expect(await bridge.linkedTickets(t2)).toEqual([t1]);
    const onSymptom = f.followupsOf(t2);
    expect(onSymptom).toHaveLength(1);
    expect(onSymptom[0]!.is_private).toBe(1);
    expect(f.itil.ticketTickets).toHaveLength(0);
    // Unlinked (a symptom ranked as a cause again): a second private note; the link list forgets it, a relink names it again.
    expect(await bridge.unlinkTickets(t2, t1)).toBe(true);
    expect(await bridge.linkedTickets(t2)).toEqual([]);
    expect(await bridge.unlinkTickets(t2, t1)).toBe(false);
    await bridge.linkTickets(t2, t1);
    expect(await bridge.linkedTickets(t2)).toEqual([t1]);
    expect(f.followupsOf(t2).map((x) => x.is_private)).toEqual([1, 1, 1]);
    expect(logs.filter((l) => l.code === 'GLPI_PROBLEMS_UNSUPPORTED')).toHaveLength(1);
  });

  it('reads back the tickets it wrote, modified after a date (GLPI\'s clock), and the public follow-ups others wrote on one', async () => {
    const { fake: f, as } = await open2();
    const bridge = as(BRIDGE2);
    const alice = as(ALICE2);
    const mine = await bridge.createTicket(TICKET);
    await alice.createTicket({ ...TICKET, marker: '[zbx:00000000000000000002]' }); // carries a marker, but not the bridge's: never read back
    const all = await bridge.ticketsModifiedSince(undefined);
    expect(all.map((t) => [t.id, t.status])).toEqual([[mine, 1]]);
    expect(all[0]!.dateMod).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
    expect(await bridge.ticketsModifiedSince(all[0]!.dateMod)).toEqual([]);
    expect((await bridge.ticketsModifiedSince('2000-01-01 00:00:00')).map((t) => t.id)).toEqual([mine]);
    await bridge.addFollowup(mine, 'the bridge speaking', { isPrivate: false });
    f.addTechnicianFollowup(mine, ALICE.id, '<p>Rebooted &amp; watching</p>');
    f.addTechnicianFollowup(mine, ALICE.id, '<p>private</p>', true);
    const theirs = await bridge.othersPublicFollowups(mine);
    expect(theirs.map((x) => x.content)).toEqual(['<p>Rebooted &amp; watching</p>']);
  });
});
