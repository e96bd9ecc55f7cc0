import type { ReadinessCheck } from '../adapters/http/server.js';
import type { ClusterSummary } from '../adapters/http/status/summary.js';
import { clusterCheck } from './cluster.js';
import type { Clock, QueueStats } from '../core/ports.js';
import type { ProcessingStatus } from './processing.js';

/** A queue whose oldest job waits longer than this is reported as stuck by /readyz. */
const STUCK_AFTER_MS = 15 * 60_000;
/** /readyz writes to the store at most this often; a webhook committed within it stands for the check. */
export const WRITE_CHECK_EVERY_MS = 30_000;

/** What /readyz says of a failed GLPI login: our code and GLPI's (ERROR_…), never GLPI's text. */
export function loginFailedDetail(lastLoginError: string | undefined): string {
  const glpiCode = /\bERROR_[A-Z0-9_]{1,60}\b/.exec(lastLoginError ?? '')?.[0];
  return `GLPI_LOGIN_FAILED${glpiCode ? ` (${glpiCode})` : ''}: see the log`;
}

export interface ReadinessSources {
  readonly clock: Clock;
  /** A write to the inbox (throws when it cannot be written). */
  readonly checkWritable: (now: number) => void;
  /** Why the intake's last commit failed, until the next one succeeds. */
  readonly storeError: () => string | undefined;
  readonly processing: () => { status(): Promise<ProcessingStatus | undefined>; readonly exitReason: string | undefined } | undefined;
  readonly poller: () => { readonly lastError: string | undefined; readonly lastSuccessAt: number | undefined } | undefined;
  readonly stopping: () => boolean;
  /** Several bridges on one PostgreSQL: this node's name and roles (composition/cluster.ts clusterSummary); undefined with SQLite. */
  readonly cluster?: () => ClusterSummary | undefined;
}

/**
 * /readyz: the store, the GLPI session, the queue, the intake, (for
 * information) the poller, and on PostgreSQL the cluster: this node's name and
 * the roles it holds (not ok when another bridge took its name). Probes do not write: the last commit, or a write
 * check made at most every WRITE_CHECK_EVERY_MS, answers for the store.
 * `committed()` records a commit (it proves the inbox writable).
 */
export function readinessProbe(src: ReadinessSources): { check(): Promise<Record<string, ReadinessCheck>>; committed(): void; verifyNow(): void } {
  let writeCheck: { at: number; error?: string } = { at: Number.NEGATIVE_INFINITY };
  const verify = (now: number) => {
    try {
      src.checkWritable(now);
      writeCheck = { at: now };
    } catch (e) {
      writeCheck = { at: now, error: (e as Error).message };
    }
  };
  return {
    committed: () => {
      writeCheck = { at: src.clock.now() };
    },
    verifyNow: () => verify(src.clock.now()),
    async check() {
      const now = src.clock.now();
      if (now - writeCheck.at >= WRITE_CHECK_EVERY_MS) verify(now);
      const storeError = src.storeError();
      const store: ReadinessCheck = storeError
        ? { ok: false, detail: `last commit failed: ${storeError}` }
        : writeCheck.error !== undefined
          ? { ok: false, detail: `not writable: ${writeCheck.error}` }
          : { ok: true, detail: 'writable' };
      const processing = src.processing();
      const status = await processing?.status();
      const glpi: ReadinessCheck = !status
        ? { ok: false, detail: 'the processing thread does not answer' }
        : status.session === 'login_failed'
          ? { ok: false, detail: loginFailedDetail(status.lastLoginError) }
          : { ok: true, detail: `session ${status.session}` };
      // Read by the processing side. A store that cannot be read (PostgreSQL unreachable) is reported, not a 500.
      const stats: QueueStats | undefined = status?.queue.ok ? status.queue.stats : undefined;
      const statsError = !status ? 'the processing thread does not answer' : status.queue.ok ? '' : status.queue.error;
      const age = stats?.oldestPendingAt !== undefined ? now - stats.oldestPendingAt : 0;
      const stopping = src.stopping();
      const queue: ReadinessCheck =
        processing?.exitReason !== undefined && !stopping
          ? { ok: false, detail: `processing thread ${processing.exitReason}` }
          : !stats
            ? { ok: false, detail: `cannot read the queue: ${statsError}` }
            : age > STUCK_AFTER_MS
              ? { ok: false, detail: `oldest job waiting ${Math.round(age / 1000)} s (${stats.pending} pending, ${stats.dead} dead)` }
              : { ok: true, detail: `${stats.pending} pending, ${stats.running} running, ${stats.dead} dead` };
      const checks: Record<string, ReadinessCheck> = { store, glpi, queue, intake: stopping ? { ok: false, detail: 'stopping' } : { ok: true, detail: 'accepting' } };
      // Informational: the webhook keeps working while the Zabbix API is unreachable.
      const poller = src.poller();
      const cluster = src.cluster?.();
      if (cluster) checks.cluster = clusterCheck(cluster);
      if (poller) checks.zabbix_poll = { ok: true, detail: poller.lastError ? `last sweep failed: ${poller.lastError}` : poller.lastSuccessAt ? `last sweep ${new Date(poller.lastSuccessAt).toISOString()}` : 'no sweep yet' };
      return checks;
    },
  };
}
