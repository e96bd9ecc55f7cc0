import { randomBytes } from 'node:crypto';
import { closeSync, constants, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The per-install secret that keys ticket markers (see ticketMarker): made
 * once in the data directory (mode 0600), never changed, kept with the state
 * file in backups. Losing it only means tickets opened before cannot be
 * found again by marker after a crash.
 */
export const MARKER_KEY_FILE = 'marker-key';

export function readMarkerKey(dataDir: string): string | undefined {
  const file = join(dataDir, MARKER_KEY_FILE);
  if (!existsSync(file)) return undefined;
  const key = readFileSync(file, 'utf8').trim();
  if (key.length < 32) throw new Error(`${file} holds no usable key (expected 32+ characters); remove it to make a new one`);
  return key;
}

/** The key, made now if the data directory has none yet (exclusive create: two starts at once agree on one). */
export function ensureMarkerKey(dataDir: string): string {
  const existing = readMarkerKey(dataDir);
  if (existing !== undefined) return existing;
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, MARKER_KEY_FILE);
  try {
    const fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      writeSync(fd, `${randomBytes(32).toString('base64url')}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  return readMarkerKey(dataDir) as string;
}
