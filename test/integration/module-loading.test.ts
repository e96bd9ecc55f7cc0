import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
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
