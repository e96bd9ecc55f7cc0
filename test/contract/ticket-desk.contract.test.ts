/**
 * The ticket desk the dispatcher relies on (TicketDesk in src/core/ports.ts, plus the login side of
 * GlpiConnection), asserted with the same tests against every adapter: the legacy client (GlpiClient) on
 * the fake GLPI 10 and 11, and the high-level API client (GlpiV2Client) on the fake GLPI 11. The
 * expectations live once, here, so the adapters cannot drift apart: what differs between them is only how
 * each one is built and logs in (the DESKS table).
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { GlpiClient } from '../../src/adapters/glpi/client.js';
import type { GlpiConnection } from '../../src/adapters/glpi/connection.js';
import { GlpiV2Client } from '../../src/adapters/glpi/v2/client.js';
import { JobRunner, type Outcome, type RunState } from '../../src/services/job-runner.js';
import { RemoteError } from '../../src/core/remote-error.js';
import type { JobSpec } from '../../src/core/decide.js';
import type { Job } from '../../src/core/ports.js';
import { Secret } from '../../src/config/secret.js';
import type { TicketDraft } from '../../src/core/decide.js';
import { FakeGlpi, STATUS, type FakeGlpiOptions, type GlpiVersion } from '../../src/glpi-fake/server.js';
import { failure } from '../helpers/remote.js';

const BRIDGE = { id: 12, name: 'zabbix-bridge', userToken: 'tok-bridge', password: 'bridge-pass' };
const ALICE = { id: 13, name: 'alice', userToken: 'tok-alice', password: 'alice-pass' };
const CLIENT = { id: 'bridge-client', secret: 'bridge-secret' };

type User = typeof BRIDGE;

interface Opened {
  desk: GlpiConnection;
  fake: FakeGlpi;
}

interface DeskUnderTest {
  name: string;
  version: GlpiVersion;
  /** A client of this adapter on `fake`, logged in as `user` (its password or token replaced by `wrong` when given). */
  client(fake: FakeGlpi, user: User, o?: { pendingFollowups?: 'keep' | 'resume'; wrong?: boolean }): GlpiConnection;
  /** Logins (sessions or tokens) GLPI recorded so far. */
  logins(fake: FakeGlpi): number;
  /** What GLPI does to logins after a while: sessions garbage-collected, tokens past their hour. */
  expire(fake: FakeGlpi): void;
  /** Assets by name and IP, and the asset on create: the legacy API has them; v2 says GLPI_LOOKUP_UNSUPPORTED (docs/glpi-api-v2.md). Names and users on create: both. */
  lookups: boolean;
}

const logger = pino({ level: 'silent' });

const legacy = (version: GlpiVersion): DeskUnderTest => ({
  name: `legacy API (GlpiClient) on GLPI ${version}`,
  version,
  client: (fake, user, o = {}) =>
    new GlpiClient({
      url: fake.url,
      appToken: new Secret(''),
      userToken: new Secret(o.wrong ? 'wrong-token' : user.userToken),
      username: '',
      password: new Secret(''),
      timeoutMs: 3000,
      logger,
      ...(o.pendingFollowups ? { pendingFollowups: o.pendingFollowups } : {}),
    }),
  logins: (fake) => fake.sessionsOpened,
  expire: (fake) => fake.expireSessions(),
  lookups: true,
});

const highLevel: DeskUnderTest = {
  name: 'high-level API (GlpiV2Client) on GLPI 11',
  version: '11',
  client: (fake, user, o = {}) =>
    new GlpiV2Client({
      url: fake.url.replace(/\/apirest\.php$/, ''),
      clientId: new Secret(CLIENT.id),
      clientSecret: new Secret(CLIENT.secret),
      username: user.name,
      password: new Secret(o.wrong ? 'wrong-password' : user.password),
      timeoutMs: 3000,
      logger,
      ...(o.pendingFollowups ? { pendingFollowups: o.pendingFollowups } : {}),
    }),
  logins: (fake) => fake.v2.tokensIssued,
  expire: (fake) => fake.v2.expireTokens(),
  lookups: false,
};

