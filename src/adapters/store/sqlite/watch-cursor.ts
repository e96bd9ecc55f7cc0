import type { StateTransactions, WatchCursor } from '../../../core/ports.js';
import type { MetaTable } from './database.js';

/** Meta key of the GLPI read-back's cursor (GLPI's date_mod, "YYYY-MM-DD HH:MM:SS"). */
const GLPI_WATCH_CURSOR = 'glpi_watch_cursor';

/** Where the GLPI read-back stopped, in the state's meta table (written by the processing thread, where the watcher runs). */
export class SqliteWatchCursor implements WatchCursor {
  readonly #meta: MetaTable;
  readonly #tx: StateTransactions;

  constructor(meta: MetaTable, tx: StateTransactions) {
    this.#meta = meta;
    this.#tx = tx;
  }

  glpiWatchCursor(): string | undefined {
    return this.#meta.get(GLPI_WATCH_CURSOR);
  }

  /** Crash-safe: a cursor lost to a power cut is an earlier one, and reading tickets again repeats nothing (the incidents remember what was said). */
  putGlpiWatchCursor(dateMod: string): void {
    this.#tx.transaction(() => this.#meta.put(GLPI_WATCH_CURSOR, dateMod), 'crash-safe');
  }
}
