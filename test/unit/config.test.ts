import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkConfigCommand } from '../../src/cli/check-config.js';
import { ConfigError, formatProblem, loadConfig } from '../../src/config/load.js';
import { ROOT } from '../helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'zgb-config-'));

function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

function problems(file: string, env: Record<string, string> = {}): string[] {
  try {
    loadConfig(file, env);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems.map(formatProblem);
    throw e;
  }
  throw new Error('expected the config to be rejected');
}

const MINIMAL = 'glpi:\n  url: http://glpi.local/apirest.php\n  user_token: t\n';

describe('loadConfig', () => {
  it('loads the shipped example with its rules file and environment', () => {
    const c = loadConfig(join(ROOT, 'config', 'bridge.example.yaml'), { GLPI_URL: 'https://glpi.example.org/apirest.php', GLPI_USER_TOKEN: 'u-token' });
    expect(c.glpi.url).toBe('https://glpi.example.org/apirest.php');
    expect(c.glpi.user_token.reveal()).toBe('u-token');
    expect(c.rules.categories.map((r) => r.name)).toEqual(['cpu', 'memory', 'disk', 'network', 'temperature']);
    expect(c.correlation.reopen_window).toBe(86_400_000);
    expect(Object.isFrozen(c.glpi)).toBe(true);
  });

  it('applies defaults to a minimal file', () => {
    const c = loadConfig(write('minimal.yaml', MINIMAL), {});
    expect(c).toMatchObject({ listen: '127.0.0.1:8088', webhook: { path: '/zabbix/webhook', body_limit: 262144 }, correlation: { fingerprint: ['host', 'trigger'], hold_down: 0 } });
    expect(c.rules.fallback.name).toBe('other');
  });

  it('reads secrets from VAR_FILE and from $CREDENTIALS_DIRECTORY', () => {
    const secretFile = write('token.txt', 'from-file\n');
    write('GLPI_APP_TOKEN', 'from-credentials\n');
    const file = write('secrets.yaml', 'glpi:\n  url: http://g/apirest.php\n  user_token: ${GLPI_USER_TOKEN}\n  app_token: ${GLPI_APP_TOKEN}\n');
    const c = loadConfig(file, { GLPI_USER_TOKEN_FILE: secretFile, CREDENTIALS_DIRECTORY: dir });
    expect(c.glpi.user_token.reveal()).toBe('from-file');
    expect(c.glpi.app_token.reveal()).toBe('from-credentials');
    expect(JSON.stringify(c.glpi)).not.toContain('from-file');
    expect(String(c.glpi.user_token)).toBe('<secret>');
  });

  it.each([
    ['unknown key', `${MINIMAL}  colour: blue\n`, /:4: glpi\.colour: unknown key/],
    ['wrong type with line number', `${MINIMAL}  max_concurrency: many\n`, /:4: glpi\.max_concurrency: .*number/],
    ['bad duration', `${MINIMAL}correlation:\n  hold_down: 5 minutes\n`, /correlation\.hold_down: "5 minutes" is not a duration/],
    ['missing GLPI credentials', 'glpi:\n  url: http://g/apirest.php\n', /glpi\.user_token: set user_token, or username and password/],
    ['missing environment variable', 'glpi:\n  url: ${GLPI_URL}\n  user_token: t\n', /glpi\.url: environment variable GLPI_URL is not set/],
    ['YAML syntax, with its line', 'listen: x\nglpi: [unclosed\n', /case-[a-z0-9]+\.yaml:3: \(top level\): YAML syntax: Flow sequence/],
    ['bad listen', `${MINIMAL}listen: "localhost"\n`, /:4: listen: use host:port/],
    ['listen given as a number', `${MINIMAL}listen: 8088\n`, /:4: listen: .*expected string/],
    ['unknown fingerprint field', `${MINIMAL}correlation:\n  fingerprint: [host, colour]\n`, /correlation\.fingerprint\[1\]: use host/],
    ['rule: unknown severity', `${MINIMAL}rules:\n  severities:\n    critical: { urgency: 5 }\n`, /rules\.severities\.critical/],
    ['rule: urgency out of range', `${MINIMAL}rules:\n  categories:\n    - name: cpu\n      glpi: { urgency: 9 }\n`, /:7: rules\.categories\[0\]\.glpi\.urgency/],
    ['rule: bad regex', `${MINIMAL}rules:\n  categories:\n    - name: cpu\n      match: { item_key: ["/(/"] }\n`, /rules\.categories\[0\]\.match\.item_key\[0\]: invalid pattern/],
    ['rule: threshold with a bad unit value', `${MINIMAL}rules:\n  categories:\n    - name: cpu\n      thresholds: [{ above: "lots", severity: high }]\n`, /rules\.categories\[0\]\.thresholds\[0\]\.above: "lots" is not a number/],
    ['rule: duplicate category', `${MINIMAL}rules:\n  categories:\n    - name: cpu\n    - name: cpu\n`, /rules\.categories\[1\]\.name: category "cpu" already defined/],
    ['rule: unknown template placeholder', `${MINIMAL}rules:\n  templates:\n    title: "{{hostname}}"\n`, /rules\.templates\.title: unknown placeholder \{\{hostname\}\}/],
  ])('%s', (_name, text, expected) => {
    const found = problems(write(`case-${Math.random().toString(36).slice(2)}.yaml`, text));
    expect(found.join('\n')).toMatch(expected);
  });

  it('reports every problem at once, rules file included', () => {
    write('bad-rules.yaml', 'categories:\n  - name: Bad Name\n    glpi: { impact: 0 }\n');
    const found = problems(write('many.yaml', 'listen: nope\nglpi:\n  url: ftp://x\n  user_token: t\nrules_file: bad-rules.yaml\n'));
    expect(found.length).toBeGreaterThanOrEqual(4);
    expect(found.join('\n')).toMatch(/many\.yaml:1: listen/);
    expect(found.join('\n')).toMatch(/bad-rules\.yaml:2: categories\[0\]\.name/);
    expect(found.join('\n')).toMatch(/bad-rules\.yaml:3: categories\[0\]\.glpi\.impact/);
  });
});

