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

/** A compiled rule pattern: a RegExp (written /…/) or a glob; `source` is how explanations show it, `pattern` how the operator wrote it. */
export interface Matcher {
  test(text: string): boolean;
  readonly source: string;
  readonly pattern: string;
}

export interface CategoryRule {
  readonly name: string;
  readonly tags: readonly TagMatcher[];
  readonly itemKeys: readonly Matcher[];
  readonly triggerNames: readonly Matcher[];
  readonly hosts: readonly Matcher[];
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
 * Text a pattern is tested against is cut here: Zabbix bounds host names at
 * 128 characters, trigger names and item keys at 255 and 2,048, and an
 * operator's regular expression then never runs over a hostile 60,000-character
 * field.
 */
export const PATTERN_INPUT_MAX = 2048;

/** A glob with only `*` as wildcard, case-insensitive, matched in linear time (no backtracking regex). */
export class Glob implements Matcher {
  readonly #parts: readonly string[];

  constructor(readonly source: string) {
    this.#parts = source.toLowerCase().split('*');
  }

  get pattern(): string {
    return this.source;
  }

  test(input: string): boolean {
    const text = input.slice(0, PATTERN_INPUT_MAX).toLowerCase();
    const parts = this.#parts;
    const first = parts[0] ?? '';
    if (parts.length === 1) return text === first;
    const last = parts[parts.length - 1] ?? '';
    if (!text.startsWith(first) || text.length < first.length + last.length || !text.endsWith(last)) return false;
    // Each middle part at its leftmost place after the previous one: leftmost is always best when `*` is the only wildcard.
    let at = first.length;
    const end = text.length - last.length;
    for (let i = 1; i < parts.length - 1; i++) {
      const part = parts[i] ?? '';
      const found = text.indexOf(part, at);
      if (found < 0 || found + part.length > end) return false;
      at = found + part.length;
    }
    return true;
  }
}

/** An operator's /regex/: tested on the text cut to PATTERN_INPUT_MAX. */
export class BoundedRegExp implements Matcher {
  constructor(
    readonly re: RegExp,
    readonly pattern: string,
  ) {}

  get source(): string {
    return this.re.source;
  }

  test(text: string): boolean {
    return this.re.test(text.slice(0, PATTERN_INPUT_MAX));
  }
}

/**
 * A pattern as operators write it: "/regex/flags" is a regular expression;
 * anything else is a case-insensitive glob where only `*` is a wildcard
 * (so item keys like `vfs.fs.size[/,pused]` need no escaping).
 */
export function compilePattern(pattern: string): Matcher {
  const re = /^\/(.*)\/([a-z]*)$/s.exec(pattern);
  if (re) return new BoundedRegExp(new RegExp(re[1] ?? '', re[2]), pattern);
  return new Glob(pattern);
}

/** Whether a value is a compiled pattern (it crosses to the processing thread as its text: see config/thread-transfer.ts). */
export function isMatcher(v: unknown): v is Matcher {
  return v instanceof Glob || v instanceof BoundedRegExp;
}
