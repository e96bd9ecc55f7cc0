import type { Severity } from './alert.js';

/** GLPI fields a rule decides, and whether to open a ticket at all. */
export interface GlpiFields {
  readonly ticket: boolean;
  readonly urgency: number;
  readonly impact: number;
  readonly itilcategories_id: number;
  readonly entities_id: number;
  readonly groups_id_assign: number;
  /** 1 incident, 2 request (GLPI constants). */
  readonly type: number;
  readonly requesttypes_id: number;
}

export type GlpiFieldsPatch = Partial<GlpiFields>;

export interface TagMatcher {
  readonly tag: string;
  /** undefined: any value. */
  readonly values?: readonly string[];
}

export interface Threshold {
  readonly above?: number;
  readonly below?: number;
  readonly severity: Severity;
  /** How the operator wrote it, for explanations. */
  readonly text: string;
}

export interface CategoryRule {
  readonly name: string;
  readonly tags: readonly TagMatcher[];
  readonly itemKeys: readonly RegExp[];
  readonly triggerNames: readonly RegExp[];
  readonly hosts: readonly RegExp[];
  readonly thresholds: readonly Threshold[];
  readonly glpi: GlpiFieldsPatch;
  readonly severities: Readonly<Partial<Record<Severity, GlpiFieldsPatch>>>;
}

export interface Rules {
  readonly defaults: GlpiFields;
  readonly severities: Readonly<Partial<Record<Severity, GlpiFieldsPatch>>>;
  readonly categories: readonly CategoryRule[];
  readonly fallback: CategoryRule;
  readonly templates: { readonly title: string; readonly body: string };
}

/**
 * A pattern as operators write it: "/regex/flags" is a regular expression;
 * anything else is a case-insensitive glob where only `*` is a wildcard
 * (so item keys like `vfs.fs.size[/,pused]` need no escaping).
 */
export function compilePattern(pattern: string): RegExp {
  const re = /^\/(.*)\/([a-z]*)$/s.exec(pattern);
  if (re) return new RegExp(re[1] ?? '', re[2]);
  const escaped = pattern
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${escaped}$`, 'i');
}
