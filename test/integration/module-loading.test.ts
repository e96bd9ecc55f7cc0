import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from '../helpers/fixtures.js';

/**
 * What a thread loads is memory it keeps (issue 16): the processing thread loads axios for GLPI and Zabbix,
 * and axios, loaded as is, makes Node load its whole fetch implementation (undici, about 2 MB of heap) for
 * an adapter the bridge never uses. Each case runs in a fresh node process on the built files.
 */
function loadIn(freshNode: string): { undiciLoaded: boolean; afterwards: string } {
  const script = `
    ${freshNode}
    const undiciLoaded = process.moduleLoadList.some((m) => m.includes('undici'));
    // Code that uses fetch afterwards still can: the classes were put back.
    const afterwards = [typeof FormData, typeof Headers, new Request('http://glpi.example/apirest.php').url, typeof new Response('x').text].join(' ');
    process.stdout.write(JSON.stringify({ undiciLoaded, afterwards }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`node exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as { undiciLoaded: boolean; afterwards: string };
}

const dist = (path: string) => pathToFileURL(join(ROOT, 'dist', 'src', path)).href;

describe("the processing side loads axios without Node's fetch implementation", () => {
  it('the processing thread (its whole composition) and the GLPI and Zabbix clients: no undici, fetch still usable', () => {
    const r = loadIn(`await import(${JSON.stringify(dist('composition/processing.js'))}); await import(${JSON.stringify(dist('composition/clients.js'))});`);
    expect(r).toEqual({ undiciLoaded: false, afterwards: 'function function http://glpi.example/apirest.php function' });
  });

  it('the check can fail: axios imported directly does load it', () => {
    expect(loadIn(`await import('axios');`).undiciLoaded).toBe(true);
  });
});

/**
 * What a built entry point loads as it starts: every module reached through static imports and re-exports
 * (the built JavaScript carries no type-only imports), as paths under dist/src, and the packages named.
 * Dynamic import() is what loads later, on demand: not followed.
 */
function loadedAtStart(entry: string): { modules: Set<string>; packages: Set<string> } {
  const modules = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string): void => {
    const path = relative(join(ROOT, 'dist', 'src'), file);
    if (modules.has(path)) return;
    modules.add(path);
    for (const m of readFileSync(file, 'utf8').matchAll(/^(?:import|export)\s(?:[^'";]*?\sfrom\s)?'([^']+)';/gm)) {
      const spec = m[1]!;
      if (spec.startsWith('.')) visit(resolve(dirname(file), spec));
      else packages.add(spec);
    }
  };
  visit(join(ROOT, 'dist', 'src', entry));
  return { modules, packages };
}

describe('a bridge on SQLite does not load the PostgreSQL store (composition/store.ts loadStoreBackend)', () => {
  const postgresCode = (modules: Set<string>) => [...modules].filter((m) => m.startsWith(join('adapters', 'store', 'postgres')) && !m.endsWith('kind.js'));

  it('neither the processing thread nor the daemon\'s main thread imports it as they start; nor axios on the main thread', () => {
    const worker = loadedAtStart(join('threads', 'processing-worker.js'));
    const main = loadedAtStart(join('cli', 'run.js'));
    expect(postgresCode(worker.modules)).toEqual([]);
    expect(postgresCode(main.modules)).toEqual([]);
    expect([...main.packages].filter((p) => p === 'axios' || p === 'pg')).toEqual([]);
  });

  it('the walk sees what they do import (a check that sees nothing proves nothing)', () => {
    const worker = loadedAtStart(join('threads', 'processing-worker.js'));
    expect(worker.modules).toContain(join('adapters', 'store', 'sqlite', 'index.js'));
    expect(worker.modules).toContain(join('adapters', 'store', 'postgres', 'kind.js'));
    expect(worker.packages).toContain('axios');
    expect(postgresCode(loadedAtStart(join('adapters', 'store', 'postgres', 'index.js')).modules)).toContain(join('adapters', 'store', 'postgres', 'store.js'));
  });
});
