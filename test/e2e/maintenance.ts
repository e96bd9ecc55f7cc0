import type { ZabbixAdmin } from './zabbix-api.js';

/**
 * A host in a Zabbix maintenance, for the maintenance scenario of test/e2e/zabbix.test.ts (run against 6.0 and
 * 7.0 by the same code). What Zabbix does, read in zabbix/zabbix and measured on this machine (Debian's 6.0.14
 * and 7.0.22):
 *
 * - A maintenance "with data collection" (maintenance_type 0) does not stop triggers: the problem event is
 *   created as usual, and suppressed at creation when its host is in a running maintenance (the history syncer
 *   writes event_suppress rows for new problems from the running maintenances in the configuration cache:
 *   update_event_suppress_data() in the server's events.c, 6.0 and 7.0). problem.get answers it with suppressed
 *   "1" and suppression_data [{maintenanceid, suppress_until}]; problem.get {suppressed: false}, the poller's
 *   request, leaves it out.
 * - Which maintenances run is decided by the timer process (src/zabbix_server/timer/timer.c). 6.0: only once a
 *   minute, at 0 seconds of each minute (ZBX_TIMER_DELAY = SEC_PER_MIN, the next run at the start of the next
 *   minute; https://www.zabbix.com/documentation/6.0/en/manual/maintenance says the same: "Timer processes are
 *   responsible for switching host status to/from maintenance at 0 seconds of every minute"). A maintenance
 *   created, changed or deleted through the API therefore starts or ends at the next full minute (after the
 *   configuration cache has read it: CacheUpdateFrequency, or `zabbix_server -R config_cache_reload`). 7.0 adds
 *   an immediate run when the configuration cache sync sees a maintenance *period* (timeperiods row) added,
 *   changed or removed (ZBX_FLAG_MAINTENANCE_UPDATE_PERIOD, zbx_dc_maintenance_check_immediate_update() in
 *   src/libs/zbxcacheconfig/dbconfig_maintenance.c): a new maintenance, or one whose period is moved, takes
 *   effect within a second of the cache reload. Deleting a maintenance is not such a change there (it is gone
 *   from the cache, so the immediate run sees nothing stop): its hosts leave maintenance at the next full
 *   minute, as on 6.0. Measured: 6.0 created at :13 → in maintenance at :00 (48 s); 7.0 created → 1 s; 7.0
 *   period moved into the past → out of maintenance in 1 s; 7.0 deleted at :23 → out at :00 (37 s). The test
 *   therefore ends its maintenance by moving the period (what an operator does by editing the maintenance;
 *   deleting it behaves the same for the bridge, only later on 7.0).
 * - When a maintenance ends, the timer deletes the event_suppress rows of its events: problem.get then returns
 *   the problem with suppressed "0", and the poller's next sweep sees it.
 * - Escalations (src/zabbix_server/escalator/escalator.c, check_escalation()): an action with pause_suppressed
 *   1 — the default of action.create on 6.0 and 7.0, "Pause operations for suppressed problems" in the frontend
 *   — answers ZBX_ESCALATION_SUPPRESS for a suppressed problem that has not recovered: no operation runs, and
 *   the escalation is looked at again 60 s later (nextcheck = now + SEC_PER_MIN; read in the 7.x source, and
 *   measured the same on both versions). Nothing wakes it when the maintenance ends: the problem's first
 *   operation (our webhook) is sent at the first of those once-a-minute checks after the unsuppression, i.e. up
 *   to a minute after the maintenance ended. Measured (alert clock): 6.0, problem raised at :25, maintenance
 *   ended at :31 → unsuppressed at :00 → alert at :26; 7.0, raised at :15, ended (and unsuppressed) at :43 →
 *   alert at :15 of the next minute. Recovery and update operations are never paused (the same manual page:
 *   "problem recovery and update operations are not suppressed during maintenance, only escalations"); a
 *   problem that starts and recovers within the maintenance has its escalation deleted (ZBX_ESCALATION_DELETE):
 *   nothing is sent. 7.0 adds pause_symptoms (the same pausing for symptom events of cause/symptom problems);
 *   pause_suppressed and its default are unchanged.
 * - API shapes used here, the same on 6.0 and 7.0: maintenance.create {name, maintenance_type, active_since,
 *   active_till, hosts: [{hostid}], timeperiods: [{timeperiod_type: 0 (one time), start_date, period}]} (period
 *   at least 300 s, CMaintenance's validation; active_since and active_till are stored rounded down to the
 *   minute); maintenance.update with only timeperiods replaces them; host.get maintenance_status "1"/"0"
 *   (written by the timer); problem.get suppressed, selectSuppressionData; alert.get of a problem event also
 *   lists its update operations' alerts (acknowledgeid set). Both versions refuse host.delete of a
 *   maintenance's last host ('maintenance "…" must contain at least one host or host group').
 *
 * So for the bridge: while the host is in maintenance nothing reaches it (no webhook, the poller skips the
 * problem); when the maintenance ends, the poller's next sweep (zabbix.poll.schedule) or the webhook of the
 * resumed escalation (up to a minute later), whichever comes first, tickets it; the other is the same event's
 * problem delivery: a duplicate, never a second ticket.
 */

export interface Maintenance {
  readonly maintenanceid: string;
  /** Start of the maintenance's window and of its one period (a minute boundary). */
  readonly since: number;
}

/** A one-time maintenance with data collection over one host, running from the start of this minute for an hour. */
export async function createMaintenance(zbx: ZabbixAdmin, name: string, hostid: string): Promise<Maintenance> {
  const now = Math.floor(Date.now() / 1000);
  const since = now - (now % 60);
  const { maintenanceids } = await zbx.call<{ maintenanceids: string[] }>('maintenance.create', {
    name,
    maintenance_type: 0,
    active_since: since,
    active_till: since + 2 * 3600,
    hosts: [{ hostid }],
    timeperiods: [{ timeperiod_type: 0, start_date: since, period: 3600 }],
  });
  return { maintenanceid: maintenanceids[0]!, since };
}

/**
 * End the maintenance by moving its period into the past (a changed period: 7.0 applies it as soon as the
 * configuration cache has it, 6.0 at the next full minute).
 */
export async function endMaintenance(zbx: ZabbixAdmin, m: Maintenance): Promise<void> {
  await zbx.call('maintenance.update', { maintenanceid: m.maintenanceid, timeperiods: [{ timeperiod_type: 0, start_date: m.since - 3600, period: 300 }] });
}

/** Whether the timer has put the host into maintenance (true) or taken it out (false). */
export async function inMaintenance(zbx: ZabbixAdmin, hostid: string): Promise<boolean> {
  const [h] = await zbx.call<{ maintenance_status: string }[]>('host.get', { hostids: [hostid], output: ['maintenance_status'] });
  return h?.maintenance_status === '1';
}

export interface ProblemState {
  readonly eventid: string;
  readonly suppressed: string;
  readonly suppression_data: { maintenanceid: string }[];
}

/** The trigger's open problem as Zabbix shows it (suppressed or not), if any. */
export async function openProblem(zbx: ZabbixAdmin, triggerid: string): Promise<ProblemState | undefined> {
  const problems = await zbx.call<ProblemState[]>('problem.get', {
    objectids: [triggerid],
    output: ['eventid', 'suppressed'],
    selectSuppressionData: 'extend',
    sortfield: ['eventid'],
    sortorder: 'DESC',
  });
  return problems[0];
}
