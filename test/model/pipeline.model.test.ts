/**
 * Model-based test of the whole pipeline (issue 10, "Find the next one
 * systematically"): random Zabbix histories of a few incidents, delivered the
 * way Zabbix can (retries, lost answers, out of order, several at once),
 * against a real store, processor, dispatcher and GLPI client and the fake
 * GLPI, with GLPI faults, kill -9 and power cuts; an oracle (oracle.ts) says
 * what GLPI must end with. See test/model/README.md.
 *
 *   MODEL_CASES=3000 node --experimental-vm-modules node_modules/jest/bin/jest.js test/model
 *   MODEL_SEED=<seed> MODEL_CASES=1 ...            one case again (the seed a failure prints)
 *   MODEL_CASE_FILE=/tmp/zgb-model-….json ...      a shrunk case again
 *   MODEL_NO_POWERLOSS=1 (CRASH, FAULTS, REORDER, EARLY, REDELIVERY, JUMPS, MODES, UPDATES, BURSTS, TITLES)
 *   MODEL_RECOVERY=followup   every case with this glpi.recovery (solve, close, followup)
 *   MODEL_VERBOSE=1      one line per failing case
 *   MODEL_KEEP_GOING=1   run every case; report (and shrink) each new kind of failure
 *   MODEL_REPEAT=5       run a passing case up to 5 more times (timing-dependent failures)
 *   MODEL_PARALLEL=3     cases at once;  MODEL_SHRINK_MS=45000  shrinking budget (0: none)
 *   MODEL_SHRINK_FOR=text  shrink keeping the violation that contains text (default: the first one)
 */
import { describe, it } from '@jest/globals';
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeStep, familiesFromEnv, FAMILY_NAMES, generate, type CaseSpec } from './case.js';
import { glpiSummary } from './oracle.js';
import { caseSeed } from './prng.js';
import { runCase, shrink, signature, type Tried } from './shrink.js';

const env = process.env;
const CASES = Number(env.MODEL_CASES ?? 300);
/** `npm test` runs the same cases every time (a red CI is reproducible as it is); `npm run test:model` (MODEL_RANDOM=1) explores new ones each run. */
const FIXED_SEED = 20261201;
const BASE = env.MODEL_SEED !== undefined ? Number(env.MODEL_SEED) >>> 0 : env.MODEL_RANDOM === '1' ? (Date.now() * 7919) >>> 0 : FIXED_SEED;
const PARALLEL = Math.max(1, Number(env.MODEL_PARALLEL ?? 3));
const KEEP_GOING = env.MODEL_KEEP_GOING === '1';
const REPEAT = Number(env.MODEL_REPEAT ?? 0);
const SHRINK_MS = Number(env.MODEL_SHRINK_MS ?? 45_000);
const families = familiesFromEnv(env);
const off = FAMILY_NAMES.filter((n) => !families[n]);
const flags = off.map((n) => `MODEL_NO_${n.toUpperCase()}=1 `).join('') + (families.recovery ? `MODEL_RECOVERY=${families.recovery} ` : '');

const JEST = 'node --experimental-vm-modules node_modules/jest/bin/jest.js test/model';

interface Failure {
  readonly seed: number;
  readonly spec: CaseSpec;
  readonly tried: Tried;
}

function report(f: Failure, shrunk?: Awaited<ReturnType<typeof shrink>>): string {
  const out: string[] = [];
  out.push(`model case ${f.seed} failed. Again: ${flags}MODEL_SEED=${f.seed} MODEL_CASES=1 ${JEST}`);
  out.push(`(runs are timing-dependent: a case may need a few tries; families off: ${off.join(', ') || 'none'})`);
  out.push('violations:', ...f.tried.violations.map((v) => `  - ${v}`));
  const shown = shrunk?.tried ?? f.tried;
  if (shrunk) {
    const file = join(tmpdir(), `zgb-model-case-${f.seed}-${Date.now().toString(36)}.json`);
    writeFileSync(file, JSON.stringify(shrunk.spec, null, 1));
    out.push(
      `shrunk to ${shrunk.steps} of ${f.spec.steps.length} steps in ${shrunk.runs} runs; the shrunk case failed ${shrunk.confirmed}/${shrunk.confirm} reruns. Again: MODEL_CASE_FILE=${file} ${JEST}`,
      'violations of the shrunk case:',
      ...shrunk.tried.violations.map((v) => `  - ${v}`),
    );
  }
  out.push(`case (${shown.outcome.spec.steps.length} steps):`, ...shown.outcome.spec.steps.map((s, i) => `  ${String(i).padStart(3)} ${describeStep(shown.outcome.spec, s)}`));
  out.push('what happened:', ...shown.outcome.trace.map((l) => `  ${l}`));
  out.push('GLPI at the end:', ...glpiSummary(shown.outcome).map((l) => `  ${l}`));
  const warnings = shown.outcome.logs.filter((l) => /"level":"(warn|error|fatal)"/.test(l)).slice(-25);
  if (warnings.length > 0) out.push('bridge warnings and errors (last 25):', ...warnings.map((l) => `  ${l.trim().slice(0, 400)}`));
  return out.join('\n');
}

