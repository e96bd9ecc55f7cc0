/**
 * Parse values the way Zabbix formats them ("97 %", "950 Mbps", "1.5 GB",
 * "85 °C") into a base number. B and Bps use binary prefixes (1024), every
 * other unit decimal ones (1000), as Zabbix does.
 */
export interface Quantity {
  readonly value: number;
  readonly unit: string;
}

const PREFIXES: Readonly<Record<string, number>> = { K: 1, M: 2, G: 3, T: 4, P: 5, E: 6 };
const BINARY_UNITS = new Set(['B', 'Bps']);
const PATTERN = /^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*(\S*)\s*$/;

export function parseQuantity(text: string): Quantity | undefined {
  const m = PATTERN.exec(text);
  if (!m) return undefined;
  const num = Number(m[1]);
  if (!Number.isFinite(num)) return undefined;
  const rawUnit = m[2] ?? '';
  const first = rawUnit.charAt(0);
  const rest = rawUnit.slice(1);
  const power = PREFIXES[first];
  if (power !== undefined && rest.length > 0) {
    const base = BINARY_UNITS.has(rest) ? 1024 : 1000;
    return { value: num * base ** power, unit: rest };
  }
  return { value: num, unit: rawUnit };
}