const DESKS: DeskUnderTest[] = [legacy('10'), legacy('11'), highLevel];

/** A job as the dispatcher hands it to the runner (one incident, cycle 1). */
function job(id: number, spec: JobSpec): Job {
  return { id, fingerprint: 'fp', key: 'k', lane: 'glpi:k', cycle: 1, type: spec.type, spec, status: 'running', attempts: 1, nextAttemptAt: 0, createdAt: 0 };
}

/**
 * Run a job as the dispatcher would after a lost answer: the runner itself tries again at once when the
 * connection was a stale keep-alive one; otherwise the error must say the write may have landed, and the
 * next run (the dispatcher's retry) goes on from the same state.
 */
async function untilDone(runner: JobRunner, j: Job, state: RunState): Promise<Outcome> {
  try {
    return await runner.run(j, state);
  } catch (e) {
    expect(e).toBeInstanceOf(RemoteError);
    expect({ kind: (e as RemoteError).kind, mayHaveLanded: (e as RemoteError).mayHaveLanded, uncertain: state.uncertain }).toEqual({ kind: 'retryable', mayHaveLanded: true, uncertain: true });
    return runner.run(j, state);
  }
}

let seq = 0;
function draft(extra: Partial<TicketDraft> = {}): TicketDraft {
  const marker = `[zbx:${(++seq).toString(16).padStart(20, '0')}]`;
  return { name: `${marker} [cpu] High CPU on web1`, content: '<p>CPU at 97%</p>', marker, urgency: 4, impact: 3, type: 1, itilcategories_id: 0, entities_id: 0, requesttypes_id: 0, groups_id_assign: 0, ...extra };
}

