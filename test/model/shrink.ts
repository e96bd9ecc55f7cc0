/**
 * Shrinking a failing case: drop incidents, events, occurrences, crashes,
 * faults, waits and jumps, and make deliveries plain, as long as the case
 * still fails the same way. Runs are timing-dependent, so a candidate gets a
 * few tries; the result says how often the final case failed.
 */
import type { CaseSpec, Step } from './case.js';
import { judge } from './oracle.js';
import { CaseRun, type Outcome } from './runner.js';

/** A violation without its numbers and quoted texts: "the same way". */
export function signature(violation: string): string {
  return violation
    .replace(/"[^"]*"/g, '""')
    .replace(/\(.*?\)/g, '()')
    .replace(/#?\d+/g, 'N')
    .replace(/\s+/g, ' ')
    .trim();
}

export interface Tried {
  readonly outcome: Outcome;
  readonly violations: readonly string[];
}

export async function runCase(spec: CaseSpec, logLevel?: string): Promise<Tried> {
  const outcome = await new CaseRun(spec, logLevel !== undefined ? { logLevel } : {}).run();
  return { outcome, violations: judge(outcome) };
}

function withoutOccs(spec: CaseSpec, drop: (n: number) => boolean): CaseSpec {
  const steps: Step[] = [];
  for (const s of spec.steps) {
    if ((s.t === 'occur' || s.t === 'send') && drop(s.occ)) continue;
    if (s.t === 'burst') {
      const sends = s.sends.filter((x) => !drop(x.occ));
      if (sends.length === 0) continue;
      steps.push(sends.length === 1 ? { t: 'send', ...(sends[0] as { occ: number; fate: 'ok' | 'lost' | 'noanswer' }) } : { t: 'burst', sends });
      continue;
    }
    steps.push(s);
  }
  return { ...spec, steps };
}

/** Every smaller case to try, biggest cuts first. */
function* candidates(spec: CaseSpec): Generator<{ what: string; spec: CaseSpec }> {
  const present = new Set(spec.steps.flatMap((s) => (s.t === 'occur' ? [s.occ] : [])));
  const evOf = (n: number) => spec.occs[n]?.ev;
  for (const inc of spec.incidents) {
    const evs = new Set(spec.events.filter((e) => e.inc === inc.k).map((e) => e.id));
    if (![...present].some((n) => evs.has(evOf(n) ?? ''))) continue;
    yield { what: `drop incident ${inc.token}`, spec: withoutOccs(spec, (n) => evs.has(evOf(n) ?? '')) };
  }
  for (let i = 0; i < spec.steps.length; i++) {
    const s = spec.steps[i] as Step;
    if (s.t === 'occur' || s.t === 'send' || s.t === 'burst') continue;
    yield { what: `drop step ${i} (${s.t})`, spec: { ...spec, steps: spec.steps.filter((_, j) => j !== i) } };
  }
  for (const e of spec.events) {
    if (![...present].some((n) => evOf(n) === e.id)) continue;
    yield { what: `drop event ${e.id}`, spec: withoutOccs(spec, (n) => evOf(n) === e.id) };
  }
  for (const n of present) {
    const o = spec.occs[n];
    if (!o || o.kind === 'problem') continue;
    yield { what: `drop ${o.kind} occurrence ${n}`, spec: withoutOccs(spec, (m) => m === n) };
  }
  for (let i = 0; i < spec.steps.length; i++) {
    const s = spec.steps[i] as Step;
    if (s.t === 'send') {
      yield { what: `drop webhook attempt at step ${i}`, spec: { ...spec, steps: spec.steps.filter((_, j) => j !== i) } };
      if (s.fate !== 'ok') yield { what: `plain webhook at step ${i}`, spec: { ...spec, steps: spec.steps.map((x, j) => (j === i ? { ...s, fate: 'ok' as const } : x)) } };
    }
    if (s.t === 'burst') {
      yield { what: `unburst step ${i}`, spec: { ...spec, steps: [...spec.steps.slice(0, i), ...s.sends.map((x) => ({ t: 'send' as const, ...x })), ...spec.steps.slice(i + 1)] } };
    }
  }
  if (spec.settings.concurrency > 1) yield { what: 'concurrency 1', spec: { ...spec, settings: { ...spec.settings, concurrency: 1 } } };
  if (spec.settings.coalesceMs > 0) yield { what: 'no coalescing', spec: { ...spec, settings: { ...spec.settings, coalesceMs: 0 } } };
}

export interface Shrunk {
  readonly spec: CaseSpec;
  readonly tried: Tried;
  readonly steps: number;
  readonly runs: number;
  /** How many of `confirm` reruns of the final case failed the same way. */
  readonly confirmed: number;
  readonly confirm: number;
}

/** Keeps the case failing like `first`'s violation that contains `focus` (default: its first violation). */
export async function shrink(spec: CaseSpec, first: Tried, budgetMs: number, focus?: string, triesPerCandidate = 2): Promise<Shrunk> {
  const chosen = (focus !== undefined ? first.violations.find((v) => v.includes(focus)) : undefined) ?? first.violations[0] ?? '';
  const target = new Set([signature(chosen)]);
  const same = (t: Tried) => t.violations.some((v) => target.has(signature(v)));
  const deadline = Date.now() + budgetMs;
  let best = spec;
  let bestTried = first;
  let runs = 0;
  let progress = true;
  while (progress && Date.now() < deadline) {
    progress = false;
    for (const c of candidates(best)) {
      if (Date.now() >= deadline) break;
      for (let k = 0; k < triesPerCandidate; k++) {
        const t = await runCase(c.spec);
        runs++;
        if (same(t)) {
          best = c.spec;
          bestTried = t;
          progress = true;
          break;
        }
      }
      if (progress) break;
    }
  }
  const confirm = 3;
  let confirmed = 0;
  for (let k = 0; k < confirm; k++) {
    const t = await runCase(best);
    runs++;
    if (same(t)) {
      confirmed++;
      bestTried = t;
    }
  }
  return { spec: best, tried: bestTried, steps: best.steps.length, runs, confirmed, confirm };
}
