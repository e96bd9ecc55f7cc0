/**
 * A real PostgreSQL for tests. When ZGB_TEST_PG_URL is set (`.ci/run` starts one cluster for the whole run),
 * it is used; otherwise a private cluster is started for this test file (Debian's postgresql 15 binaries,
 * run as the `postgres` OS user when the tests run as root): a scratch data directory under the temp
 * folder, a free port on 127.0.0.1, its unix socket in the data directory, trust authentication; stopped
 * when the file's tests end. Each test gets a fresh database, created from a template that is already
 * migrated (CREATE DATABASE … TEMPLATE is fast).
 *
 * Everything is synchronous (execFileSync, and SyncPg for SQL): the contract suites open stores
 * synchronously.
 */
import { afterAll, afterEach, beforeAll } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { chownSync, cpSync, existsSync, mkdtempSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrate, SyncPg, type PgConnectionConfig } from '../../src/adapters/store/postgres/index.js';
import { FakeGlpi } from '../../src/glpi-fake/server.js';
import { FakeZabbix } from './fake-zabbix.js';

const BIN = process.env.ZGB_TEST_PG_BIN ?? '/usr/lib/postgresql/15/bin';
/** An initdb'd data directory, copied for each cluster (initdb takes seconds; a copy, milliseconds). */
const INITDB_CACHE = join(tmpdir(), 'zgb-pg15-initdb');

const asRoot = process.getuid?.() === 0;

/** Run a PostgreSQL binary, as `postgres` when we are root (PostgreSQL refuses to run as root). */
function pgBin(name: string, args: readonly string[]): string {
  const cmd = join(BIN, name);
  return asRoot ? execFileSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) : execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function ownedByPostgres(path: string): void {
  if (!asRoot) return;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  chownSync(path, uid, gid);
}

/** A port free right now on 127.0.0.1 (asked of the kernel in a child process: this must stay synchronous). */
function freePort(): number {
  const code = "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{process.stdout.write(String(s.address().port));s.close();});";
  return Number(execFileSync(process.execPath, ['-e', code], { encoding: 'utf8' }).trim());
}

