import { zabbixBody } from './fixtures.js';

/** Every recorded webhook body (Zabbix 6.0, and 7.0.22 as `7.0/<name>`; test/fixtures/zabbix/). */
export const RECORDED_BODIES = ['problem', 'recovery', 'update-acknowledged', '7.0/problem', '7.0/recovery', '7.0/update-acknowledged'] as const;

/** A small deterministic generator (the variants are the same on every run). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

export interface VariantOptions {
  /** The parameters a change may touch (given the recorded body it starts from). */
  readonly keys: (base: Readonly<Record<string, unknown>>) => readonly string[];
  /** What a changed parameter is set to. */
  readonly values: readonly unknown[];
  /** Changes per body: at least `min`, fewer than `min + spread`. */
  readonly changes: { readonly min: number; readonly spread: number };
  /** Share of changes that remove the parameter instead of setting it. */
  readonly deleteShare: number;
}

/** `count` recorded bodies, each with a few parameters removed or set to odd values, from `seed`. */
export function bodyVariants(count: number, seed: number, o: VariantOptions): Record<string, unknown>[] {
  const next = rng(seed);
  const out: Record<string, unknown>[] = [];
  for (let i = 0; i < count; i++) {
    const body: Record<string, unknown> = { ...zabbixBody(RECORDED_BODIES[Math.floor(next() * RECORDED_BODIES.length)]!) };
    const keys = o.keys(body);
    const changes = o.changes.min + Math.floor(next() * o.changes.spread);
    for (let c = 0; c < changes; c++) {
      const key = keys[Math.floor(next() * keys.length)]!;
      if (next() < o.deleteShare) delete body[key];
      else body[key] = o.values[Math.floor(next() * o.values.length)];
    }
    out.push(body);
  }
  return out;
}