describe('model-based test of the whole pipeline', () => {
  const file = env.MODEL_CASE_FILE;
  const title = file ? `the case in ${file}` : `${CASES} cases from seed ${BASE}${off.length > 0 ? ` without ${off.join(', ')}` : ''}`;
  it(
    title,
    async () => {
      const started = Date.now();
      const failures: Failure[] = [];
      const kinds = new Set<string>();
      /** Failing cases per kind of violation (a case counts once per kind). */
      const tally = new Map<string, number>();
      let next = 0;
      let ran = 0;
      let failing = 0;
      const fromFile = file ? (JSON.parse(readFileSync(file, 'utf8')) as CaseSpec) : undefined;
      const take = (): { seed: number; spec: CaseSpec } | undefined => {
        if (fromFile) return next++ === 0 ? { seed: fromFile.seed, spec: fromFile } : undefined;
        if (next >= CASES || (failures.length > 0 && !KEEP_GOING)) return undefined;
        const seed = caseSeed(BASE, next++);
        return { seed, spec: generate(seed, families) };
      };
      const worker = async () => {
        for (let c = take(); c; c = take()) {
          let tried = await runCase(c.spec);
          ran++;
          // MODEL_REPEAT=n: a passing case runs up to n more times (timing-dependent failures).
          for (let k = REPEAT; k > 0 && tried.violations.length === 0; k--) tried = await runCase(c.spec);
          if (tried.violations.length === 0) continue;
          failing++;
          if (env.MODEL_VERBOSE === '1') process.stdout.write(`case ${c.seed} (${c.spec.settings.recovery}): ${tried.violations.join(' | ')}\n`);
          for (const k of new Set(tried.violations.map(signature))) tally.set(k, (tally.get(k) ?? 0) + 1);
          const fresh = tried.violations.map(signature).filter((s) => !kinds.has(s));
          for (const s of fresh) kinds.add(s);
          if (fresh.length > 0 || failures.length === 0) failures.push({ seed: c.seed, spec: c.spec, tried });
        }
      };
      await Promise.all(Array.from({ length: PARALLEL }, worker));
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      process.stdout.write(`model: ${ran} case(s) in ${secs} s, ${failing} failing (${failures.length} reported); base seed ${BASE}\n`);
      if (failures.length === 0) return;
      const kindsText = [...tally.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `  ${String(n).padStart(4)} × ${k}`);
      process.stdout.write(`failing cases by kind of violation:\n${kindsText.join('\n')}\n`);
      const reports: string[] = [];
      for (const [i, f] of failures.entries()) {
        // Shrink the first failure only (or each, when looking for every kind).
        const shrunk = SHRINK_MS > 0 && (i === 0 || KEEP_GOING) ? await shrink(f.spec, f.tried, SHRINK_MS, env.MODEL_SHRINK_FOR) : undefined;
        reports.push(report(f, shrunk));
      }
      throw new Error(`${failing} failing model case(s) of ${ran} (base seed ${BASE}), by kind:\n${kindsText.join('\n')}\n\n${reports.join('\n\n')}`);
    },
    // A guard only (each case has its own 20 s limit to settle); 300 cases take about a minute on 2 busy cores.
    60_000 + CASES * 1_500 + SHRINK_MS * (KEEP_GOING ? 10 : 1),
  );
});
