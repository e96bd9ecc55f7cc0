import { nodeDigests } from '../adapters/digests.js';
import type { IntakeStore } from '../adapters/store/sqlite/index.js';
import type { Config } from '../config/schema.js';
import type { Clock } from '../core/ports.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { Intake } from '../services/intake.js';
import { Poller } from '../services/poller.js';
import { zabbixApi } from './from-config.js';
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
  const zabbix = zabbixApi(config, o.logger.child({ component: 'zabbix' }));
  const poller =
    zabbix && config.zabbix.poll.enabled
      ? new Poller(zabbix, store, store.pollMemory(), intake, o.logger.child({ component: 'poller' }), o.metrics, {
          hostGroups: config.zabbix.poll.host_groups,
          minSeverity: config.zabbix.poll.min_severity,
          baseline: config.zabbix.poll.baseline,
          onMaintenance: config.zabbix.poll.on_maintenance,
          onDisabled: config.zabbix.poll.on_disabled,
        }, nodeDigests)
      : undefined;
  return { store, intake, poller };
}
