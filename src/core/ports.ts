// The ports: what the services need from the world around the core, as small interfaces (types only).
// Adapters implement them (adapters/store/sqlite, adapters/glpi, adapters/zabbix, adapters/clock); tests
// use the in-memory ones. A service imports from here, never from an adapter.

import type { Alert } from './alert.js';
import type { LaneKind } from './coalesce.js';
import type { EventChange, EventInfo, Incident, JobSpec, JobType, ProblemSpec, TicketDraft } from './decide.js';

// ---------------------------------------------------------------------------
// Time

/** Time comes in from outside so tests can pin it. */
export interface Clock {
  now(): number;
}

/** Hashes the core's identities are made of (delivery keys, incident keys, ticket markers); the core imports no crypto. */
export interface Digests {
  sha256Hex(text: string): string;
  hmacSha256Hex(key: string, text: string): string;
}

// ---------------------------------------------------------------------------
// GLPI and Zabbix

/** What the dispatcher needs from a ticketing system (GLPI). Errors are RemoteErrors (core/remote-error.ts). */
export interface TicketDesk {
  /** The ticket the bridge itself created with this marker, if any (one carrying it but created by someone else is not returned). */
  findTicketByMarker(marker: string): Promise<number | undefined>;
  createTicket(t: TicketDraft): Promise<number>;
  addFollowup(ticketId: number, content: string, options: { isPrivate: boolean; reopen?: boolean }): Promise<number>;
  followupContents(ticketId: number): Promise<string[]>;
  /** Add a solution; a ticket already solved or closed (read from its status, not from a translated message) counts as done. */
  addSolution(ticketId: number, content: string, solutionTypeId: number): Promise<'added' | 'already_solved' | 'already_closed'>;
  updateTicket(ticketId: number, fields: Readonly<Record<string, unknown>>): Promise<void>;
  /** The ticket's status (1 new, 2 assigned, 3 planned, 4 pending, 5 solved, 6 closed); undefined when it does not exist. */
  ticketStatus(ticketId: number): Promise<number | undefined>;
  ticketUrl(id: number): string;
}

/** A GLPI Problem as the bridge sees it: its id and status (1 new … 5 solved, 6 closed; 7 accepted, 8 observed). */
export interface ProblemRef {
  readonly id: number;
  readonly status: number;
}

/** What a Problem is created with: the core's ProblemSpec (name, content, and the fields it takes from the ticket that opened it). */
export type ProblemDraft = ProblemSpec;

/**
 * GLPI Problems and ITIL links (issue 14 item 1), apart from the TicketDesk so that the ticket adapters'
 * other users need nothing new. An API without the routes throws a RemoteError of code GLPI_PROBLEMS_UNSUPPORTED.
 */
export interface ProblemDesk {
  /** Problems the bridge itself created whose name carries this marker (others are never adopted), lowest id first. */
  findProblemsByMarker(marker: string): Promise<ProblemRef[]>;
  createProblem(p: ProblemDraft): Promise<number>;
  /** Tickets linked to the problem (Problem_Ticket). */
  problemTickets(problemId: number): Promise<number[]>;
  /** Link a ticket to the problem (GLPI refuses a link that exists: check problemTickets first). */
  linkProblemTicket(problemId: number, ticketId: number): Promise<void>;
  addProblemFollowup(problemId: number, content: string): Promise<void>;
  problemFollowupContents(problemId: number): Promise<string[]>;
  /** Tickets linked to this one (Ticket_Ticket, either side). */
  linkedTickets(ticketId: number): Promise<number[]>;
  /** Link two tickets, "linked to" (Ticket_Ticket, link 1). */
  linkTickets(ticketId: number, otherId: number): Promise<void>;
  /**
   * Remove the link between two tickets (Ticket_Ticket, either side); false when there was none. An API
   * without the route leaves it out (the job runner then says on the ticket that the link no longer holds).
   */
  unlinkTickets?(ticketId: number, otherId: number): Promise<boolean>;
}

/** A GLPI asset (Computer, NetworkEquipment, …) by itemtype and id. */
export interface AssetRef {
  readonly itemtype: string;
  readonly id: number;
}

