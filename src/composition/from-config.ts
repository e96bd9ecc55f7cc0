import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { GlpiClient } from '../adapters/glpi/client.js';
import type { GlpiConnection } from '../adapters/glpi/connection.js';
import { GlpiV2Client } from '../adapters/glpi/v2/client.js';
import { ZabbixApi } from '../adapters/zabbix/api-client.js';
import { nodeDigests } from '../adapters/digests.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { DispatcherOptions } from '../services/dispatcher.js';
import type { NameSettings } from '../services/glpi-names.js';
/** For the CLI (explain --online), which reaches services through the composition only. */
export { describeResolution, NameResolver } from '../services/glpi-names.js';
import type { ProcessingSettings } from '../core/assess.js';
import { frontendUrlOf } from '../core/render.js';

// Adapters and settings built from a configuration; shared by the main thread, the processing thread and the CLI.

/** The GLPI client the configuration describes: the legacy REST API (v1) or GLPI 11's high-level API (v2). */
export function glpiClient(c: Config, logger: Logger, metrics?: Metrics): GlpiConnection {
  if (c.glpi.tls_insecure) warnInsecure(logger, 'glpi', c.glpi.url);
  const common = {
    url: c.glpi.url,
    username: c.glpi.username,
    password: c.glpi.password,
    timeoutMs: c.glpi.timeout,
    pendingFollowups: c.glpi.pending_followups,
    tls: { caFile: c.glpi.ca_file, insecure: c.glpi.tls_insecure },
    logger,
    ...(metrics ? { metrics } : {}),
  };
  if (c.glpi.api === 'v2') return new GlpiV2Client({ ...common, clientId: c.glpi.client_id, clientSecret: c.glpi.client_secret });
  return new GlpiClient({
    ...common,
    appToken: c.glpi.app_token,
    userToken: c.glpi.user_token,
    externalId: c.glpi.externalid,
    userTokenInQuery: c.glpi.user_token_in_query,
  });
}

/** The Zabbix API client, when zabbix.url is set. */
export function zabbixApi(c: Config, logger: Logger): ZabbixApi | undefined {
  if (c.zabbix.url === '') return undefined;
  if (c.zabbix.tls_insecure) warnInsecure(logger, 'zabbix', c.zabbix.url);
  return new ZabbixApi({ url: c.zabbix.url, token: c.zabbix.api_token, authMode: c.zabbix.auth, timeoutMs: c.zabbix.timeout, tls: { caFile: c.zabbix.ca_file, insecure: c.zabbix.tls_insecure }, logger });
}

/** Certificate checks off: anyone on the path can read the tokens. Said loudly, at every start. */
function warnInsecure(logger: Logger, section: 'glpi' | 'zabbix', url: string): void {
  logger.warn({ code: 'TLS_INSECURE', url }, `${section}.tls_insecure is true: the server's certificate is NOT checked, so anyone on the network path can read and change the bridge's requests and tokens; use ${section}.ca_file instead`);
}

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
