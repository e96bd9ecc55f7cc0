import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { GlpiClient } from '../../src/adapters/glpi/client.js';
import type { TlsSettings } from '../../src/adapters/transport.js';
import { ZabbixApi } from '../../src/adapters/zabbix/api-client.js';
import { Secret } from '../../src/config/secret.js';
import { failure } from '../helpers/remote.js';

// Real sockets, no nock: what matters here is what leaves the process (and to which host).

interface Seen {
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
}

/** A server that records every request it receives and answers with `answer`. */
async function serve(answer: (req: http.IncomingMessage, res: http.ServerResponse) => void, tls?: { key: string; cert: string }): Promise<{ url: string; seen: Seen[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    req.resume();
    req.on('end', () => answer(req, res));
  };
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${tls ? 'https' : 'http'}://${tls ? 'localhost' : '127.0.0.1'}:${port}`,
    seen,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

function glpi(url: string, tls?: TlsSettings): GlpiClient {
  return new GlpiClient({
    url: `${url}/apirest.php`,
    appToken: new Secret('app-secret-123'),
    userToken: new Secret('user-secret-456'),
    username: '',
    password: new Secret(''),
    timeoutMs: 2000,
    logger: pino({ level: 'silent' }),
    externalId: 'off',
    ...(tls ? { tls } : {}),
  });
}

function zabbix(url: string, tls?: TlsSettings): ZabbixApi {
  return new ZabbixApi({ url: `${url}/api_jsonrpc.php`, token: new Secret('zbx-secret-token'), authMode: 'header', timeoutMs: 2000, logger: pino({ level: 'silent' }), ...(tls ? { tls } : {}) });
}

describe('redirects are never followed (they would carry the tokens to another host)', () => {
  it('GLPI: a redirect at login is a login failure naming the new location; the other host receives nothing', async () => {
    const elsewhere = await serve((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"session_token":"stolen"}'));
    const moved = await serve((req, res) => res.writeHead(302, { location: `${elsewhere.url}${req.url ?? ''}` }).end());
    try {
      const err = await failure(glpi(moved.url).open());
      expect(err.kind).toBe('login');
      expect(err.code).toBe('GLPI_REDIRECT');
      expect(err.message).toContain(`redirecting to ${elsewhere.url}/apirest.php/initSession`);
      expect(moved.seen).toHaveLength(1);
      expect(elsewhere.seen).toEqual([]);
    } finally {
      await moved.close();
      await elsewhere.close();
    }
  });

  it('GLPI: a redirect in the middle of a session does not carry Session-Token anywhere', async () => {
    const elsewhere = await serve((_req, res) => res.writeHead(201, { 'content-type': 'application/json' }).end('{"id":1}'));
    const glpiServer = await serve((req, res) => {
      if (req.url?.startsWith('/apirest.php/initSession')) return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"session_token":"sess-1","session":{"glpiID":7,"glpiname":"bridge"}}');
      res.writeHead(307, { location: `${elsewhere.url}/apirest.php/Ticket` }).end();
    });
    try {
      const err = await failure(glpi(glpiServer.url).addFollowup(42, 'text', { isPrivate: false }));
      expect(err.code).toBe('GLPI_REDIRECT');
      expect(err.message).toContain(elsewhere.url);
      expect(elsewhere.seen).toEqual([]);
    } finally {
      await glpiServer.close();
      await elsewhere.close();
    }
  });

  it('Zabbix: a redirect is a permanent error naming the new location; the Bearer token stays home', async () => {
    const elsewhere = await serve((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","result":[],"id":1}'));
    const moved = await serve((_req, res) => res.writeHead(301, { location: `${elsewhere.url}/zabbix/api_jsonrpc.php` }).end());
    try {
      const err = await failure(zabbix(moved.url).problems());
      expect(err.kind).toBe('permanent');
      expect(err.code).toBe('ZABBIX_REDIRECT');
      expect(err.message).toContain(`redirecting to ${elsewhere.url}/zabbix/api_jsonrpc.php`);
      expect(elsewhere.seen).toEqual([]);
    } finally {
      await moved.close();
      await elsewhere.close();
    }
  });
});

describe('TLS: ca_file and tls_insecure', () => {
  let dir: string;
  let cert: { key: string; cert: string };
  let caFile: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'zgb-tls-'));
    caFile = join(dir, 'ca.pem');
    const keyFile = join(dir, 'key.pem');
    // A self-signed certificate for localhost: its own CA.
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', caFile, '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'], { stdio: 'ignore' });
    cert = { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(caFile, 'utf8') };
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const rpc = (_req: http.IncomingMessage, res: http.ServerResponse) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","result":"7.0.22","id":1}');
  const session = (_req: http.IncomingMessage, res: http.ServerResponse) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"session_token":"s","session":{"glpiID":7,"glpiname":"bridge"}}');

  it('a certificate the system does not trust is refused (the tokens are never sent)', async () => {
    const server = await serve(session, cert);
    try {
      const err = await failure(glpi(server.url).open());
      expect(err.message).toMatch(/self[- ]signed|certificate/i);
      expect(server.seen).toEqual([]);
      const zerr = await failure(zabbix(server.url).version());
      expect(zerr.message).toMatch(/self[- ]signed|certificate/i);
    } finally {
      await server.close();
    }
  });

  it('ca_file makes the server trusted, for GLPI and for Zabbix', async () => {
    const g = await serve(session, cert);
    const z = await serve(rpc, cert);
    try {
      const client = glpi(g.url, { caFile });
      await client.open();
      expect(g.seen[0]?.headers['app-token']).toBe('app-secret-123');
      expect(await zabbix(z.url, { caFile }).version()).toBe('7.0.22');
    } finally {
      await g.close();
      await z.close();
    }
  });

  it('tls_insecure accepts any certificate', async () => {
    const z = await serve(rpc, cert);
    try {
      expect(await zabbix(z.url, { insecure: true }).version()).toBe('7.0.22');
    } finally {
      await z.close();
    }
  });
});