/**
 * Looking things up in GLPI by name (issue 14 items 2 and 3), apart from the
 * TicketDesk: ITIL categories, entities and groups by complete name
 * ("Monitoring > CPU") or name, request types by name, users by login or
 * "Firstname Lastname", assets by name or IP. Every method answers every
 * match (none: unknown; more than one: ambiguous, for the caller to refuse).
 * An API without the route throws a RemoteError of code GLPI_LOOKUP_UNSUPPORTED.
 */
export interface GlpiDirectory {
  findByName(itemtype: 'ITILCategory' | 'Entity' | 'Group' | 'RequestType' | 'User', name: string): Promise<number[]>;
  findAssets(itemtypes: readonly string[], by: 'name' | 'ip', value: string): Promise<AssetRef[]>;
}

/** What the dispatcher needs from Zabbix to write the ticket link back to the event. */
export interface EventAcknowledger {
  acknowledge(eventIds: readonly string[], message: string, acknowledge: boolean): Promise<void>;
  /** Whether the event already carries this message (a retry after an unknown outcome). */
  hasMessage(eventId: string, message: string): Promise<boolean>;
  /** Close the problems whose trigger allows manual close, with the message; the others get the message only (issue 14 item 5). */
  closeProblems?(eventIds: readonly string[], message: string): Promise<void>;
}

/** A ticket the bridge wrote, as GLPI's search shows it when it changed (issue 14 item 5). */
export interface ModifiedTicket {
  readonly id: number;
  readonly status: number;
  /** GLPI's date_mod, as GLPI writes it ("YYYY-MM-DD HH:MM:SS", GLPI's clock): the watcher's cursor. */
  readonly dateMod: string;
}

/** Reading the bridge's tickets back from GLPI: one search per sweep, never a request per ticket. */
export interface TicketWatch {
  /** Tickets the bridge wrote modified after `since` (GLPI's clock; undefined: the most recent ones), oldest first. */
  ticketsModifiedSince(since: string | undefined): Promise<ModifiedTicket[]>;
  /** The ticket's public follow-ups written by someone else than the bridge's user, oldest first (text as typed). */
  othersPublicFollowups(ticketId: number): Promise<{ readonly id: number; readonly content: string }[]>;
}

/** A problem as Zabbix's problem.get gives it (validated by the adapter). */
export interface ProblemRow {
  readonly eventid: string;
  readonly source: string;
  readonly object: string;
  readonly objectid: string;
  readonly clock: string;
  readonly name: string;
  readonly severity: string;
  readonly r_eventid?: string | undefined;
  readonly acknowledged?: string | undefined;
  readonly opdata?: string | undefined;
  /** Zabbix 6.4+: the cause event of a symptom ("0" for a cause). */
  readonly cause_eventid?: string | undefined;
  readonly tags: readonly { readonly tag: string; readonly value: string }[];
}

/** A trigger as trigger.get gives it, with its hosts and items. */
export interface TriggerRow {
  readonly triggerid: string;
  readonly description: string;
  readonly priority: string;
  readonly hosts: readonly { readonly hostid: string; readonly host: string; readonly name?: string | undefined }[];
  readonly items: readonly { readonly itemid: string; readonly key_: string; readonly lastvalue?: string | undefined; readonly units?: string | undefined }[];
}

/** An event as event.get gives it. */
export interface EventRow {
  readonly eventid: string;
  readonly value?: string | undefined;
  readonly r_eventid?: string | undefined;
  readonly clock?: string | undefined;
  readonly acknowledges: readonly { readonly message: string }[];
}

/** An open problem's suppression, as problem.get by event ids gives it (6.0 → 7.4). */
export interface ProblemState {
  readonly eventid: string;
  readonly objectid: string;
  /** "1": suppressed (a maintenance, or from 7.0 a user's manual suppression). */
  readonly suppressed?: string | undefined;
  /** maintenanceid "0" with a userid: suppressed by hand (7.0); suppress_until "0": indefinitely. */
  readonly suppression_data: readonly { readonly maintenanceid: string; readonly suppress_until: string; readonly userid?: string | undefined }[];
}

