import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';

/** The webhook token: configured, or generated once into the data directory (mode 0600) and reused. */
export function webhookToken(c: Config, logger: Logger): string {
  if (!c.webhook.token.empty) return c.webhook.token.reveal();
  const file = join(c.data_dir, 'webhook-token');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(c.data_dir, { recursive: true });
  writeFileSync(file, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  logger.warn({ file }, 'no webhook.token configured: generated one; put it in the Zabbix media type (bridge_token)');
  return readFileSync(file, 'utf8').trim();
}

/** The admin token; empty (admin endpoints off) when it is not set, or when it is the webhook token (that one is in every Zabbix media type). */
export function adminToken(c: Config, webhook: string, logger: Logger): string {
  const admin = c.admin.token.reveal();
  if (admin !== '' && admin === webhook) {
    logger.error({ code: 'BRIDGE_ADMIN_DISABLED' }, 'admin.token is the webhook token: admin endpoints stay off until it is a token of its own');
    return '';
  }
  return admin;
}
