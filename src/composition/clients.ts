import type { GlpiConnection } from '../adapters/glpi/connection.js';
import { GlpiClient } from '../adapters/glpi/client.js';
import { GlpiV2Client } from '../adapters/glpi/v2/client.js';
import { ZabbixApi } from '../adapters/zabbix/api-client.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

// The GLPI and Zabbix clients a configuration describes: the processing thread's and the CLI's. The daemon's main
// thread imports this module only when it polls Zabbix (composition/intake.ts): axios and the GLPI clients are
// megabytes of heap in a thread that only answers webhooks otherwise (issue 16).

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
