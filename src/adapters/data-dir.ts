import { chmodSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Modes of the data directory and of every file in it: the inbox holds alert text, the marker key and the webhook token are secrets. */
export const DATA_DIR_MODE = 0o700;
export const DATA_FILE_MODE = 0o600;

/**
 * Make the data directory private whatever the umask: every file the process
 * creates from now on is 0600 (umask 077; SQLite gives its -wal and -shm files
 * the database file's mode), the directory is 0700, and files an earlier
 * version or a careless copy left readable are tightened. Returns the paths
 * whose mode was changed, and those it may not change (not their owner).
 */
export function secureDataDir(dir: string): { changed: string[]; refused: string[] } {
  process.umask(0o077);
  mkdirSync(dir, { recursive: true, mode: DATA_DIR_MODE });
  const changed: string[] = [];
  const refused: string[] = [];
  const tighten = (path: string, mode: number) => {
    const st = lstatSync(path);
    if ((st.mode & 0o777) === mode) return;
    try {
      chmodSync(path, mode);
      changed.push(path);
    } catch (e) {
      // Not the owner (a folder root prepared): said in the log, not fatal.
      if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
      refused.push(path);
    }
  };
  tighten(dir, DATA_DIR_MODE);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    // Regular files only: a symlink's target is not ours to change, and sub-folders are not the bridge's.
    if (entry.isFile()) tighten(join(dir, entry.name), DATA_FILE_MODE);
  }
  return { changed, refused };
}