describe('glpi.api: v2 (GLPI 11 high-level API, OAuth2 password grant)', () => {
  const V2 = 'glpi:\n  api: v2\n  url: https://glpi.example.org/api.php/v2\n  client_id: ${GLPI_CLIENT_ID}\n  client_secret: ${GLPI_CLIENT_SECRET}\n  username: glpi-bridge\n  password: ${GLPI_PASSWORD}\n';

  it('loads the OAuth client and the bridge user, secrets from files like every secret', () => {
    const secretFile = write('client-secret.txt', 'the-client-secret\n');
    const c = loadConfig(write('v2.yaml', V2), { GLPI_CLIENT_ID: 'bridge-client', GLPI_CLIENT_SECRET_FILE: secretFile, GLPI_PASSWORD: 'pw' });
    expect(c.glpi.api).toBe('v2');
    expect(c.glpi.client_id.reveal()).toBe('bridge-client');
    expect(c.glpi.client_secret.reveal()).toBe('the-client-secret');
    expect(JSON.stringify(c.glpi)).not.toContain('the-client-secret');
  });

  it('takes GLPI\'s root address too (the adapter calls <root>/api.php/token and <root>/api.php/v2/…)', () => {
    const c = loadConfig(write('v2-root.yaml', V2.replace('/api.php/v2', '/glpi')), { GLPI_CLIENT_ID: 'c', GLPI_CLIENT_SECRET: 's', GLPI_PASSWORD: 'p' });
    expect(c.glpi.url).toBe('https://glpi.example.org/glpi');
  });

  it('defaults to the legacy API', () => {
    expect(loadConfig(write('v1-default.yaml', MINIMAL), {}).glpi.api).toBe('v1');
  });

  it.each([
    ['every OAuth2 credential missing', 'glpi:\n  api: v2\n  url: https://g/api.php/v2\n', [/glpi\.client_id: is required with api: v2/, /glpi\.client_secret: is required/, /glpi\.username: is required/, /glpi\.password: is required/]],
    ['a v1 user token given to v2', `${V2}  user_token: t\n`, [/:8: glpi\.user_token: is used by api: v1 only/]],
    ['a v2 URL with api: v1', 'glpi:\n  url: https://g/api.php/v2\n  user_token: t\n', [/:2: glpi\.url: is the v2 API .* but api is v1/]],
    ['OAuth client given to v1', `${MINIMAL}  client_id: x\n`, [/:4: glpi\.client_id: is used by api: v2 only/]],
  ])('refuses %s, naming the key and its line', (_name, text, expected) => {
    const found = problems(write(`v2-${Math.random().toString(36).slice(2)}.yaml`, text), { GLPI_CLIENT_ID: 'c', GLPI_CLIENT_SECRET: 's', GLPI_PASSWORD: 'p' }).join('\n');
    for (const e of expected) expect(found).toMatch(e);
  });
});

