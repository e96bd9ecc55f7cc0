import { ConfigError, formatProblem, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';

export class UsageError extends Error {}

/** Load the config or print every problem (file:line: path: message) and return undefined. */
export function loadOrReport(file: string | undefined, out: NodeJS.WritableStream = process.stderr): Config | undefined {
  if (!file) throw new UsageError('--config FILE is required');
  try {
    return loadConfig(file);
  } catch (e) {
    if (e instanceof ConfigError) {
      out.write(`CONFIG_INVALID: ${file}: ${e.problems.length} problem(s):\n${e.problems.map((p) => `  ${formatProblem(p)}`).join('\n')}\n`);
      return undefined;
    }
    throw e;
  }
}
