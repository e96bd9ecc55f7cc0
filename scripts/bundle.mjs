// The daemon as it ships: dist/bridge/main.js, one minified bundle per thread (issue 16, footprint).
//
// Run by `npm run build` after tsc (which type-checks and emits dist/src for the tests, the GLPI fake and the
// bench). Why a bundle: each of the bridge's two threads is a V8 isolate that keeps the source text of every module
// it loads (for lazy compilation and Function.prototype.toString) and compiles what it runs. Loaded as files, that
// is every file of zod (its 64 locales included), fastify, pino, prom-client, axios and the bridge, comments and
// all. Bundled, each thread loads only the code reachable from its entry, minified: about 4 MB less heap per thread
// and 9 MB less peak RSS under the bench's storm (README, Performance).
//
// - main.js is the process's entry; processing-worker.js is the worker thread's entry. Both sit at the top of
//   dist/bridge, next to the chunks they share, so threads/processing-thread.ts finds the worker as
//   "./processing-worker.js" from whichever chunk holds it, exactly as in dist/src/threads.
// - Dynamic import() stays lazy: every command, and the PostgreSQL store, is a chunk loaded on first use.
// - better-sqlite3 (a native addon) and pg (loaded by path in the PostgreSQL store's own worker) stay in
//   node_modules.
// - Names are kept (keepNames): the log's "type" of an error is its class's name, and stack traces name functions.
//   Source maps (.map beside each file) point back into src/*.ts: `node --enable-source-maps` uses them.
import { build } from 'esbuild';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'bridge');

await rm(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: { main: 'src/main.ts', 'processing-worker': 'src/threads/processing-worker.ts' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  tsconfig: 'tsconfig.build.json',
  minify: true,
  keepNames: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  external: ['better-sqlite3', 'pg', 'pg-native'],
  // The CommonJS packages bundled in (pino, fastify's) call require() for Node's own modules: ECMAScript modules
  // have none, so each file gets one.
  banner: { js: "import { createRequire as __bridgeRequire } from 'node:module'; const require = __bridgeRequire(import.meta.url);" },
  logLevel: 'warning',
});