describe.each(DESKS)('ticket desk contract — $name', (d) => {
  const open: Opened[] = [];
  const others: GlpiConnection[] = [];
  afterEach(async () => {
    for (const desk of others.splice(0)) await desk.close();
    for (const o of open.splice(0)) {
      await o.desk.close();
      await o.fake.close();
    }
  });

  /** A test whose failure prints every request the fake GLPI answered (its whole log). */
  const test = (name: string, fn: () => Promise<void>) =>
    it(name, async () => {
      try {
        await fn();
      } catch (e) {
        for (const o of open) process.stderr.write(`fake GLPI ${d.version} requests:\n${o.fake.requests.map((r) => `  ${r.method} ${r.path} → ${r.status}`).join('\n')}\n`);
        throw e;
      }
    });

  async function start(fakeOpt: FakeGlpiOptions = {}, o: { pendingFollowups?: 'keep' | 'resume'; wrong?: boolean } = {}): Promise<Opened> {
    const fake = new FakeGlpi({ version: d.version, userTokens: [], accounts: [BRIDGE, ALICE], oauthClients: [CLIENT], ...fakeOpt });
    await fake.listen(0);
    const desk = d.client(fake, BRIDGE, o);
    const opened = { desk, fake };
    open.push(opened);
    return opened;
  }

  test('creates a ticket and finds it again by its marker; an unknown marker finds nothing', async () => {
    const { desk, fake } = await start();
    const t = draft({ urgency: 5, impact: 4 });
    const id = await desk.createTicket(t);
    expect(fake.tickets.get(id)).toMatchObject({ urgency: 5, impact: 4, status: STATUS.INCOMING, users_id_recipient: BRIDGE.id });
    expect(await desk.findTicketByMarker(t.marker)).toBe(id);
    expect(await desk.findTicketByMarker(draft().marker)).toBeUndefined();
    expect(desk.ticketUrl(id)).toBe(`${fake.url.replace(/\/apirest\.php$/, '')}/front/ticket.form.php?id=${id}`);
  });

  test('never adopts a ticket another GLPI user created with the same marker', async () => {
    const { desk, fake } = await start();
    const t = draft();
    const other = d.client(fake, ALICE);
    others.push(other);
    const spoof = await other.createTicket(t);
    expect(fake.tickets.get(spoof)?.users_id_recipient).toBe(ALICE.id);
    expect(await desk.findTicketByMarker(t.marker)).toBeUndefined();
    const mine = await desk.createTicket(t);
    expect(await desk.findTicketByMarker(t.marker)).toBe(mine);
  });

  test('does not adopt a ticket a technician put in the trash', async () => {
    const { desk, fake } = await start();
    const t = draft();
    const id = await desk.createTicket(t);
    fake.tickets.get(id)!.is_deleted = 1;
    expect(await desk.findTicketByMarker(t.marker)).toBeUndefined();
  });

  test('assigns the group and stores category and request type', async () => {
    const { desk, fake } = await start({ groups: [3], categories: [5] });
    const id = await desk.createTicket(draft({ groups_id_assign: 3, itilcategories_id: 5, requesttypes_id: 2 }));
    expect(fake.tickets.get(id)).toMatchObject({ groups_id_assign: [3], status: STATUS.ASSIGNED, itilcategories_id: 5, requesttypes_id: 2 });
  });

  test('adds private and public follow-ups and reads their text back exactly as written (<, &, quotes, accents, emoji)', async () => {
    const { desk, fake } = await start();
    const id = await desk.createTicket(draft());
    const text = `a < b && c > d "quoted" 'single' &lt;not an entity&gt; é ü — 🚀 [zbx-job:7]`;
    const f1 = await desk.addFollowup(id, text, { isPrivate: true });
    const f2 = await desk.addFollowup(id, 'second', { isPrivate: false });
    expect(fake.followupsOf(id).map((f) => [f.id, f.is_private])).toEqual([[f1, 1], [f2, 0]]);
    expect(await desk.followupContents(id)).toEqual([text, 'second']);
  });

  test('keeps a Pending ticket pending after a follow-up (pending_followups: keep, the default)', async () => {
    const { desk, fake } = await start();
    const id = await desk.createTicket(draft());
    fake.setTicketStatus(id, STATUS.WAITING);
    await desk.addFollowup(id, 'still failing', { isPrivate: false });
    expect(fake.tickets.get(id)?.status).toBe(STATUS.WAITING);
    expect(await desk.ticketStatus(id)).toBe(STATUS.WAITING);
  });

  test('lets a follow-up resume a Pending ticket with pending_followups: resume', async () => {
    const { desk, fake } = await start({}, { pendingFollowups: 'resume' });
    const id = await desk.createTicket(draft());
    fake.setTicketStatus(id, STATUS.WAITING);
    await desk.addFollowup(id, 'still failing', { isPrivate: false });
    expect(fake.tickets.get(id)?.status).toBe(STATUS.INCOMING);
  });

  test('reopens a solved ticket with a reopen follow-up (assigned when a group is assigned, else new)', async () => {
    const { desk, fake } = await start({ groups: [3] });
    const plain = await desk.createTicket(draft());
    fake.setTicketStatus(plain, STATUS.SOLVED);
    await desk.addFollowup(plain, 'the problem is back', { isPrivate: false, reopen: true });
    expect(fake.tickets.get(plain)?.status).toBe(STATUS.INCOMING);
    const grouped = await desk.createTicket(draft({ groups_id_assign: 3 }));
    fake.setTicketStatus(grouped, STATUS.SOLVED);
    await desk.addFollowup(grouped, 'the problem is back', { isPrivate: false, reopen: true });
    expect(fake.tickets.get(grouped)?.status).toBe(STATUS.ASSIGNED);
    expect(fake.followupsOf(grouped).map((f) => f.content)).toEqual(['the problem is back']);
  });

  test('refuses a follow-up on a closed ticket with ERROR_GLPI_ADD (permanent, not landed) when the user may not reopen it', async () => {
    const { desk, fake } = await start();
    const id = await desk.createTicket(draft());
    fake.setTicketStatus(id, STATUS.CLOSED);
    const e = await failure(desk.addFollowup(id, 'late', { isPrivate: false, reopen: true }));
    expect({ kind: e.kind, code: e.code, mayHaveLanded: e.mayHaveLanded }).toEqual({ kind: 'permanent', code: 'ERROR_GLPI_ADD', mayHaveLanded: false });
    expect(fake.tickets.get(id)?.status).toBe(STATUS.CLOSED);
    expect(fake.followupsOf(id)).toEqual([]);
  });

  test('adds a solution; a solved ticket counts as already_solved, a closed one as already_closed', async () => {
    const { desk, fake } = await start();
    const id = await desk.createTicket(draft());
    expect(await desk.addSolution(id, 'recovered', 0)).toBe('added');
    expect(fake.tickets.get(id)?.status).toBe(STATUS.SOLVED);
    expect(await desk.addSolution(id, 'recovered again', 0)).toBe('already_solved');
    fake.setTicketStatus(id, STATUS.CLOSED);
    expect(await desk.addSolution(id, 'late', 0)).toBe('already_closed');
    expect(fake.solutions.filter((s) => s.items_id === id)).toHaveLength(1);
  });

  test('updates urgency and impact, and closes a ticket through its status', async () => {
    const { desk, fake } = await start();
    const id = await desk.createTicket(draft());
    await desk.updateTicket(id, { urgency: 5, impact: 5 });
    expect(fake.tickets.get(id)).toMatchObject({ urgency: 5, impact: 5, priority: 5 });
    await desk.addSolution(id, 'recovered', 0);
    await desk.updateTicket(id, { status: STATUS.CLOSED });
    expect(await desk.ticketStatus(id)).toBe(STATUS.CLOSED);
  });

  test('says a missing ticket has no status', async () => {
    const { desk } = await start();
    expect(await desk.ticketStatus(999_999)).toBeUndefined();
  });

  test('a refused login: a login RemoteError, sessionState login_failed, GLPI\'s words in lastLoginError', async () => {
    const { desk } = await start({}, { wrong: true });
    expect(desk.sessionState).toBe('none');
    const e = await failure(desk.open());
    expect(e.kind).toBe('login');
    expect(desk.sessionState).toBe('login_failed');
    expect(desk.lastLoginError).toBe(e.message);
    expect((await failure(desk.ticketStatus(1))).kind).toBe('login');
  });

  test('logs in once at open, and once more for N concurrent calls after the login expired (single-flight)', async () => {
    const { desk, fake } = await start();
    await desk.open();
    expect(desk.sessionState).toBe('open');
    const id = await desk.createTicket(draft());
    const before = d.logins(fake);
    expect(before).toBe(1);
    d.expire(fake);
    const statuses = await Promise.all(Array.from({ length: 8 }, () => desk.ticketStatus(id)));
    expect(statuses).toEqual(Array(8).fill(STATUS.INCOMING));
    expect(d.logins(fake)).toBe(before + 1);
    expect(desk.sessionState).toBe('open');
  });

  test('GLPI unavailable (the web server\'s 503 page): a retryable outage that did not land', async () => {
    const { desk, fake } = await start();
    await desk.open();
    fake.setFaults({ mode: 'unavailable' });
    const e = await failure(desk.createTicket(draft()));
    expect({ kind: e.kind, outage: e.outage, mayHaveLanded: e.mayHaveLanded, status: e.status }).toEqual({ kind: 'retryable', outage: true, mayHaveLanded: false, status: 503 });
  });

  test('a create whose answer is lost after GLPI committed it: retryable, may have landed, and the marker finds it', async () => {
    const { desk, fake } = await start();
    await desk.open();
    const t = draft();
    fake.setFaults({ dropAfterCommitNext: 1 });
    const e = await failure(desk.createTicket(t));
    expect({ kind: e.kind, mayHaveLanded: e.mayHaveLanded }).toEqual({ kind: 'retryable', mayHaveLanded: true });
    const found = await desk.findTicketByMarker(t.marker);
    expect(found).toBeDefined();
    expect(fake.tickets.get(found!)?.name).toBe(t.name);
  });

  test('a create GLPI refuses is permanent (ERROR_GLPI_ADD, not landed): an unknown category, an entity out of reach', async () => {
    const { desk, fake } = await start({ categories: [5], entities: [0, 1] });
    fake.setVisibleEntities([0], BRIDGE.id);
    const category = await failure(desk.createTicket(draft({ itilcategories_id: 9 })));
    expect({ kind: category.kind, code: category.code, mayHaveLanded: category.mayHaveLanded }).toEqual({ kind: 'permanent', code: 'ERROR_GLPI_ADD', mayHaveLanded: false });
    const entity = await failure(desk.createTicket(draft({ entities_id: 1 })));
    expect({ kind: entity.kind, code: entity.code, mayHaveLanded: entity.mayHaveLanded }).toEqual({ kind: 'permanent', code: 'ERROR_GLPI_ADD', mayHaveLanded: false });
    expect(fake.tickets.size).toBe(0);
  });

  test('checks referenced items: existing, missing', async () => {
    const { desk } = await start({ categories: [5], groups: [3] });
    expect(await desk.itemStatus('ITILCategory', 5)).toBe('exists');
    expect(await desk.itemStatus('ITILCategory', 6)).toBe('missing');
    expect(await desk.itemStatus('Group', 3)).toBe('exists');
    expect(await desk.itemStatus('Group', 4)).toBe('missing');
    expect(await desk.itemStatus('Entity', 0)).toBe('exists');
  });

  const DIRECTORY: FakeGlpiOptions['directory'] = {
    categories: [{ id: 20, name: 'Monitoring' }, { id: 21, name: 'CPU', parent: 20 }, { id: 30, name: 'Hardware' }, { id: 31, name: 'CPU', parent: 30 }, { id: 40, name: 'Disk_space' }, { id: 50, name: 'R&D <lab>', parent: 20 }],
    groups: [{ id: 5, name: 'Linux admins' }, { id: 6, name: 'Paris', parent: 5 }],
    entities: [{ id: 3, name: 'Paris' }],
    requestTypes: [{ id: 1, name: 'Helpdesk' }, { id: 8, name: 'Monitoring' }],
    users: [{ id: 41, name: 'noc', realname: 'Martin', firstname: 'Alice' }, { id: 42, name: 'jdoe', realname: 'Doe', firstname: 'John' }, { id: 43, name: 'jdoe2', realname: 'Doe', firstname: 'John' }],
    assets: [
      { itemtype: 'Computer', id: 101, name: 'web-01', ips: ['10.0.0.11'] },
      { itemtype: 'Computer', id: 102, name: 'old-web', ips: ['10.0.0.12'], is_deleted: 1 },
      { itemtype: 'NetworkEquipment', id: 201, name: 'core-sw', ips: ['10.0.0.254', '192.0.2.254'] },
      { itemtype: 'Computer', id: 103, name: 'twin', ips: ['10.0.0.50'] },
      { itemtype: 'NetworkEquipment', id: 203, name: 'twin', ips: ['10.0.0.51'] },
    ],
  };

  test('looks items up by complete name, by name, users by login or full name; several matches are all returned', async () => {
    const { desk } = await start({ directory: DIRECTORY, entities: [0, 3] });
    expect(await desk.findByName('ITILCategory', 'Monitoring > CPU')).toEqual([21]);
    expect(await desk.findByName('ITILCategory', 'monitoring > cpu')).toEqual([21]);
    expect((await desk.findByName('ITILCategory', 'CPU')).sort()).toEqual([21, 31]);
    // `_` is a LIKE wildcard in GLPI's filter: only the exact name counts.
    expect(await desk.findByName('ITILCategory', 'Disk_space')).toEqual([40]);
    expect(await desk.findByName('ITILCategory', 'Diskxspace')).toEqual([]);
    // GLPI 10 stores `&`, `<`, `>` HTML-encoded: the filter is sent that way, the answer read as typed.
    expect(await desk.findByName('ITILCategory', 'Monitoring > R&D <lab>')).toEqual([50]);
    expect(await desk.findByName('ITILCategory', 'Monitoring  >  CPU')).toEqual([21]);
    expect(await desk.findByName('Group', 'Linux admins > Paris')).toEqual([6]);
    expect(await desk.findByName('Entity', 'Root entity > Paris')).toEqual([3]);
    expect(await desk.findByName('Entity', 'Root entity')).toEqual([0]);
    expect(await desk.findByName('RequestType', 'Monitoring')).toEqual([8]);
    expect(await desk.findByName('User', 'noc')).toEqual([41]);
    expect(await desk.findByName('User', 'Alice Martin')).toEqual([41]);
    expect(await desk.findByName('User', 'Martin Alice')).toEqual([41]);
    expect((await desk.findByName('User', 'John Doe')).sort()).toEqual([42, 43]);
    expect(await desk.findByName('ITILCategory', 'Nope')).toEqual([]);
  });

  test('adds the rules\' users to a new ticket by role (an assigned user makes it assigned); the bridge stays its requester', async () => {
    const { desk, fake } = await start({ directory: DIRECTORY });
    const t = draft({ users: { assign: [41], observer: [42], requester: [43] } });
    const id = await desk.createTicket(t);
    expect(fake.tickets.get(id)).toMatchObject({ users: { assign: [41], observer: [42], requester: [43] }, status: STATUS.ASSIGNED });
    // The marker search still recognises the ticket as the bridge's own (a retry after a lost answer adopts it).
    expect(await desk.findTicketByMarker(t.marker)).toBe(id);
  });

  test('finds assets by name and by any of their IPs, not in the trash; links the asset on create (v2: GLPI_LOOKUP_UNSUPPORTED, the ticket goes without)', async () => {
    const { desk, fake } = await start({ directory: DIRECTORY });
    if (!d.lookups) {
      await expect(desk.findAssets(['Computer'], 'name', 'web-01')).rejects.toMatchObject({ code: 'GLPI_LOOKUP_UNSUPPORTED', kind: 'permanent' });
      await expect(desk.findAssets(['Computer', 'NetworkEquipment'], 'ip', '192.0.2.254')).rejects.toMatchObject({ code: 'GLPI_LOOKUP_UNSUPPORTED' });
      // An assets.map entry with an id: the ticket is still created, without the asset no v2 route can link.
      const id = await desk.createTicket(draft({ asset: { itemtype: 'Computer', id: 101 } }));
      expect(fake.tickets.get(id)?.items).toBeUndefined();
      return;
    }
    const both = ['Computer', 'NetworkEquipment'];
    expect(await desk.findAssets(both, 'name', 'web-01')).toEqual([{ itemtype: 'Computer', id: 101 }]);
    expect(await desk.findAssets(both, 'name', 'WEB-01')).toEqual([{ itemtype: 'Computer', id: 101 }]);
    expect(await desk.findAssets(both, 'ip', '192.0.2.254')).toEqual([{ itemtype: 'NetworkEquipment', id: 201 }]);
    expect(await desk.findAssets(both, 'ip', '10.0.0.1')).toEqual([]);
    expect(await desk.findAssets(both, 'name', 'old-web')).toEqual([]);
    expect(await desk.findAssets(both, 'name', 'twin')).toEqual([{ itemtype: 'Computer', id: 103 }, { itemtype: 'NetworkEquipment', id: 203 }]);
    expect(await desk.findAssets(['Computer'], 'name', 'core-sw')).toEqual([]);
    const id = await desk.createTicket(draft({ asset: { itemtype: 'NetworkEquipment', id: 201 } }));
    expect(fake.tickets.get(id)).toMatchObject({ items: [{ itemtype: 'NetworkEquipment', items_id: 201 }] });
  });

  describe('what the dispatcher builds on it (the job runner, services/job-runner.ts)', () => {
    const refusals = [
      ['a ticket template refusing Solved (solution stored, status unchanged)', { mandatoryOnSolve: ['Location'] }, 'status_unchanged'],
      ['a status matrix without Solved (solution refused)', { solveAllowed: false }, 'refused'],
    ] as const;
    for (const [what, workflow, reason] of refusals) test(`a recovery refused by ${what} falls back to a follow-up saying Zabbix recovered`, async () => {
      const { desk, fake } = await start({ workflow });
      const id = await desk.createTicket(draft());
      const warnings: Record<string, unknown>[] = [];
      const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(JSON.parse(line) as Record<string, unknown>) });
      const runner = new JobRunner(desk, { ticketId: () => id }, { solutionTypeId: 0, recoveryFallback: ['status', 'followup'], logger: log });
      const outcome = await runner.run(job(5, { type: 'solve', mode: 'solve', lines: ['Zabbix: the problem recovered.'] }), { uncertain: false });
      expect(outcome).toEqual({ operation: 'followed_up', ticketId: id });
      expect(fake.tickets.get(id)?.status).toBeLessThan(STATUS.SOLVED);
      expect(await desk.followupContents(id)).toEqual([expect.stringContaining('Zabbix: the problem recovered.')]);
      expect(warnings).toEqual([expect.objectContaining({ code: 'GLPI_SOLUTION_REFUSED', reason, fallback: 'followup' })]);
    });

    test('a recovery refused, without a fallback: the refusal is the job\'s error (a dead letter, as before)', async () => {
      const { desk } = await start({ workflow: { solveAllowed: false } });
      const id = await desk.createTicket(draft());
      const runner = new JobRunner(desk, { ticketId: () => id }, { solutionTypeId: 0 });
      await expect(runner.run(job(6, { type: 'solve', mode: 'solve', lines: ['recovered'] }), { uncertain: false })).rejects.toMatchObject({ code: 'ERROR_GLPI_ADD' });
    });

    test('a create whose answer was lost is adopted by its next try, never created twice', async () => {
      const { desk, fake } = await start();
      const runner = new JobRunner(desk, { ticketId: () => undefined }, { solutionTypeId: 0 });
      const t = draft();
      const j = job(1, { type: 'create_ticket', ticket: t, delayMs: 0 });
      const state: RunState = { uncertain: false };
      fake.setFaults({ dropAfterCommitNext: 1 });
      const outcome = await untilDone(runner, j, state);
      expect(outcome).toMatchObject({ operation: 'adopted', ticketId: [...fake.tickets.keys()][0] });
      expect(fake.tickets.size).toBe(1);
    });

    test('a follow-up whose answer was lost is found by its job tag on the next try, never added twice', async () => {
      const { desk, fake } = await start();
      const id = await desk.createTicket(draft());
      const runner = new JobRunner(desk, { ticketId: () => id }, { solutionTypeId: 0 });
      const j = job(2, { type: 'followup', lines: ['CPU still at 97% & <rising>'], isPrivate: false });
      const state: RunState = { uncertain: false };
      fake.setFaults({ dropAfterCommitNext: 1 });
      expect(await untilDone(runner, j, state)).toEqual({ operation: 'followed_up', ticketId: id });
      expect(fake.followupsOf(id)).toHaveLength(1);
    });

    test('a follow-up on a ticket closed in GLPI completes as found_closed (the refusal read from the status)', async () => {
      const { desk, fake } = await start();
      const id = await desk.createTicket(draft());
      fake.setTicketStatus(id, STATUS.CLOSED);
      const runner = new JobRunner(desk, { ticketId: () => id }, { solutionTypeId: 0 });
      expect(await runner.run(job(3, { type: 'reopen', lines: ['back'] }), { uncertain: false })).toEqual({ operation: 'found_closed', ticketId: id, closedInGlpi: true });
    });

    test('a recovery in close mode solves then closes; run again it finds the ticket closed', async () => {
      const { desk, fake } = await start();
      const id = await desk.createTicket(draft());
      const runner = new JobRunner(desk, { ticketId: () => id }, { solutionTypeId: 0 });
      const j = job(4, { type: 'solve', mode: 'close', lines: ['recovered'] });
      expect(await runner.run(j, { uncertain: false })).toEqual({ operation: 'closed', ticketId: id });
      expect(fake.tickets.get(id)?.status).toBe(STATUS.CLOSED);
      expect(await runner.run(j, { uncertain: true })).toEqual({ operation: 'found_closed', ticketId: id });
    });
  });

  test('knows GLPI\'s major version', async () => {
    const { desk } = await start();
    expect(await desk.glpiMajor()).toBe(Number(d.version));
  });
});
