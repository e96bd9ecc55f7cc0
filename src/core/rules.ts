import type { Severity } from './alert.js';

/**
 * A GLPI item a rule refers to: by id, or by name / complete name
 * ("Monitoring > CPU") that is resolved against GLPI when the ticket is
 * created (services/glpi-names.ts says why there and not here).
 */
export type GlpiRef = number | { readonly name: string };

/** Ticket actor roles the rules may fill (GLPI's CommonITILActor: requester 1, assign 2, observer 3). */
export const ACTOR_ROLES = ['assign', 'observer', 'requester'] as const;
export type ActorRole = (typeof ACTOR_ROLES)[number];

/** GLPI fields a rule decides, and whether to open a ticket at all. */
export interface GlpiFields {
  readonly ticket: boolean;
  readonly urgency: number;
  readonly impact: number;
  readonly itilcategories_id: GlpiRef;
  readonly entities_id: GlpiRef;
  readonly groups_id_assign: GlpiRef;
  /** 1 incident, 2 request (GLPI constants). */
  readonly type: number;
  readonly requesttypes_id: GlpiRef;
  /** Users added to the ticket per role, by id or login / "Firstname Lastname" (absent: none). */
  readonly users?: Readonly<Partial<Record<ActorRole, readonly GlpiRef[]>>>;
}

/** The GLPI itemtype each named field is looked up in. */
export const NAMED_FIELDS = {
  itilcategories_id: { itemtype: 'ITILCategory', key: 'itilcategory' },
  entities_id: { itemtype: 'Entity', key: 'entity' },
  groups_id_assign: { itemtype: 'Group', key: 'group_assign' },
  requesttypes_id: { itemtype: 'RequestType', key: 'request_source' },
} as const;
export type NamedField = keyof typeof NAMED_FIELDS;
export type DirectoryItemtype = (typeof NAMED_FIELDS)[NamedField]['itemtype'] | 'User';

/** What a ticket draft carries of the names a rule gave (resolved against GLPI before the create). */
export interface DraftNames {
  readonly itilcategories_id?: string;
  readonly entities_id?: string;
  readonly groups_id_assign?: string;
  readonly requesttypes_id?: string;
  readonly users?: Readonly<Partial<Record<ActorRole, readonly string[]>>>;
}

/** A ref's id (0: given by name, or none). */
export function refId(ref: GlpiRef): number {
  return typeof ref === 'number' ? ref : 0;
}

/** The draft's share of the rule's fields: ids (0 where a name stands), the names to resolve, users per role by id. */
export function draftFields(g: GlpiFields): Record<NamedField, number> & {
  names?: DraftNames;
  users?: Partial<Record<ActorRole, number[]>>;
} {
  const ids = {} as Record<NamedField, number>;
  const names: { -readonly [K in keyof DraftNames]: DraftNames[K] } = {};
  for (const f of Object.keys(NAMED_FIELDS) as NamedField[]) {
    const ref = g[f];
    ids[f] = refId(ref);
    if (typeof ref !== 'number') names[f] = ref.name;
  }
  const users: Partial<Record<ActorRole, number[]>> = {};
  const userNames: Partial<Record<ActorRole, string[]>> = {};
  for (const role of ACTOR_ROLES) {
    for (const ref of g.users?.[role] ?? []) {
      if (typeof ref === 'number') (users[role] ??= []).push(ref);
      else (userNames[role] ??= []).push(ref.name);
    }
  }
  if (Object.keys(userNames).length > 0) names.users = userNames;
  return {
    ...ids,
    ...(Object.keys(names).length > 0 ? { names } : {}),
    ...(Object.keys(users).length > 0 ? { users } : {}),
  };
}

/** One name the rules use, where (its YAML path in the rules file) and what it names. */
export interface NameUse {
  readonly itemtype: DirectoryItemtype;
  readonly name: string;
  readonly path: string;
}

/** Every name the rules give instead of an id, with its YAML path (check-config --online, the resolution at start and reload). */
export function namesInRules(r: Rules): NameUse[] {
  const out: NameUse[] = [];
  const add = (p: GlpiFieldsPatch, at: string) => {
    for (const f of Object.keys(NAMED_FIELDS) as NamedField[]) {
      const ref = p[f];
      if (ref !== undefined && typeof ref !== 'number') out.push({ itemtype: NAMED_FIELDS[f].itemtype, name: ref.name, path: `${at}.${NAMED_FIELDS[f].key}` });
    }
    for (const role of ACTOR_ROLES) {
      (p.users?.[role] ?? []).forEach((ref, i) => {
        if (typeof ref !== 'number') out.push({ itemtype: 'User', name: ref.name, path: `${at}.users.${role}[${i}]` });
      });
    }
  };
  add(r.defaults, 'defaults');
  for (const [sev, p] of Object.entries(r.severities)) add(p ?? {}, `severities.${sev}`);
  r.categories.forEach((c, i) => {
    add(c.glpi, `categories[${i}].glpi`);
    for (const [sev, p] of Object.entries(c.severities)) add(p ?? {}, `categories[${i}].severities.${sev}`);
  });
  add(r.fallback.glpi, 'fallback.glpi');
  for (const [sev, p] of Object.entries(r.fallback.severities)) add(p ?? {}, `fallback.severities.${sev}`);
  return out;
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

/**
 * The second trigger of a GLPI Problem (issue 14 item 1): `fingerprints` different incidents of one group open
 * a ticket within `withinMs` of each other. `by: host`: the group is one host's incidents of the category (a
 * server going wrong in several ways at once); `by: category`: the category's incidents across hosts (many
 * hosts losing the same uplink). core/decide.ts `groupProblem`.
 */
export interface TogetherRule {
  readonly fingerprints: number;
  readonly withinMs: number;
  readonly by: 'host' | 'category';
}

/**
 * When an incident becomes a GLPI Problem (issue 14 item 1): `afterCycles` ticket cycles of one fingerprint
 * within `withinMs`, and/or `together` (core/decide.ts). The recurrence pair is given both or neither
 * (config/schema.ts); a rule has at least one of the two triggers.
 */
export interface ProblemRule {
  readonly afterCycles?: number;
  readonly withinMs?: number;
  readonly together?: TogetherRule;
}

export type SymptomMode = 'link' | 'skip' | 'ticket';

export interface CategoryRule {
  readonly name: string;
  /** The category's Problem rule (YAML `problems: { after_cycles, within, together }`); absent: never a Problem. */
  readonly problems?: ProblemRule;
  /** A symptom's ticket (Zabbix 6.4+ cause and symptom events): link (to its cause's ticket, the default), skip (none), ticket (on its own). */
  readonly symptoms?: SymptomMode;
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