/** A trigger's own state and its hosts' and items' (trigger.get): disabled, in maintenance. */
export interface TriggerState {
  readonly triggerid: string;
  readonly description: string;
  /** "1": disabled. */
  readonly status: string;
  readonly hosts: readonly {
    readonly hostid: string;
    readonly host: string;
    readonly name?: string | undefined;
    /** "1": not monitored (disabled). */
    readonly status?: string | undefined;
    /** "1": in maintenance (written by the server's timer). */
    readonly maintenance_status?: string | undefined;
    readonly maintenanceid?: string | undefined;
    /** "0": with data collection, "1": without. */
    readonly maintenance_type?: string | undefined;
    /** When the host's current maintenance started (epoch s). */
    readonly maintenance_from?: string | undefined;
  }[];
  readonly items: readonly { readonly itemid: string; readonly key_: string; readonly name?: string | undefined; readonly status?: string | undefined }[];
}

/** A maintenance's name and window (maintenance.get; needs an admin API user). */
export interface MaintenanceRow {
  readonly maintenanceid: string;
  readonly name: string;
  readonly maintenance_type?: string | undefined;
  readonly active_till?: string | undefined;
}

/** An item's last values, newest first, with its units (for the ticket body's value history). */
export interface ItemHistory {
  readonly units: string;
  /** Newest first; `at` in ms. */
  readonly points: readonly { readonly at: number; readonly value: string }[];
}

/** What the ticket creation reads from Zabbix when zabbix.value_history is on. */
export interface ValueHistoryReader {
  /** The item's last `count` values (none for an item Zabbix does not return, or of a type without text values). */
  itemHistory(itemId: string, count: number): Promise<ItemHistory>;
}

/** What the poller reads from the Zabbix API. */
export interface ZabbixReader {
  /** Open problems among these events, with their suppression (what a maintenance did to them). */
  problemStates(eventIds: readonly string[]): Promise<ProblemState[]>;
  /** Triggers with their status and their hosts' status and maintenance. */
  triggerStates(ids: readonly string[]): Promise<TriggerState[]>;
  /** Maintenances by id (names for the ticket); may fail for a non-admin API user. */
  maintenances(ids: readonly string[]): Promise<MaintenanceRow[]>;
  /** Who last disabled this trigger or host, from the audit log (undefined: not found); fails for an API user below Super admin. */
  disabledBy(resource: 'trigger' | 'host', id: string): Promise<{ readonly username: string; readonly clock: string } | undefined>;
  problems(scope?: { groupIds?: readonly string[]; severities?: readonly number[] }): Promise<ProblemRow[]>;
  groupIds(names: readonly string[]): Promise<string[]>;
  triggers(ids: readonly string[]): Promise<TriggerRow[]>;
  /** State of events by id (recovered or not); an id Zabbix does not return is unknown to it (not visible, or housekept). */
  eventStates(ids: readonly string[]): Promise<EventRow[]>;
}

// ---------------------------------------------------------------------------
// The inbox: alerts as accepted, in order (written by the intake only)

export interface NewDelivery {
  readonly key: string;
  readonly receivedAt: number;
  readonly alert: Alert;
}

export interface Accepted {
  readonly deliveryId: number;
  readonly duplicate: boolean;
}

export interface PendingDelivery {
  readonly id: number;
  readonly alert: Alert;
  readonly receivedAt: number;
}

/** The inbox as the intake writes it: only the thread that answers webhooks holds this. */
export interface InboxWriter {
  /**
   * Commit new deliveries; a key seen before answers with the first delivery's id. Throws StoreBusy
   * (core/errors.ts) when the inbox is briefly unavailable (retry soon). Durable against a power cut only
   * once syncInbox() resolves.
   */
  acceptDeliveries(items: readonly NewDelivery[]): Accepted[];
  /**
   * Optional: acceptDeliveries() without blocking the calling thread, for a store whose commit is a round trip
   * to a server (PostgreSQL). Resolves once the deliveries are committed and durable (no syncInbox() needed),
   * with the same answers; rejects when nothing was committed. The intake uses it when present.
   */
  acceptDeliveriesAsync?(items: readonly NewDelivery[]): Promise<Accepted[]>;
  /** Flush every commit made so far to disk (one flush shared by every caller waiting meanwhile). */
  syncInbox(): Promise<void>;
  /**
   * The store is close to its size cap: new webhooks are refused (503) so that accepted alerts can still be decided.
   * `now` (the caller's Clock) paces what the store re-reads (SQLite: the undecided backlog's size, once a second).
   */
  nearlyFull(now: number): boolean;
}