describe('zabbix.frontend_url (links in ticket bodies)', () => {
  it('defaults to the API URL\'s folder, where the frontend serves the API; an explicit one wins; no Zabbix at all: no links', async () => {
    const { zabbixFrontendUrl } = await import('../../src/composition/from-config.js');
    const api = loadConfig(write('fe-api.yaml', `${MINIMAL}zabbix:\n  url: https://zbx.example.org/zabbix/api_jsonrpc.php\n  api_token: z-token\n`), {});
    expect(zabbixFrontendUrl(api)).toBe('https://zbx.example.org/zabbix/');
    const own = loadConfig(write('fe-own.yaml', `${MINIMAL}zabbix:\n  url: http://127.0.0.1/zabbix/api_jsonrpc.php\n  api_token: z-token\n  frontend_url: https://zabbix.example.org/\n`), {});
    expect(zabbixFrontendUrl(own)).toBe('https://zabbix.example.org/');
    expect(zabbixFrontendUrl(loadConfig(write('fe-none.yaml', MINIMAL), {}))).toBeUndefined();
  });

  it('refuses a frontend URL that is not http(s), naming the key', () => {
    expect(problems(write('fe-bad.yaml', `${MINIMAL}zabbix:\n  frontend_url: "javascript:alert(1)"\n`)).join('\n')).toMatch(/:5: zabbix\.frontend_url: must be an http\(s\) URL/);
  });
});

describe('zabbix.poll scope', () => {
  const EXAMPLE = join(ROOT, 'config', 'bridge.example.yaml');

  it('the example config takes its host groups from ZABBIX_POLL_HOST_GROUPS (comma-separated); unset: no restriction', () => {
    const scoped = loadConfig(EXAMPLE, { ZABBIX_POLL_HOST_GROUPS: 'Linux servers, Databases ,,' });
    expect(scoped.zabbix.poll.host_groups).toEqual(['Linux servers', 'Databases']);
    expect(loadConfig(EXAMPLE, {}).zabbix.poll.host_groups).toEqual([]);
  });

  it('host_groups is a list or a comma-separated string; baseline is skip unless set to import', () => {
    const list = loadConfig(write('poll-list.yaml', `${MINIMAL}zabbix:\n  poll:\n    host_groups: [Linux servers]\n`), {});
    expect(list.zabbix.poll).toMatchObject({ host_groups: ['Linux servers'], baseline: 'skip' });
    const text = loadConfig(write('poll-text.yaml', `${MINIMAL}zabbix:\n  poll:\n    host_groups: "Linux servers,Databases"\n    baseline: import\n`), {});
    expect(text.zabbix.poll).toMatchObject({ host_groups: ['Linux servers', 'Databases'], baseline: 'import' });
  });

  it.each([
    ['unknown baseline mode', `${MINIMAL}zabbix:\n  poll:\n    baseline: all\n`, /:6: zabbix\.poll\.baseline: .*"skip"/],
    ['host group that is not a name', `${MINIMAL}zabbix:\n  poll:\n    host_groups: [Linux, 7]\n`, /zabbix\.poll\.host_groups/],
  ])('%s', (_name, text, expected) => {
    expect(problems(write(`poll-${Math.random().toString(36).slice(2)}.yaml`, text)).join('\n')).toMatch(expected);
  });
});

describe('check-config warnings about the poll scope', () => {
  const ZBX = '  url: http://zabbix.local/api_jsonrpc.php\n  api_token: z\n';
  async function check(text: string): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const file = write(`check-${Math.random().toString(36).slice(2)}.yaml`, text);
    const code = await checkConfigCommand(file, false, { write: (s: string) => (out += s) } as unknown as NodeJS.WritableStream, { write: (s: string) => (err += s) } as unknown as NodeJS.WritableStream);
    return { code, out, err };
  }

  it('polling with no host groups and baseline: import warns that the first sweep tickets every open problem; exit 0', async () => {
    const r = await check(`${MINIMAL}zabbix:\n${ZBX}  poll:\n    baseline: import\n`);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/warning: .*zabbix\.poll: .*baseline: import.*first sweep opens a GLPI ticket for every problem open in Zabbix/);
    expect(r.err).toContain('ZABBIX_POLL_HOST_GROUPS');
  });

  it('polling with no host groups (baseline: skip) warns that any new problem becomes a ticket', async () => {
    const r = await check(`${MINIMAL}zabbix:\n${ZBX}`);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/warning: .*zabbix\.poll: no host_groups scope/);
    expect(r.out).toMatch(/Zabbix polling .*every host group.*baseline skip/);
  });

  it.each([
    ['a host group scope', `${MINIMAL}zabbix:\n${ZBX}  poll:\n    host_groups: Linux servers\n`],
    ['polling off', `${MINIMAL}zabbix:\n${ZBX}  poll:\n    enabled: false\n`],
    ['no Zabbix API (webhook only)', MINIMAL],
  ])('no warning with %s', async (_name, text) => {
    const r = await check(text);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
  });
});

