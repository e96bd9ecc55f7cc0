import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CODES } from '../../src/core/errors.js';
import { ROOT } from '../helpers/fixtures.js';

describe('error codes', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const table = readme.slice(readme.indexOf('## Troubleshooting'));
  const rows = [...table.matchAll(/^\| `([A-Z_]+)` \| (\d{3}|—) \|/gm)].map((m) => [m[1], m[2]] as const);

  it('every code is documented in the README troubleshooting table with its HTTP status, and nothing else is', () => {
    expect(rows.map(([code]) => code).sort()).toEqual(Object.keys(ERROR_CODES).sort());
    for (const [code, status] of rows) {
      const expected = ERROR_CODES[code as keyof typeof ERROR_CODES].status;
      expect(status).toBe(expected === 0 ? '—' : String(expected));
    }
  });
});
