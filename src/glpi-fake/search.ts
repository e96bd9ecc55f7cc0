/**
 * `GET /search/Ticket` of the fake: criteria validation and evaluation, displayed columns.
 *
 * Sources: `src/Api/API.php::searchItems()` @ 8d87c781874190b085250ce335309601092511e8 (validation
 * messages, range, content-range), `src/Api/APIRest.php` @ f3864705d882fc33359dca843bea9a4fa7d1b2a8
 * (206 when count < totalcount, Accept-Range, Content-Range only when totalcount > 0),
 * `CommonITILObject::getSearchOptionsMain()/getSearchOptionsActors()` (GLPI 10: 1 name `itemlink`,
 * 2 id, 12 status, 15 opening date, 19 last update, 21 description, 22 "Writer" = glpi_users.name through
 * `users_id_recipient`, 80 entity) and `Ticket::rawSearchOptions()` (GLPI 11: 87 "External ID" =
 * glpi_tickets.externalid, datatype string). Which of these the fake can display is listed below.
 */
import type { PhpArray, PhpValue } from './php.js';

export interface SearchableTicket {
  id: number;
  name: string;
  content: string;
  status: number;
  priority: number;
  urgency: number;
  impact: number;
  type: number;
  itilcategories_id: number;
  entities_id: number;
  users_id_recipient: number;
  date: string;
  date_mod: string;
  externalid?: string | null;
}

export interface SearchContext {
  version: '10' | '11';
  userName(id: number): string | null;
  categoryName(id: number): string | null;
  entityName(id: number): string;
}

export interface Criterion {
  link: string;
  field?: string;
  searchtype?: string;
  value?: string;
  criteria?: Criterion[];
}

/** Search option ids the fake knows for Ticket (id → can be searched). */
export function ticketOptions(version: '10' | '11'): Set<string> {
  const ids = ['1', '2', '3', '4', '5', '7', '10', '11', '12', '14', '15', '19', '21', '22', '80'];
  if (version === '11') ids.push('87');
  return new Set(ids);
}

/** Default display preferences of Ticket (install/empty_data.php, glpi_displaypreferences for users_id 0). */
export const DEFAULT_DISPLAY = ['12', '19', '15', '3', '4', '5', '7'];

function list(v: PhpValue | undefined): PhpArray[] {
  if (v === undefined || typeof v === 'string') return [];
  return Object.keys(v)
    .sort((a, b) => Number(a) - Number(b))
    .map((k) => v[k])
    .filter((x): x is PhpArray => typeof x === 'object');
}

export function toCriteria(v: PhpValue | undefined): Criterion[] {
  return list(v).map((c) => {
    const str = (k: string) => (typeof c[k] === 'string' ? (c[k] as string) : undefined);
    const out: Criterion = { link: (str('link') ?? 'AND').toUpperCase() };
    if (c.criteria !== undefined) out.criteria = toCriteria(c.criteria);
    const field = str('field');
    const searchtype = str('searchtype');
    const value = str('value');
    if (field !== undefined) out.field = field;
    if (searchtype !== undefined) out.searchtype = searchtype;
    if (value !== undefined) out.value = value;
    return out;
  });
}

/**
 * The validation closure of searchItems(), including its quirk: a nested group is checked and its
 * result returned at once, so criteria after the first nested group are not validated.
 * Returns the msgid of the error, or undefined.
 */
export function checkCriteria(criteria: Criterion[], known: Set<string>): string | undefined {
  for (const c of criteria) {
    if (c.criteria) return checkCriteria(c.criteria, known);
    if (c.field === undefined || c.searchtype === undefined || c.value === undefined) return 'Malformed search criteria';
    if (!/^\d+$/.test(c.field) || !known.has(c.field)) return 'Bad field ID in search criteria';
  }
  return undefined;
}

