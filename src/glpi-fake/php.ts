/** Small pieces of PHP semantics that GLPI's API inherits and clients trip over. */

export type PhpValue = string | PhpArray;
export interface PhpArray {
  [key: string]: PhpValue;
}

/**
 * `parse_str()` for a query string: `a[0][b]=1` nests, `a[]=x` appends. Later keys win.
 * (GLPI's APIRest::parseIncomingParams() parses QUERY_STRING this way.)
 */
export function parseStr(params: URLSearchParams): PhpArray {
  const out: PhpArray = {};
  for (const [rawKey, value] of params) {
    const m = /^([^[\]]+)((?:\[[^\]]*\])*)$/.exec(rawKey);
    if (!m) {
      out[rawKey] = value;
      continue;
    }
    const path = [m[1]!, ...[...(m[2] ?? '').matchAll(/\[([^\]]*)\]/g)].map((x) => x[1]!)];
    let node: PhpArray = out;
    for (let i = 0; i < path.length; i++) {
      let key = path[i]!;
      if (key === '') key = String(Object.keys(node).filter((k) => /^\d+$/.test(k)).length);
      if (i === path.length - 1) {
        node[key] = value;
      } else {
        const next = node[key];
        if (typeof next !== 'object') node[key] = {};
        node = node[key] as PhpArray;
      }
    }
  }
  return out;
}

/** PHP `empty()`. */
export function phpEmpty(v: unknown): boolean {
  return v === undefined || v === null || v === '' || v === '0' || v === 0 || v === false || (Array.isArray(v) && v.length === 0);
}

/** PHP `isset()` on an array key. */
export function isset(v: unknown): boolean {
  return v !== undefined && v !== null;
}

/** `filter_var($v, FILTER_VALIDATE_BOOLEAN)` as used for X-GLPI-Sanitized-Content. */
export function phpBool(v: string | undefined, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  return ['1', 'true', 'on', 'yes'].includes(v.trim().toLowerCase());
}

/** An integer from JSON input as GLPI's `intval()` would read it; `d` when absent. */
export function intval(v: unknown, d: number): number {
  if (typeof v === 'number' && Number.isFinite(v)) return Math.trunc(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string') {
    const m = /^\s*[+-]?\d+/.exec(v);
    return m ? Number(m[0]) : 0;
  }
  return d;
}

/**
 * PHP arrays keyed by integers serialize as JSON lists only when the keys are 0..n-1 in order,
 * otherwise as objects. `$_SESSION['glpiactiveentities']` is keyed by entity id.
 */
export function phpKeyedList(ids: readonly number[]): number[] | Record<string, number> {
  if (ids.every((id, i) => id === i)) return [...ids];
  const out: Record<string, number> = {};
  for (const id of ids) out[String(id)] = id;
  return out;
}
