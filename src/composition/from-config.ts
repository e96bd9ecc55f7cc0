import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { nodeDigests } from '../adapters/digests.js';
import type { DispatcherOptions } from '../services/dispatcher.js';
import type { NameSettings } from '../services/glpi-names.js';
/** For the CLI (explain --online), which reaches services through the composition only. */
export { describeResolution, NameResolver } from '../services/glpi-names.js';
import type { ProcessingSettings } from '../core/assess.js';
import { frontendUrlOf } from '../core/render.js';

// Settings built from a configuration; shared by the main thread, the processing thread and the CLI. The network
// clients are clients.ts: the main thread loads them (axios and both GLPI clients) only when it polls Zabbix.

/** Where ticket bodies link to: zabbix.frontend_url, else the API URL's folder (Zabbix's frontend serves the API); undefined: no links. */
export function zabbixFrontendUrl(c: Config): string | undefined {
  return c.zabbix.frontend_url !== '' ? c.zabbix.frontend_url : frontendUrlOf(c.zabbix.url);
}

/** `markerKey`: the install's secret (adapters/marker-key.ts). */
export function processingSettings(c: Config, markerKey: string): ProcessingSettings {
  return {
    rules: c.rules,
    fingerprintFields: c.correlation.fingerprint,
    coalesceWindowMs: c.correlation.coalesce_window,
    policy: {
      holdDownMs: c.correlation.hold_down,
      reopenWindowMs: c.correlation.reopen_window,
      recovery: c.glpi.recovery,
      followupPrivate: c.glpi.followup_private,
      writeBackPrefix: c.zabbix.write_back_prefix,
      markerKey,
      digests: nodeDigests,
      zabbixFrontendUrl: zabbixFrontendUrl(c),
    },
  };
}

/** The dispatcher's settings from the configuration (the write-back and the processor's hooks are added where they live). */
export function dispatcherOptions(c: Config): DispatcherOptions {
  return {
    concurrency: c.glpi.max_concurrency,
    quickRetries: c.retry.attempts,
    quickMinDelayMs: c.retry.min_delay,
    quickMaxDelayMs: c.retry.max_delay,
    minDelayMs: c.retry.min_delay,
    backoffCapMs: c.retry.backoff_cap,
    solutionTypeId: c.glpi.solution_type_id,
    recoveryFallback: c.glpi.recovery_fallback,
  };
}

/** How names and assets are looked up in GLPI (services/glpi-names.ts). */
export function nameSettings(c: Config): NameSettings {
  return { ttlMs: c.glpi.lookup_ttl, assets: { enabled: c.assets.enabled, itemtypes: c.assets.itemtypes, by: c.assets.by, map: c.assets.map } };
}

export function storeFile(c: Config): string {
  return join(c.data_dir, c.store.file);
}