function initdbCache(): string {
  if (existsSync(join(INITDB_CACHE, 'PG_VERSION'))) return INITDB_CACHE;
  if (!existsSync(join(BIN, 'initdb'))) {
    throw new Error(`the PostgreSQL store's tests need PostgreSQL's server binaries in ${BIN} (Debian: apt-get install postgresql), or ZGB_TEST_PG_BIN, or a server in ZGB_TEST_PG_URL`);
  }
  const scratch = mkdtempSync(join(tmpdir(), 'zgb-pg-initdb-'));
  ownedByPostgres(scratch);
  pgBin('initdb', ['-D', scratch, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C.UTF-8']);
  try {
    renameSync(scratch, INITDB_CACHE);
  } catch {
    rmSync(scratch, { recursive: true, force: true }); // another test file made it first
  }
  return INITDB_CACHE;
}

/** A private cluster: its data directory, port, and how to stop or start it again. */
export class PgCluster {
  readonly port: number;
  #running = false;

  constructor(readonly dataDir: string) {
    this.port = freePort();
  }

  static create(): PgCluster {
    const dir = mkdtempSync(join(tmpdir(), 'zgb-pg-'));
    ownedByPostgres(dir);
    const data = join(dir, 'data');
    cpSync(initdbCache(), data, { recursive: true });
    if (asRoot) execFileSync('chown', ['-R', 'postgres:postgres', dir]);
    execFileSync('chmod', ['700', data]);
    const c = new PgCluster(data);
    c.start();
    return c;
  }

  start(): void {
    // fsync off: a test cluster dies with its data; the store's own commits still ask for synchronous_commit.
    const opts = `-c listen_addresses=127.0.0.1 -c port=${this.port} -c unix_socket_directories=${this.dataDir} -c fsync=off -c full_page_writes=off -c max_connections=200 -c shared_buffers=32MB`;
    pgBin('pg_ctl', ['-D', this.dataDir, '-w', '-t', '30', '-l', join(this.dataDir, 'server.log'), '-o', opts, 'start']);
    this.#running = true;
  }

  /** Stop now (`immediate`: as a crash; the next start recovers). */
  stop(mode: 'fast' | 'immediate' = 'fast'): void {
    if (!this.#running) return;
    pgBin('pg_ctl', ['-D', this.dataDir, '-w', '-m', mode, 'stop']);
    this.#running = false;
  }

  url(database: string): string {
    return `postgresql://postgres@127.0.0.1:${this.port}/${database}`;
  }

  remove(): void {
    try {
      this.stop('immediate');
    } finally {
      const dir = join(this.dataDir, '..');
      if (existsSync(dir) && statSync(dir).isDirectory()) rmSync(dir, { recursive: true, force: true });
    }
  }
}

/** A test database and how to reach it. */
export interface TestDatabase {
  readonly url: string;
  readonly name: string;
  readonly connection: PgConnectionConfig;
  drop(): void;
}

export interface TestPostgres {
  /** A fresh, migrated database (from the template). */
  database(): TestDatabase;
  /** A fresh database with no schema at all (migration tests). */
  emptyDatabase(): TestDatabase;
  /** The private cluster (undefined when ZGB_TEST_PG_URL names one this file does not own). */
  readonly cluster: PgCluster | undefined;
  readonly serverUrl: string;
}

let shared: TestPostgres | undefined;
let counter = 0;

/** Connection settings of a URL, with short timeouts (a test never waits long for a dead server). */
export function testConnection(url: string): PgConnectionConfig {
  return { connectionString: url, connectionTimeoutMillis: 3000, statement_timeout: 20_000, query_timeout: 25_000 };
}

/** The PostgreSQL of this test file: started on first use; releaseTestPostgres() in afterAll stops it. */
export function testPostgres(): TestPostgres {
  if (shared) return shared;
  const external = process.env.ZGB_TEST_PG_URL;
  const cluster = external ? undefined : PgCluster.create();
  const serverUrl = external ?? cluster!.url('postgres');
  const admin = new SyncPg(testConnection(serverUrl));
  const base = `zgb_${process.pid}_${Date.now().toString(36)}`;
  const template = `${base}_tpl`;
  admin.run('admin', [{ sql: `CREATE DATABASE ${template}` }]);
  const tplUrl = withDatabase(serverUrl, template);
  const tpl = new SyncPg(testConnection(tplUrl));
  try {
    migrate(tpl, 'm');
  } finally {
    tpl.close();
  }
  const made: string[] = [];
  const create = (from: string): TestDatabase => {
    const name = `${base}_${++counter}`;
    admin.run('admin', [{ sql: `CREATE DATABASE ${name} TEMPLATE ${from}` }]);
    made.push(name);
    const url = withDatabase(serverUrl, name);
    return {
      url,
      name,
      connection: testConnection(url),
      drop: () => {
        admin.run('admin', [{ sql: `DROP DATABASE IF EXISTS ${name} WITH (FORCE)` }]);
      },
    };
  };
  shared = {
    cluster,
    serverUrl,
    database: () => create(template),
    emptyDatabase: () => create('template0'),
  };
  release = () => {
    try {
      if (cluster) return;
      // A shared server: leave nothing behind.
      for (const name of [...made, template]) admin.run('admin', [{ sql: `DROP DATABASE IF EXISTS ${name} WITH (FORCE)` }]);
    } finally {
      admin.close();
      cluster?.remove();
      shared = undefined;
      release = undefined;
    }
  };
  return shared;
}

let release: (() => void) | undefined;

/** Stop this file's cluster (or drop its databases on a shared server), if it was started: call in afterAll. */
export function releaseTestPostgres(): void {
  release?.();
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/**
 * A test file's fresh databases and open handles: `database()` gives each test its own (dropped after it), what is
 * pushed on `opened` is closed after each test, and the shared server is released after the file.
 */
export function databasesPerTest(): { readonly opened: { close(): void }[]; database(empty?: boolean): TestDatabase } {
  const opened: { close(): void }[] = [];
  const dbs: TestDatabase[] = [];
  afterEach(() => {
    for (const o of opened.splice(0)) o.close();
    for (const d of dbs.splice(0)) d.drop();
  });
  afterAll(() => releaseTestPostgres());
  return {
    opened,
    database(empty = false) {
      const db = empty ? testPostgres().emptyDatabase() : testPostgres().database();
      dbs.push(db);
      return db;
    },
  };
}

// ---------------------------------------------------------------------------
// Integration tests: built daemons on a private cluster (test/integration/postgres-*.test.ts)

/** How a daemon on PostgreSQL is configured in a test (each absent setting: the bridge's default). */
export interface PgStoreSettings {
  /** store.postgres.node_name */
  readonly node?: string;
  /** store.postgres.lease, e.g. '3s' */
  readonly lease?: string;
  /** store.postgres.connect_timeout (default here: 1s, a test never waits long for a stopped server) */
  readonly connectTimeout?: string;
  /** store.postgres.statement_timeout */
  readonly statementTimeout?: string;
}

/** The `store:` section of a daemon's YAML on PostgreSQL at `url`. */
export function pgStoreYaml(url: string, o: PgStoreSettings = {}): string {
  return [
    'store:',
    '  backend: postgres',
    '  postgres:',
    `    url: ${url}`,
    ...(o.node !== undefined ? [`    node_name: ${o.node}`] : []),
    ...(o.lease !== undefined ? [`    lease: ${o.lease}`] : []),
    `    connect_timeout: ${o.connectTimeout ?? '1s'}`,
    ...(o.statementTimeout !== undefined ? [`    statement_timeout: ${o.statementTimeout}`] : []),
  ].join('\n');
}

/** What an integration test file on PostgreSQL runs against (pgTestBed()). */
export interface PgTestBed<D extends { stop(): Promise<unknown> }> {
  /** The file's private cluster (stopped and started by the outage tests). */
  readonly cluster: PgCluster;
  /** The file's GLPI fake; freshGlpi() replaces it. */
  readonly glpi: FakeGlpi;
  /** The file's Zabbix fake (pgTestBed({ zabbix: true }) only). */
  readonly zabbix: FakeZabbix;
  /** The daemons the file starts: stopped after its tests, before the fakes and the cluster go. */
  readonly daemons: D[];
  /** A GLPI fake of the test's own (the earlier tests' tickets stay in the database): the old one closed. */
  freshGlpi(): Promise<FakeGlpi>;
}

/**
 * Before the file's tests: a private cluster, a GLPI fake and (asked) a Zabbix fake; after them: the daemons
 * pushed on `daemons` stopped, then the fakes closed and the cluster removed. Never the server ZGB_TEST_PG_URL
 * names: these tests stop and start theirs.
 */
export function pgTestBed<D extends { stop(): Promise<unknown> }>(o: { zabbix?: boolean } = {}): PgTestBed<D> {
  let cluster: PgCluster | undefined;
  let glpi: FakeGlpi | undefined;
  let zabbix: FakeZabbix | undefined;
  const daemons: D[] = [];
  const started = <T>(what: string, x: T | undefined): T => {
    if (x === undefined) throw new Error(`${what}: not started (pgTestBed is used from the file's tests only${what === 'zabbix' ? ', with { zabbix: true }' : ''})`);
    return x;
  };
  beforeAll(async () => {
    cluster = PgCluster.create();
    glpi = new FakeGlpi({ userTokens: ['user-token'] });
    await glpi.listen();
    if (o.zabbix) {
      zabbix = new FakeZabbix();
      await zabbix.listen();
    }
  });
  afterAll(async () => {
    for (const d of daemons) await d.stop();
    await zabbix?.close();
    await glpi?.close();
    cluster?.remove();
  });
  return {
    get cluster() {
      return started('cluster', cluster);
    },
    get glpi() {
      return started('glpi', glpi);
    },
    get zabbix() {
      return started('zabbix', zabbix);
    },
    daemons,
    async freshGlpi() {
      await glpi?.close();
      glpi = new FakeGlpi({ userTokens: ['user-token'] });
      await glpi.listen();
      return glpi;
    },
  };
}
