/**
 * How GLPI 10 stores and returns text, reproduced for the fake.
 *
 * Sources read (glpi-project/glpi):
 * - `src/Toolbox/Sanitizer.php` (10.0 branch, read in full): `sanitize()` first escapes the value for
 *   SQL (`mysqli::real_escape_string`), then `encodeHtmlSpecialChars()` replaces, in this order,
 *   `&` → `&#38;`, `<` → `&#60;`, `>` → `&#62;` (nothing else: quotes are not HTML-encoded).
 *   `decodeHtmlSpecialChars()` reverses that mapping when the value holds one of those three entities,
 *   otherwise it falls back to the legacy mapping `&lt;` / `&gt;`.
 * - `src/Api/API.php` @ 8d87c781874190b085250ce335309601092511e8: `createItems()` and `updateItems()` run
 *   `Sanitizer::sanitize()` on the whole input; `getItem()` / `getItems()` call `decodeHtmlSpecialChars()`
 *   on every string field only when the request header `X-GLPI-Sanitized-Content` is false
 *   (`APIRest::returnSanitizedContent()`, default true); `searchItems()` never decodes.
 * - `src/CommonDBTM.php` (`filterValues()`, called by `add()` and `update()` after `prepareInputFor*`):
 *   a value whose search option has datatype `string`, `email` or `itemlink` (Ticket `name` is option 1,
 *   `itemlink`) and whose `mb_strlen` exceeds 255 raises a PHP warning and is cut with
 *   `mb_substr($value, 0, 255)`. The value cut is the *sanitized* one (SQL-escaped and HTML-encoded),
 *   so `&`, `<`, `>` cost 5 characters and `'`, `"`, `\`, newlines cost 2 towards the 255. The same
 *   truncation is reported on GLPI 10.0.18 (glpi-project/glpi-agent#1005 quotes the warning). So the
 *   create succeeds with a shortened name, it does not fail: MySQL strict mode never sees a long value.
 *   GLPI 11 dropped the sanitizer; 11.0.x releases before glpi-project/glpi#23159 / #23858 let an
 *   over-long title reach MySQL ("Data too long for column 'name'", an exception); later 11.0 releases
 *   truncate titles to 255 again. The fake implements the truncation for both versions.
 */

const ENCODE: readonly [string, string][] = [
  ['&', '&#38;'],
  ['<', '&#60;'],
  ['>', '&#62;'],
];

/** `Sanitizer::encodeHtmlSpecialChars()`: `&` first, so the `&` of the entities is not encoded again. */
export function encodeHtml(value: string): string {
  let out = value;
  for (const [from, to] of ENCODE) out = out.split(from).join(to);
  return out;
}

/** `Sanitizer::decodeHtmlSpecialChars()`: new entities if any is present, else the legacy `&lt;`/`&gt;`. */
export function decodeHtml(value: string): string {
  const current = ENCODE.some(([, entity]) => value.includes(entity));
  const mapping: readonly [string, string][] = current ? [...ENCODE].reverse() : [['>', '&gt;'], ['<', '&lt;']];
  let out = value;
  for (const [char, entity] of mapping) out = out.split(entity).join(char);
  return out;
}

/** Characters `mysqli::real_escape_string` prefixes with a backslash. */
const SQL_ESCAPED = new Set(['\\', "'", '"', '\n', '\r', '\0', '\x1a']);

const codePoints = (s: string): string[] => Array.from(s);

/**
 * What ends up in a VARCHAR(255) column (or the reason the INSERT fails) for a string given to the API.
 * `encode` is false for GLPI 11 (no sanitizer, hence no SQL escaping counted either).
 * Returns `undefined` when the cut leaves a lone trailing backslash: the SQL literal's closing quote is
 * then escaped and MySQL rejects the statement (derived from the code above, not observed).
 */
export function storeVarchar(value: string, encode: boolean, max = 255): string | undefined {
  if (!encode) return codePoints(value).slice(0, max).join('');
  // The sanitized form, as a list of "units" each one code point of the escaped string.
  const escaped: string[] = [];
  for (const ch of codePoints(encodeHtml(value))) {
    if (SQL_ESCAPED.has(ch)) escaped.push('\\', ch);
    else escaped.push(ch);
  }
  if (escaped.length <= max) return encodeHtml(value);
  const cut = escaped.slice(0, max);
  // MySQL reads the literal back: `\x` → `x`. A lone backslash at the end breaks the statement.
  let out = '';
  for (let i = 0; i < cut.length; i++) {
    if (cut[i] === '\\') {
      if (i + 1 >= cut.length) return undefined;
      out += cut[i + 1];
      i++;
    } else {
      out += cut[i];
    }
  }
  return out;
}

/** A text (longtext) column: no length limit worth modelling. */
export function storeText(value: string, encode: boolean): string {
  return encode ? encodeHtml(value) : value;
}

/** Apply `decodeHtml` to every string value of a row (what `X-GLPI-Sanitized-Content: false` does). */
export function decodeRow<T extends Record<string, unknown>>(row: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) out[k] = typeof v === 'string' ? decodeHtml(v) : v;
  return out as T;
}
