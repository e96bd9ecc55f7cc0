/**
 * The `store` section's choice of backend, and how store.postgres becomes a connection: what an operator
 * writes, what reaches pg, and what is never printed.
 */
import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadStoreBackend, openToolStore, pgConnection, postgres, storeLabel } from '../../src/composition/store.js';
import { ConfigError, formatProblem, loadConfig } from '../../src/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'zgb-store-config-'));
const MINIMAL = 'glpi:\n  url: http://glpi.local/apirest.php\n  user_token: t\n';
const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

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

describe('store.backend', () => {
  it('is sqlite unless chosen: nothing changes for a one-node user', () => {
    const c = loadConfig(write('default.yaml', MINIMAL), {});
    expect(c.store.backend).toBe('sqlite');
    expect(storeLabel(c)).toBe(join(c.data_dir, 'bridge.db'));
  });

  it('postgres: the URL, the password from the environment or a file (never in the URL), timeouts and TLS reach the connection', () => {
    write('pg-ca.pem', CA);
    write('pg-password', 's3cret\n');
    const file = write(
      'pg.yaml',
      `${MINIMAL}store:\n  backend: postgres\n  postgres:\n    url: postgresql://bridge@db.example.org:5433/bridge\n    password: \${PGPASSWORD}\n    statement_timeout: 10s\n    connect_timeout: 2s\n    sslmode: verify-full\n    ca_file: pg-ca.pem\n`,
    );
    const c = loadConfig(file, { PGPASSWORD_FILE: join(dir, 'pg-password') });
    expect(c.store.backend).toBe('postgres');
    expect(String(c.store.postgres.password)).toBe('<secret>');
    expect(pgConnection(c)).toEqual({
      connectionString: 'postgresql://bridge@db.example.org:5433/bridge',
      password: 's3cret',
      ssl: { mode: 'verify-full', ca: CA },
      connectionTimeoutMillis: 2000,
      statement_timeout: 10_000,
      query_timeout: 12_000,
      application_name: 'zabbix-glpi-bridge',
    });
    expect(storeLabel(c)).toBe('postgresql://bridge@db.example.org:5433/bridge');
  });

  it('postgres without a URL leaves the connection to the PG* environment variables, without TLS unless asked', () => {
    const c = loadConfig(write('pg-env.yaml', `${MINIMAL}store:\n  backend: postgres\n`), {});
    const conn = pgConnection(c);
    expect(conn.connectionString).toBeUndefined();
    expect(conn.password).toBeUndefined();
    expect(conn.ssl).toBeUndefined();
    expect(conn.connectionTimeoutMillis).toBe(5000);
    expect(conn.statement_timeout).toBe(30_000);
  });

  it('refuses a password in the URL (it would be logged), another scheme, and an unknown sslmode or backend', () => {
    const file = write('pg-bad.yaml', `${MINIMAL}store:\n  backend: postgres\n  postgres:\n    url: postgresql://bridge:hunter2@db/bridge\n    sslmode: prefer\n`);
    const found = problems(file);
    expect(found).toEqual(
      expect.arrayContaining([expect.stringMatching(/store\.postgres\.url: must not carry a password/), expect.stringMatching(/store\.postgres\.sslmode: /)]),
    );
    expect(found.join('\n')).not.toContain('hunter2');
    expect(problems(write('pg-scheme.yaml', `${MINIMAL}store:\n  postgres:\n    url: mysql://db/bridge\n`))).toEqual([expect.stringMatching(/store\.postgres\.url: must be a postgresql:/)]);
    expect(problems(write('pg-backend.yaml', `${MINIMAL}store:\n  backend: mysql\n`))).toEqual([expect.stringMatching(/store\.backend: /)]);
  });

  it('loads the PostgreSQL store only for store.backend postgres, and says so when a store is opened before it was loaded', async () => {
    const pg = loadConfig(write('pg-lazy.yaml', `${MINIMAL}store:\n  backend: postgres\n  postgres:\n    url: postgresql://bridge@127.0.0.1:1/bridge\n`), {});
    expect(() => openToolStore(pg)).toThrow('store.backend is postgres, but the PostgreSQL store was not loaded: loadStoreBackend(config) must run before a store is opened');
    await loadStoreBackend(loadConfig(write('sqlite-lazy.yaml', `${MINIMAL}data_dir: ${JSON.stringify(dir)}\n`), {}));
    expect(() => postgres()).toThrow(/not loaded/);
    await loadStoreBackend(pg);
    expect(typeof postgres().PostgresStore).toBe('function');
  });
});