describe('secrets, tokens and remote addresses (hostile or careless configuration)', () => {
  it.each([
    ['GLPI URL with user:password@', 'glpi:\n  url: http://admin:hunter2@glpi.local/apirest.php\n  user_token: t\n', /:2: glpi\.url: must not carry user:password@/],
    ['Zabbix URL with user@', `${MINIMAL}zabbix:\n  url: https://api@zabbix.local/api_jsonrpc.php\n  api_token: z\n`, /zabbix\.url: must not carry user:password@/],
    ['a webhook token shorter than 16 characters', `${MINIMAL}webhook:\n  token: short-token\n`, /webhook\.token: too short: .*at least 16 characters/],
    ['an admin token shorter than 16 characters', `${MINIMAL}admin:\n  token: admin\n`, /admin\.token: too short/],
    ['a CA file that does not exist', `${MINIMAL}  ca_file: missing-ca.pem\n`, /:4: glpi\.ca_file: .*missing-ca\.pem cannot be read: ENOENT/],
    ['a CA file without a certificate', `${MINIMAL}  ca_file: not-a-ca.pem\n`, /glpi\.ca_file: .*not-a-ca\.pem holds no PEM certificate/],
    ['a request timeout shorter than the header timeout', `${MINIMAL}webhook:\n  request_timeout: 5s\n  header_timeout: 10s\n`, /webhook\.header_timeout: must not be longer than request_timeout/],
  ])('%s', (_name, text, expected) => {
    write('not-a-ca.pem', 'hello\n');
    const found = problems(write(`sec-${Math.random().toString(36).slice(2)}.yaml`, text));
    expect(found.join('\n')).toMatch(expected);
    expect(found.join('\n')).not.toContain('hunter2');
  });

  it('an empty token file is an error naming the file, through VAR_FILE and through $CREDENTIALS_DIRECTORY', () => {
    const empty = write('empty-token', '\n');
    const file = write('empty-secret.yaml', 'glpi:\n  url: http://g/apirest.php\n  user_token: ${GLPI_USER_TOKEN}\n');
    expect(problems(file, { GLPI_USER_TOKEN_FILE: empty }).join('\n')).toMatch(/glpi\.user_token: GLPI_USER_TOKEN_FILE=.*empty-token is empty/);
    const creds = mkdtempSync(join(tmpdir(), 'zgb-creds-'));
    writeFileSync(join(creds, 'GLPI_USER_TOKEN'), '');
    expect(problems(file, { CREDENTIALS_DIRECTORY: creds }).join('\n')).toMatch(/credential .*GLPI_USER_TOKEN is empty/);
  });

  it('resolves ca_file against the configuration file and accepts a token of 16 characters', () => {
    write('ca-ok.pem', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const c = loadConfig(write('tls-ok.yaml', `${MINIMAL}  ca_file: ca-ok.pem\n  tls_insecure: false\nwebhook:\n  token: 0123456789abcdef\n`), {});
    expect(c.glpi.ca_file).toBe(join(dir, 'ca-ok.pem'));
    expect(c.webhook.token.reveal()).toHaveLength(16);
    expect(c.admin.token.empty).toBe(true);
    expect(c.metrics.auth).toBe(false);
  });

  it('check-config says why a short webhook token is refused, and never prints the token', async () => {
    let out = '';
    let err = '';
    const file = write('short-token.yaml', `${MINIMAL}webhook:\n  token: \${BRIDGE_WEBHOOK_TOKEN}\n`);
    const previous = process.env.BRIDGE_WEBHOOK_TOKEN;
    process.env.BRIDGE_WEBHOOK_TOKEN = 'tiny-secret';
    try {
      const code = await checkConfigCommand(file, false, { write: (s: string) => (out += s) } as unknown as NodeJS.WritableStream, { write: (s: string) => (err += s) } as unknown as NodeJS.WritableStream);
      expect(code).toBe(1);
    } finally {
      if (previous === undefined) delete process.env.BRIDGE_WEBHOOK_TOKEN;
      else process.env.BRIDGE_WEBHOOK_TOKEN = previous;
    }
    expect(`${out}${err}`).toMatch(/webhook\.token: too short/);
    expect(`${out}${err}`).not.toContain('tiny-secret');
  });
});
