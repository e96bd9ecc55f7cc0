import { readFileSync } from 'node:fs';
import type { AgentOptions } from 'node:https';

/** How the bridge checks a remote server's certificate. */
export interface TlsSettings {
  /** PEM file of the CA(s) that sign the server's certificate; empty or absent: the system's. */
  readonly caFile?: string;
  /** Accept any certificate (testing only). */
  readonly insecure?: boolean;
}

/** https.Agent options for the settings: the CA file is read once, when the client is built. */
export function tlsAgentOptions(tls: TlsSettings | undefined): Pick<AgentOptions, 'ca' | 'rejectUnauthorized'> {
  return {
    ...(tls?.caFile ? { ca: readFileSync(tls.caFile, 'utf8') } : {}),
    ...(tls?.insecure ? { rejectUnauthorized: false } : {}),
  };
}

/**
 * Redirects are never followed: axios would carry App-Token, Session-Token or
 * the Zabbix Bearer token to whatever host the Location names. The message
 * names the new location so that the operator can fix the configured URL.
 */
export function redirectMessage(service: 'GLPI' | 'Zabbix API', status: number, location: unknown): string {
  const where = typeof location === 'string' && location !== '' ? location.replace(/\/\/[^/@]*@/, '//') : '(no Location header)';
  return `${service} answered ${status} redirecting to ${where}; redirects are not followed (they would carry the tokens to another address): set the URL to the final address`;
}

export function isRedirect(status: number): boolean {
  return status >= 300 && status < 400 && status !== 304;
}