/** What the HTTP listener and the poller hand alerts to: answered once the alert is durable (or known already). */
export interface AlertIntake {
  accept(alert: Alert): Promise<Accepted>;
}

/** The inbox's own upkeep, on the thread that writes it: where it ends, and forgetting what is decided and old. */
export interface InboxHousekeeping {
  /** Id of the last delivery (0 when empty): what the deciders may decide through at start. */
  lastDeliveryId(): number;
  /**
   * Forget deliveries decided on disk (behind the decided position a power-safe commit recorded) and received
   * more than `retentionMs` before the first undecided one; problems of events still open are kept. Returns how many.
   */
  pruneDeliveries(now: number, retentionMs: number): number;
}

/** The inbox as the deciders and the poller read it. */
export interface InboxReader {
  hasDelivery(key: string): boolean;
  deliveryId(key: string): number | undefined;
  deliveryAlert(key: string): Alert | undefined;
  /** Updates of one event delivered before the delivery `beforeId` (decided again behind their problem). */
  earlierUpdates(eventSource: string, eventId: string, beforeId: number): PendingDelivery[];
  /** Deliveries after the decided position, up to `throughId`, in order. */
  unprocessedDeliveries(limit: number, throughId?: number): PendingDelivery[];
  /** The alert of a delivery, by its id (`queue retry` re-renders a dead create from it). */
  deliveryAlertById(id: number): Alert | undefined;
}

// ---------------------------------------------------------------------------
// The state: decisions, incidents, the action queue (written by the processing thread only)

/**
 * How much a commit to the state must survive. `power-safe`: flushed to disk before the commit returns
 * (run records, job claims, `queue retry`); `crash-safe`: survives the process dying, not a power cut
 * (decisions: after a power cut they are taken again from the inbox, none of their jobs having run).
 */
export type Durability = 'power-safe' | 'crash-safe';

/** One atomic change of the state: every port call made inside `fn` commits together or not at all. */
export interface StateTransactions {
  transaction<T>(fn: () => T, durability?: Durability): T;
}

/** A delivery whose decision threw: kept aside (not skipped) for the operator. */
export interface ParkedDelivery {
  readonly deliveryId: number;
  readonly eventId: string;
  readonly kind: string;
  readonly error: string;
  readonly parkedAt: number;
}

/** Where the decisions stand in the inbox: the cursor between the inbox and the state. */
export interface DecisionCursor {
  /** Every delivery up to this id is decided (its jobs queued, in the same commit). */
  processedThrough(): number;
  markProcessed(id: number): void;
  /** Put the decided position on disk (a power-safe commit) when it moved, so the inbox can be pruned behind it. */
  syncDecided(): void;
  parkDelivery(deliveryId: number, eventId: string, kind: string, error: string, now: number): void;
  parkedDeliveries(limit?: number): ParkedDelivery[];
}

/**
 * An incident as the state's methods take it: by its readable fingerprint (filed under a fixed-size key
 * made from it), or by anything that carries the key already (a Job).
 */
export type IncidentRef = string | { readonly key: string };

/** Incidents, the event index and the tickets of each cycle. */
export interface IncidentState {
  getIncident(incident: IncidentRef): Incident | undefined;
  putIncident(incident: Incident, now: number): void;
  eventInfo(eventId: string): EventInfo | undefined;
  putEvents(incident: IncidentRef, changes: readonly EventChange[]): void;
  moveOpenEvents(incident: IncidentRef, fromCycle: number, toCycle: number): void;
  latestOpenEvent(incident: IncidentRef, cycle: number): string | undefined;
  /** Problem events of open incidents (what the poller checks against Zabbix). */
  openIncidentEvents(): string[];
  /**
   * For each open problem event, the note keys its incident announced on it that start with `prefix` (the
   * incident's `announced` entries `<event id>:<key>`, as keys, oldest first); events with none are left out.
   * The poller's memory of the maintenances it announced, across restarts (services/poller.ts).
   */
  announcedOnOpenEvents(prefix: string): Map<string, string[]>;
  /** Fingerprint definitions of open incidents (correlation.fingerprint may have changed since they opened). */
  openIncidentDefinitions(): string[][];
  /** Forget incidents ended before `before` that have no job left; returns their fingerprints. */
  pruneIncidents(before: number, limit?: number): string[];
  putTicket(incident: IncidentRef, cycle: number, ticketId: number, marker: string, now: number): void;
  ticketId(incident: IncidentRef, cycle: number): number | undefined;
  /** Whether the cycle has a ticket, or a create that is queued, running or dead. */
  cycleHasTicket(incident: IncidentRef, cycle: number): boolean;
}

