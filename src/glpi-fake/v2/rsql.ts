/**
 * RSQL as GLPI's high-level API reads the `filter` parameter, for the fake.
 *
 * glpi-project/glpi `src/Glpi/Api/HL/RSQL/Lexer.php` @ 0949fcadd479310603719f8244fdde75aff4a37c: `;` AND,
 * `,` OR, parentheses group; a filter is `property operator value`, the property made of `[a-zA-Z0-9_.]`,
 * the operator `=…=` or `!=`; a value may be quoted with `"` or `'` (then it runs to the matching quote and
 * may hold `;`, `,`, `(`), else it runs to the next unescaped `;`, `,` or `)`; unbalanced parentheses are an
 * error ("RSQL query has one or more unclosed groups"), a property without operator too.
 * `src/Glpi/Api/HL/RSQL/Parser.php` @ 03804c5eba82b64c531b7953bcffe3645db520ee: the operators below; the
 * quotes around a value are removed; **an unknown property or operator is ignored** (the filter then
 * selects everything: its unit test expects the SQL `1`); `=like=`'s `*` is SQL `%`.
 */

export class RsqlError extends Error {}

type Token =
  | { kind: 'and' | 'or' | 'open' | 'close' }
  | { kind: 'filter'; property: string; operator: string; value: string | undefined };

function unquote(v: string): string {
  return /^".*"$/s.test(v) || /^'.*'$/s.test(v) ? v.slice(1, -1) : v;
}

export function tokenize(query: string): Token[] {
  const chars = Array.from(query);
  const out: Token[] = [];
  let i = 0;
  let open = 0;
  while (i < chars.length) {
    const c = chars[i]!;
    if (c === '(') {
      out.push({ kind: 'open' });
      open++;
      i++;
    } else if (c === ')') {
      out.push({ kind: 'close' });
      open--;
      i++;
    } else if (c === ';') {
      out.push({ kind: 'and' });
      i++;
    } else if (c === ',') {
      out.push({ kind: 'or' });
      i++;
    } else if (/[a-zA-Z0-9_.]/.test(c)) {
      let property = '';
      while (i < chars.length && chars[i] !== '=' && chars[i] !== '!') property += chars[i++];
      if (i >= chars.length) throw new RsqlError(`RSQL query is missing an operator in filter for property "${property}"`);
      let operator = chars[i++]!;
      while (i < chars.length && chars[i] !== '=') operator += chars[i++];
      if (i >= chars.length) throw new RsqlError(`RSQL query has an incomplete operator in filter for property "${property}"`);
      operator += chars[i++];
      let value = '';
      const first = chars[i];
      if (first === undefined) {
        out.push({ kind: 'filter', property, operator, value: undefined });
        break;
      }
      const end = first === '(' ? ')' : first === '"' || first === "'" ? first : undefined;
      value = first;
      i++;
      while (i < chars.length) {
        const ch = chars[i]!;
        if (ch === '\\') {
          value += ch;
          i++;
          continue;
        }
        if (end !== undefined && ch === end) {
          value += ch;
          i++;
          break;
        }
        if (end === undefined && (ch === ';' || ch === ',' || ch === ')')) break;
        value += ch;
        i++;
      }
      out.push({ kind: 'filter', property, operator, value });
    } else {
      i++;
    }
  }
  if (open !== 0) throw new RsqlError('RSQL query has one or more unclosed groups');
  return out;
}

/** A row's value for a property: strings and numbers (booleans as 0/1, missing/null as null). */
export type Lookup = (property: string) => string | number | null | undefined;

/** MySQL's default collation: case-insensitive, trailing spaces ignored. */
function sqlEq(a: string | number | null, b: string): boolean {
  if (a === null) return false;
  if (typeof a === 'number') return Number(b) === a;
  return a.replace(/ +$/, '').toLowerCase() === b.replace(/ +$/, '').toLowerCase();
}

