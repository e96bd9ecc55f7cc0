import { chmodSync, lstatSync, mkdirSync, readdirSync, statSync } from 'node:fs';
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

/**
 * A command run as root (`sudo zabbix-glpi-bridge queue`) on the data directory of the service's user acts as
 * that user from here on: SQLite creates its -wal and -shm files (and the database, on a first run) as the
 * process, and files root made there would keep the service from writing its own store at its next start.
 * Called after the configuration (and its root-only secrets) is read, before the store is opened. Returns the
 * uid taken, or undefined when nothing changed (not root, no such directory, or root's own directory).
 */
export function actAsDataDirOwner(dir: string): number | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  let owner: { uid: number; gid: number };
  try {
    owner = statSync(dir);
  } catch {
    return undefined;
  }
  if (owner.uid === 0) return undefined;
  process.setgroups?.([owner.gid]);
  process.setgid?.(owner.gid);
  process.setuid?.(owner.uid);
  return owner.uid;
}
