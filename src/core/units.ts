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
// Applied to trimmed text only: nothing before the number, nothing after the unit, so no run of spaces to backtrack over.
const PATTERN = /^([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?) ?(\S*)$/;

/** A value with its unit is short ("97 %", "1.5 GB", "-12.25e3 Bps"): longer text is not a quantity, and is not scanned. */
export const QUANTITY_MAX_LENGTH = 64;

export function parseQuantity(text: string): Quantity | undefined {
  const trimmed = text.trim();
  if (trimmed.length > QUANTITY_MAX_LENGTH) return undefined;
  const m = PATTERN.exec(trimmed.replace(/\s+/g, ' '));
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