/** SQL LIKE '%v%' with GLPI's `^` / `$` anchors; `%` and `_` stay wildcards; case-insensitive. */
export function likeMatch(haystack: string, value: string): boolean {
  let v = value;
  let start = '';
  let end = '';
  if (v.startsWith('^')) {
    v = v.slice(1);
    start = '^';
  }
  if (v.endsWith('$')) {
    v = v.slice(0, -1);
    end = '$';
  }
  const body = [...v].map((ch) => (ch === '%' ? '.*' : ch === '_' ? '.' : ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('');
  return new RegExp(`${start || '^.*'}${body}${end || '.*$'}`, 'is').test(haystack);
}

const STATUS_SETS: Record<string, number[]> = {
  notold: [1, 2, 3, 4],
  old: [5, 6],
  notclosed: [1, 2, 3, 4, 5],
  process: [2, 3],
  solved: [5],
  closed: [6],
  all: [1, 2, 3, 4, 5, 6],
};

function columnValue(t: SearchableTicket, field: string, ctx: SearchContext): string | number | null {
  switch (field) {
    case '1': return t.name;
    case '2': return t.id;
    case '3': return t.priority;
    case '4': return null;
    case '5': return null;
    case '7': return t.itilcategories_id > 0 ? ctx.categoryName(t.itilcategories_id) : null;
    case '10': return t.urgency;
    case '11': return t.impact;
    case '12': return t.status;
    case '14': return t.type;
    case '15': return t.date;
    case '19': return t.date_mod;
    case '21': return t.content;
    case '22': return t.users_id_recipient > 0 ? ctx.userName(t.users_id_recipient) : null;
    case '80': return ctx.entityName(t.entities_id);
    case '87': return t.externalid ?? null;
    default: return null;
  }
}

/** Foreign keys searched by id with `equals` (dropdown / itemlink datatypes). */
const ID_EQUALS: Record<string, (t: SearchableTicket) => number> = {
  '1': (t) => t.id, // itemlink: equals compares the item id
  '2': (t) => t.id,
  '3': (t) => t.priority,
  '7': (t) => t.itilcategories_id,
  '10': (t) => t.urgency,
  '11': (t) => t.impact,
  '14': (t) => t.type,
  '22': (t) => t.users_id_recipient,
  '80': (t) => t.entities_id,
};

function test(t: SearchableTicket, c: Criterion, ctx: SearchContext): boolean {
  const field = c.field!;
  const value = c.value ?? '';
  const type = c.searchtype!;
  const negate = type.startsWith('not') && type !== 'notold';
  const base = negate ? type.slice(3) : type;
  let hit: boolean;
  if (field === '12' && (base === 'equals')) {
    const set = STATUS_SETS[value];
    hit = set ? set.includes(t.status) : String(t.status) === value;
  } else if (base === 'equals' || base === 'under') {
    const byId = ID_EQUALS[field];
    hit = byId ? String(byId(t)) === value : String(columnValue(t, field, ctx) ?? '') === value;
  } else if (base === 'contains') {
    const v = columnValue(t, field, ctx);
    hit = value === '' ? true : v !== null && likeMatch(String(v), value);
  } else if (base === 'lessthan' || base === 'morethan') {
    const v = columnValue(t, field, ctx);
    const a = typeof v === 'number' ? v : String(v ?? '');
    const b = typeof v === 'number' ? Number(value) : value;
    hit = base === 'lessthan' ? a < b : a > b;
  } else {
    hit = false;
  }
  return negate ? !hit : hit;
}

/** SQL precedence: AND binds tighter than OR; `AND NOT` / `OR NOT` negate their criterion. */
export function evaluate(t: SearchableTicket, criteria: Criterion[], ctx: SearchContext): boolean {
  const groups: boolean[][] = [[]];
  criteria.forEach((c, i) => {
    const link = i === 0 ? 'AND' : c.link;
    let v = c.criteria ? (c.criteria.length === 0 ? true : evaluate(t, c.criteria, ctx)) : test(t, c, ctx);
    if (link.endsWith('NOT')) v = !v;
    if (link.startsWith('OR') && i > 0) groups.push([v]);
    else groups[groups.length - 1]!.push(v);
  });
  return groups.some((g) => g.every(Boolean));
}

export function fieldsOf(criteria: Criterion[]): string[] {
  return criteria.flatMap((c) => (c.criteria ? fieldsOf(c.criteria) : c.field ? [c.field] : []));
}

export function row(t: SearchableTicket, columns: readonly string[], ctx: SearchContext): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const col of columns) out[col] = columnValue(t, col, ctx);
  return out;
}

export function sortKey(t: SearchableTicket, field: string, ctx: SearchContext): string | number {
  const v = columnValue(t, field, ctx);
  return v ?? '';
}