function like(a: string | number | null, pattern: string, caseSensitive: boolean): boolean {
  if (a === null) return false;
  const re = pattern
    .replace(/%/g, '_')
    .split('')
    .map((ch) => (ch === '*' ? '.*' : ch === '_' ? '.' : ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${re}$`, caseSensitive ? 's' : 'is').test(String(a));
}

function list(v: string): string[] {
  const m = /^\((.*)\)$/s.exec(v);
  if (!m) throw new RsqlError(`Invalid RSQL array: ${v}`);
  return m[1]!.split(',').map((s) => unquote(s.trim()));
}

/**
 * SQL's `<`/`>`: numbers as numbers; otherwise the column's text — a DATETIME column compared with a
 * 'YYYY-MM-DD HH:MM:SS' string compares as dates, which that format's text order is.
 */
function order(a: string | number, b: string): number {
  if (typeof a === 'number' || (/^-?\d+(\.\d+)?$/.test(String(a)) && /^-?\d+(\.\d+)?$/.test(b))) return Number(a) - Number(b);
  return String(a) < b ? -1 : String(a) > b ? 1 : 0;
}

const OPERATORS: Record<string, (a: string | number | null, b: string) => boolean> = {
  '==': (a, b) => sqlEq(a, b),
  '!=': (a, b) => a !== null && !sqlEq(a, b),
  '=in=': (a, b) => list(b).some((x) => sqlEq(a, x)),
  '=out=': (a, b) => a !== null && !list(b).some((x) => sqlEq(a, x)),
  '=lt=': (a, b) => a !== null && order(a, b) < 0,
  '=le=': (a, b) => a !== null && order(a, b) <= 0,
  '=gt=': (a, b) => a !== null && order(a, b) > 0,
  '=ge=': (a, b) => a !== null && order(a, b) >= 0,
  '=like=': (a, b) => like(a, b, true),
  '=ilike=': (a, b) => like(a, b, false),
  '=notlike=': (a, b) => a !== null && !like(a, b, true),
  '=notilike=': (a, b) => a !== null && !like(a, b, false),
  '=isnull=': (a) => a === null,
  '=notnull=': (a) => a !== null,
  '=empty=': (a) => a === null || a === '',
  '=notempty=': (a) => a !== null && a !== '',
};
const UNARY = new Set(['=isnull=', '=notnull=', '=empty=', '=notempty=']);

/**
 * A predicate for the filter. `known(property)`: whether the schema has it (unknown ones are ignored, as GLPI
 * does). Throws RsqlError where GLPI answers 400.
 */
export function compile(query: string, known: (property: string) => boolean, isBoolean: (property: string) => boolean = () => false): (row: Lookup) => boolean {
  const tokens = tokenize(query);
  let pos = 0;
  // group := term ((';' | ',') term)*, AND binding tighter than OR; ignored filters vanish with their separator.
  const group = (): ((row: Lookup) => boolean) | undefined => {
    const ors: ((row: Lookup) => boolean)[][] = [[]];
    while (pos < tokens.length) {
      const t = tokens[pos]!;
      if (t.kind === 'close') break;
      pos++;
      if (t.kind === 'or') ors.push([]);
      else if (t.kind === 'and') continue;
      else if (t.kind === 'open') {
        const inner = group();
        pos++; // the ')'
        if (inner) ors[ors.length - 1]!.push(inner);
      } else if (t.kind === 'filter') {
        const op = OPERATORS[t.operator];
        if (!known(t.property) || !op) continue;
        if (t.value === undefined && !UNARY.has(t.operator)) throw new RsqlError(`RSQL query is missing a value in filter for property "${t.property}"`);
        let value = t.value === undefined ? '' : unquote(t.value);
        // Parser: a boolean property compares 0/1, whatever the spelling (filter_var FILTER_VALIDATE_BOOLEAN).
        if (isBoolean(t.property)) value = ['1', 'true', 'on', 'yes'].includes(value.toLowerCase()) ? '1' : '0';
        const property = t.property;
        ors[ors.length - 1]!.push((row) => op(row(property) ?? null, value));
      }
    }
    const parts = ors.filter((a) => a.length > 0).map((ands) => (row: Lookup) => ands.every((f) => f(row)));
    if (parts.length === 0) return undefined;
    return (row) => parts.some((f) => f(row));
  };
  const f = group();
  return f ?? (() => true);
}