export type JobStatus = 'pending' | 'running' | 'done' | 'dead' | 'cancelled';

export interface Job {
  readonly id: number;
  /** The incident's readable fingerprint (for logs and `queue`). */
  readonly fingerprint: string;
  /** The key the state files the incident under. */
  readonly key: string;
  /** The lane the job runs in, in order: `glpi:<key>` or `zabbix:<key>`. */
  readonly lane: string;
  readonly cycle: number;
  readonly type: JobType;
  readonly spec: JobSpec;
  readonly status: JobStatus;
  readonly attempts: number;
  readonly nextAttemptAt: number;
  readonly lastError?: string;
  readonly deliveryId?: number;
  readonly createdAt: number;
}

/** The newest job of a lane, as storm control sees it. */
export interface QueuedJob {
  readonly id: number;
  readonly cycle: number;
  readonly spec: JobSpec;
  readonly status: 'pending' | 'running';
  readonly attempts: number;
}

export interface QueueStats {
  readonly pending: number;
  readonly running: number;
  readonly dead: number;
  readonly oldestPendingAt?: number;
  readonly unprocessed: number;
  readonly parked: number;
}

/** The GLPI and Zabbix work to do, one lane per incident and kind, in order. */
export interface ActionQueue {
  /** Queue a job at the end of its lane (laneOf(spec)); returns its id. Storm control (merging into the last queued job) is services/storm-control.ts. */
  enqueue(incident: IncidentRef, cycle: number, spec: JobSpec, runAt: number, now: number, deliveryId?: number): number;
  /** Cancel the pending GLPI jobs of one cycle (a suppressed flap); returns how many. */
  cancelCycle(incident: IncidentRef, cycle: number, now: number): number;
  replaceJobSpec(id: number, spec: JobSpec, now: number): void;
  /** The newest job of the incident's lane that is pending or running (what a new job may merge into). */
  lastQueued(incident: IncidentRef, lane: LaneKind): QueuedJob | undefined;
  /**
   * Claim due jobs (a power-safe commit, or one claimsOnDisk() makes so: a claim is on disk before its job
   * runs), the head of each lane only, none of a lane in `busy`, and no create held back past `createHorizon`.
   */
  claimReady(now: number, limit: number, busy: ReadonlySet<string>, createHorizon?: number): Job[];
  /**
   * A store whose claims are committed without a flush (SQLite): resolves once the claims made before the
   * call are on disk; their jobs run only then. Absent: claimReady's commit is power-safe itself.
   */
  claimsOnDisk?(): Promise<void>;
  /**
   * Several bridges on one store (PostgreSQL): whether this node's claim on the job may have lapsed (its lease
   * not renewed in time: the node was stopped or cut off), so that no request is sent for it; another node may
   * run it under a newer claim. Absent: a claim never lapses (one node).
   */
  claimLapsed?(id: number): boolean;
  completeJob(id: number, now: number): void;
  rescheduleJob(id: number, at: number, error: string, now: number): void;
  /** A dead letter: kept with its reason until `queue retry`. */
  buryJob(id: number, reason: string, now: number): void;
  /** Jobs left running by a stop go back to pending; returns how many. */
  requeueRunning(now: number): number;
  nextDueAt(): number | undefined;
  /** Forget finished and cancelled jobs older than `before`; returns how many. */
  pruneFinished(before: number): number;
  job(id: number): Job | undefined;
  jobs(status: JobStatus, limit?: number): Job[];
  /** Queue dead letters again (one, or all in order); returns how many. */
  retryDead(id: number | 'all', now: number): number;
  stats(): QueueStats;
}

