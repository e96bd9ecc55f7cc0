import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A file shipped beside the program (config/rules.example.yaml, …), found from wherever the running code lies:
 * src/ (the tests), dist/src/ (tsc's output) or dist/bridge/ (the bundle the daemon runs as, scripts/bundle.mjs),
 * each at its own depth. The nearest folder above this code that holds a package.json and the file wins.
 */
export function packageFile(relativePath: string): string {
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = dirname(dir)) {
    const candidate = join(dir, relativePath);
    if (existsSync(join(dir, 'package.json')) && existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) throw new Error(`${relativePath} not found in any folder above ${start} that holds a package.json: is the program installed whole (config/ beside dist/)?`);
  }
}
