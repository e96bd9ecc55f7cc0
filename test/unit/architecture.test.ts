import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT } from '../helpers/fixtures.js';

const SRC = join(ROOT, 'src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : name.endsWith('.ts') ? [path] : [];
  });
}

/** Every module a file imports (static imports and re-exports, `import type` included). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'([^']+)'/gms)].map((m) => m[1]!);
}

/** Imports of the files under `folder` that break `allowed`, as "file → module". */
function violations(folder: string, allowed: (module: string, file: string) => boolean): string[] {
  return files(join(SRC, folder)).flatMap((f) => importsOf(f).filter((m) => !allowed(m, f)).map((m) => `${relative(SRC, f)} → ${m}`));
}

describe('the layering holds (core → services → adapters → threads → app → cli)', () => {
  it('the core imports only the core: no node: module, no package, no adapter or service', () => {
    expect(violations('core', (m) => m.startsWith('./'))).toEqual([]);
  });

  it('services depend on the core (ports) and observability, never on an adapter', () => {
    expect(violations('services', (m) => !m.includes('/adapters/') && !m.includes('/threads/') && !m.startsWith('node:fs'))).toEqual([]);
  });

  it('nothing under adapters imports a service, a thread or the app', () => {
    expect(violations('adapters', (m) => !/\/(services|threads)\/|\/app\.js$/.test(m))).toEqual([]);
  });

  it("axios is imported only through adapters/axios (which keeps Node's fetch implementation unloaded)", () => {
    const direct = violations('.', (m, f) => m !== 'axios' || relative(SRC, f) === join('adapters', 'axios', 'index.ts'));
    expect(direct).toEqual([]);
    expect(importsOf(join(SRC, 'adapters', 'glpi', 'client.ts'))).toContain('../axios/index.js');
  });

  it('the test finds imports (a rule that sees nothing proves nothing)', () => {
    expect(importsOf(join(SRC, 'services', 'processor.ts'))).toEqual(expect.arrayContaining(['../core/ports.js', '../core/assess.js']));
  });
});