/**
 * Where the GLPI read-back stopped (services/glpi-watcher.ts): GLPI's date_mod of the newest ticket it read,
 * kept in the state so that a restart resumes there.
 */
export interface WatchCursor {
  glpiWatchCursor(): string | undefined;
  putGlpiWatchCursor(dateMod: string): void;
}

/** Whether the last run stopped cleanly (a run that did not may have sent requests it has no record of). */
export interface RunRecord {
  /**
   * Record that a run started; returns whether the previous one stopped uncleanly, in which case every
   * queued ticket creation counts as possibly sent (its next run searches GLPI for its marker first).
   */
  recordStart(now: number): boolean;
  /** After a graceful stop has drained or parked its work. */
  recordCleanStop(): void;
}

/** One decision as the decision log keeps it (the status page's "last decisions"). */
export interface DecisionRecord {
  readonly at: number;
  /** The delivery decided (absent: a ticket found closed in GLPI). */
  readonly deliveryId?: number;
  readonly eventId: string;
  readonly kind: string;
  readonly host: string;
  readonly fingerprint: string;
  readonly category: string;
  readonly severity: string;
  readonly action: string;
  readonly reason: string;
  readonly jobs: readonly string[];
}

export interface DecisionFilter {
  readonly host?: string;
  readonly category?: string;
  readonly action?: string;
  /** Newest first, at most this many (default 300). */
  readonly limit?: number;
}

/**
 * The last decisions with their reasons, bounded by count: written with the decisions themselves (in the
 * processor's commit, so a decision taken again after a crash is logged once), read by the status page.
 */
export interface DecisionLog {
  /** Append, then forget all but the newest `keep`. */
  recordDecisions(records: readonly DecisionRecord[], keep: number): void;
  /** Newest first; filters match exactly. */
  recentDecisions(filter?: DecisionFilter): DecisionRecord[];
}

/** An open incident as the status page lists it. */
export interface OpenIncidentView {
  readonly fingerprint: string;
  readonly cycle: number;
  readonly category: string;
  readonly severity: string;
  readonly occurrences: number;
  readonly openedAt: number;
  readonly ticketId?: number;
}

/** Open incidents, a page at a time (the status page stays usable with 10,000 of them), newest first. */
export interface OpenIncidentList {
  openIncidentCount(): number;
  openIncidents(offset: number, limit: number): OpenIncidentView[];
}

// ---------------------------------------------------------------------------
// The poller's memory

export type BaselineMode = 'skip' | 'import';

/** What the poller recorded when it first swept a scope. */
export interface CursorState {
  /** The scope swept (host groups, minimum severity), as recorded: a different scope is a first sweep again. */
  readonly scope: string;
  readonly baselineAt: number;
  readonly baselineMode: BaselineMode;
  /** Problems open at that first sweep that the bridge did not know of (0 with import). */
  readonly baselineCount: number;
}

/** The poller's durable memory: whether it swept its scope before, and the baseline of problems never ticketed. */
export interface PollMemory {
  state(): CursorState | undefined;
  baseline(): Set<string>;
  record(state: CursorState, baseline: readonly string[], now: number): Promise<void>;
  forget(eventIds: readonly string[]): void;
}

// ---------------------------------------------------------------------------
// What each service is given

/** The processor: reads the inbox, decides, writes incidents and queues jobs, in one commit per batch. */
export type DecisionStore = InboxReader & DecisionCursor & IncidentState & Pick<ActionQueue, 'enqueue' | 'lastQueued' | 'replaceJobSpec' | 'cancelCycle' | 'pruneFinished'> & StateTransactions & Pick<DecisionLog, 'recordDecisions'>;

/** The dispatcher: runs the queue and records the tickets it made. */
export type DispatchStore = ActionQueue & Pick<IncidentState, 'putTicket' | 'ticketId'> & RunRecord & StateTransactions;

/** The poller: which alerts the bridge holds already, and which events it keeps open. */
export type PollerStore = Pick<InboxReader, 'hasDelivery' | 'deliveryAlert'> & Pick<IncidentState, 'openIncidentEvents' | 'announcedOnOpenEvents'>;
