import { nodeDigests } from '../adapters/digests.js';
import type { IntakeStore } from '../adapters/store/sqlite/index.js';
import type { Config } from '../config/schema.js';
import type { Clock, ZabbixReader } from '../core/ports.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { Intake } from '../services/intake.js';
import { Poller } from '../services/poller.js';
import { openIntakeSideStore } from './store.js';

/** The main thread's side: the inbox's only writer, the intake that commits to it, and the Zabbix poller. */
export interface IntakeSide {
  readonly store: IntakeStore;
  readonly intake: Intake;
  readonly poller: Poller | undefined;
}

export interface IntakeOptions {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly clock: Clock;
  /** Deliveries up to this id are on disk (after each group commit, which answered `webhooks`). */
  readonly onCommitted: (durableThrough: number, webhooks: number) => void;
}

/** Build the main thread's side from the configuration (nothing started). */
export function buildIntakeSide(config: Config, o: IntakeOptions): IntakeSide {
  // SQLite: the intake writes the inbox file, the processing side checkpoints it; PostgreSQL: this thread's own connections.
  const store = openIntakeSideStore(config);
  const intake = new Intake(store, o.clock, nodeDigests, o.logger.child({ component: 'intake' }), o.metrics, o.onCommitted);
  const poller =
    config.zabbix.url !== '' && config.zabbix.poll.enabled
      ? new Poller(zabbixOnFirstUse(config, o.logger.child({ component: 'zabbix' })), store, store.pollMemory(), intake, o.logger.child({ component: 'poller' }), o.metrics, {
          hostGroups: config.zabbix.poll.host_groups,
          minSeverity: config.zabbix.poll.min_severity,
          baseline: config.zabbix.poll.baseline,
          onMaintenance: config.zabbix.poll.on_maintenance,
          onDisabled: config.zabbix.poll.on_disabled,
        }, nodeDigests)
      : undefined;
  return { store, intake, poller };
}

/**
 * The Zabbix API client, loaded at the poller's first request (composition/clients.ts): a main thread that does not
 * poll never loads axios and the GLPI clients (issue 16: megabytes of heap in the thread that answers webhooks).
 */
function zabbixOnFirstUse(config: Config, logger: Logger): ZabbixReader {
  let loaded: Promise<ZabbixReader> | undefined;
  const api = (): Promise<ZabbixReader> =>
    (loaded ??= import('./clients.js').then(({ zabbixApi }) => {
      const client = zabbixApi(config, logger);
      if (!client) throw new Error('zabbix.url is empty: no Zabbix API to poll');
      return client;
    }));
  return {
    problemStates: async (eventIds) => (await api()).problemStates(eventIds),
    triggerStates: async (ids) => (await api()).triggerStates(ids),
    maintenances: async (ids) => (await api()).maintenances(ids),
    disabledBy: async (resource, id) => (await api()).disabledBy(resource, id),
    problems: async (scope) => (await api()).problems(scope),
    groupIds: async (names) => (await api()).groupIds(names),
    triggers: async (ids) => (await api()).triggers(ids),
    eventStates: async (ids) => (await api()).eventStates(ids),
  };
}
