// `migrate-store --config FILE [--from DATA_DIR]`: move a stopped bridge's SQLite store into the PostgreSQL
// database its configuration names (store.backend: postgres), so that the bridge goes on there with nothing
// lost and nothing done twice (adapters/store/sqlite-to-postgres.ts copies; this checks and reports).

import { closeSync, constants, fsyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { actAsDataDirOwner } from '../adapters/data-dir.js';
import { MARKER_KEY_FILE, readMarkerKey } from '../adapters/marker-key.js';
import { SyncPg } from '../adapters/store/postgres/bridge.js';
import { copySqliteToPostgres, MigrateStoreRefused, SqliteSource } from '../adapters/store/sqlite-to-postgres.js';
import { pgConnection, storeLabel } from '../composition/store.js';
import { loadOrReport } from './common.js';

/**
 * The marker key (adapters/marker-key.ts) is a file in data_dir with either backend: the PostgreSQL bridge
 * must find the SQLite bridge's, or every marker it renders differs from those already in GLPI and a
 * search for a ticket created before the move misses (a duplicate ticket). Checked before anything is
 * written; copied when the PostgreSQL bridge's data_dir is another folder and has none yet.
 */
function markerKeyPlan(fromDir: string, dataDir: string): { copy?: string; note: string } {
  if (resolve(fromDir) === resolve(dataDir)) return { note: `marker key: kept (${join(dataDir, MARKER_KEY_FILE)})` };
  const source = readMarkerKey(fromDir);
  const target = readMarkerKey(dataDir);
  if (source === undefined) return { note: 'marker key: none in the SQLite data_dir (no ticket was ever created there)' };
  if (target === undefined) return { copy: source, note: `marker key: copied to ${join(dataDir, MARKER_KEY_FILE)}` };
  if (target !== source) {
    throw new MigrateStoreRefused(
      `${join(dataDir, MARKER_KEY_FILE)} differs from ${join(fromDir, MARKER_KEY_FILE)}: the ticket markers already in GLPI are keyed with the latter; replace the former with it (every node sharing the database needs the same one), then migrate again`,
    );
  }
  return { note: `marker key: the same in both data_dirs` };
}

function writeKey(dataDir: string, key: string): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const fd = openSync(join(dataDir, MARKER_KEY_FILE), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    writeSync(fd, `${key}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function migrateStoreCommand(file: string | undefined, from: string | undefined, out: NodeJS.WritableStream = process.stdout): number {
  const config = loadOrReport(file);
  if (!config) return 1;
  if (config.store.backend !== 'postgres') {
    throw new MigrateStoreRefused(`${file}: store.backend is ${config.store.backend}; migrate-store copies into the PostgreSQL store the configuration names (store.backend: postgres, store.postgres.*)`);
  }
  const fromDir = from ?? config.data_dir;
  const sqliteFile = join(fromDir, config.store.file);
  // Read as root (`sudo zabbix-glpi-bridge migrate-store`: the CA file may be root's), then act as the service's
  // user: the marker key written into data_dir, and SQLite's -shm of the files read, must stay the service's.
  const connection = pgConnection(config);
  actAsDataDirOwner(config.data_dir);
  const source = new SqliteSource(sqliteFile);
  try {
    const key = markerKeyPlan(fromDir, config.data_dir);
    const pg = new SyncPg(connection);
    try {
      if (key.copy !== undefined) writeKey(config.data_dir, key.copy);
      const s = copySqliteToPostgres(source, pg, 'migrate', readMarkerKey(fromDir));
      out.write(
        [
          `copied ${sqliteFile} (and its inbox) into ${storeLabel(config)} in one transaction:`,
          `  deliveries        ${s.deliveries} (decided through delivery ${s.decidedThrough}; those after it will be decided on PostgreSQL)`,
          `  incidents         ${s.incidents}`,
          `  tickets           ${s.tickets}`,
          `  incident events   ${s.incidentEvents}`,
          `  jobs              ${s.pendingJobs} pending, ${s.deadJobs} dead letters (${s.skippedFinishedJobs} finished ones not copied)`,
          `  parked alerts     ${s.parkedDeliveries}`,
          `  decision log      ${s.decisionLog}`,
          `  poller memory     ${s.pollCursor ? 'cursor' : 'no cursor'}, ${s.pollBaseline} baseline event(s)`,
          `  meta              ${s.meta.length ? s.meta.join(', ') : 'none'}`,
          `  ${key.note}`,
          `The SQLite files were not changed; keep them as an archive (do not start a bridge on them again: it would act on the same incidents).`,
          `Start the bridge with this configuration.`,
          '',
        ].join('\n'),
      );
      return 0;
    } finally {
      pg.close();
    }
  } finally {
    source.close();
  }
}
