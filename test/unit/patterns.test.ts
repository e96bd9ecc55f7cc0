import { describe, expect, it } from '@jest/globals';
import { compilePattern, Glob, PATTERN_INPUT_MAX } from '../../src/core/rules.js';
import { parseQuantity, QUANTITY_MAX_LENGTH } from '../../src/core/units.js';

/**
 * Issue 11, item 1: rule patterns and value parsing must cost time in
 * proportion to their input, whatever a hostile Zabbix field holds. Asserted
 * as input bounds and semantics here; the timing ratio is the benchmark's.
 */
function globAsRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('.*')}$`, 'i');
}

describe('glob patterns', () => {
  const globs = ['system.cpu.*', '*cpu*', 'vfs.fs.size[/,pused]', '*', 'a*b*c', 'ab*ba', '*.temperature[*]', 'Interface * Link down', ''];
  const texts = ['system.cpu.util', 'SYSTEM.CPU.load[all,avg1]', 'vfs.fs.size[/,pused]', 'abc', 'aXbYc', 'aba', 'abba', 'hw.cpu.temperature[0]', 'Interface eth0: Link down', '', 'cpu'];
  it.each(globs)('"%s" matches exactly what the regular expression it stands for matches', (glob) => {
    const g = new Glob(glob);
    const re = globAsRegExp(glob);
    for (const t of texts) expect([t, g.test(t)]).toEqual([t, re.test(t)]);
  });

  it('reads at most PATTERN_INPUT_MAX characters of a field (a 60,000-character host name costs no more than a long one)', () => {
    const hostile = `${' '.repeat(PATTERN_INPUT_MAX)}x${' '.repeat(60_000)}`;
    expect(new Glob('*x*').test(hostile)).toBe(false);
    expect(new Glob('*x*').test(`${' '.repeat(PATTERN_INPUT_MAX - 1)}x`)).toBe(true);
    expect(compilePattern('/x/').test(hostile)).toBe(false);
    expect(compilePattern('/x/').test(`${' '.repeat(10)}x`)).toBe(true);
  });

  it('explains a match with the pattern as the operator wrote it', () => {
    expect(compilePattern('system.cpu.*').source).toBe('system.cpu.*');
    expect(compilePattern('/^eth\\d+$/i').source).toBe('^eth\\d+$');
  });
});

describe('value parsing', () => {
  it.each([
    ['97 %', 97, '%'],
    [' 97 % ', 97, '%'],
    ['97%', 97, '%'],
    ['1.5 GB', 1.5 * 1024 ** 3, 'B'],
    ['950 Mbps', 950e6, 'bps'],
    ['-12.5e1 °C', -125, '°C'],
    ['42', 42, ''],
  ])('"%s" is %d %s', (text, value, unit) => {
    expect(parseQuantity(text)).toEqual({ value, unit });
  });

  it.each([
    ['1 x y', 'two words after the number'],
    ['abc', 'no number'],
    [`1${' '.repeat(65_000)}x y`, 'the backtracking case of the old parser: refused by length, not scanned'],
    ['9'.repeat(QUANTITY_MAX_LENGTH + 1), 'longer than any value with a unit'],
  ])('"%s" is not a quantity (%s)', (text) => {
    expect(parseQuantity(text.slice(0, 70_000))).toBeUndefined();
  });

  it('a value padded with any amount of spaces still parses (the bound applies after trimming)', () => {
    expect(parseQuantity(`${' '.repeat(10_000)}97 %${' '.repeat(10_000)}`)).toEqual({ value: 97, unit: '%' });
  });
});
