import { describe, expect, it } from '@jest/globals';
import { coalesce, MAX_MERGED_LINES } from '../../src/core/coalesce.js';
import type { JobSpec } from '../../src/core/decide.js';

const fu = (...lines: string[]): JobSpec => ({ type: 'followup', lines, isPrivate: false });

describe('coalesce (storm control)', () => {
  it.each([
    ['follow-up + follow-up → one follow-up', fu('a'), fu('b'), { kind: 'merge', spec: fu('a', 'b') }],
    ['private + public follow-up → two calls', fu('a'), { ...fu('b'), isPrivate: true }, { kind: 'append' }],
    ['queued solution + reopen → the ticket simply stays open', { type: 'solve', mode: 'solve', lines: ['recovered'] }, { type: 'reopen', lines: ['again'] }, { kind: 'replace', spec: fu('recovered', 'again') }],
    ['follow-up + urgency update → one update carrying both texts', fu('a'), { type: 'update_ticket', urgency: 5, impact: 5, lines: ['b'], isPrivate: false }, { kind: 'replace', spec: { type: 'update_ticket', urgency: 5, impact: 5, lines: ['a', 'b'], isPrivate: false } }],
    ['follow-up + solution → both, in order', fu('a'), { type: 'solve', mode: 'solve', lines: ['x'] }, { kind: 'append' }],
  ] as const)('%s', (_n, queued, next, expected) => {
    expect(coalesce(queued as JobSpec, next as JobSpec)).toEqual(expected);
  });

  it('caps a merged follow-up and says how much it left out', () => {
    let spec: JobSpec = fu('line 0');
    for (let i = 1; i < 500; i++) {
      const c = coalesce(spec, fu(`line ${i}`));
      if (c.kind !== 'merge') throw new Error('expected merge');
      spec = c.spec;
    }
    if (spec.type !== 'followup') throw new Error('expected follow-up');
    expect(spec.lines.length).toBe(MAX_MERGED_LINES);
    expect(spec.lines[spec.lines.length - 1]).toBe('line 499');
    expect(spec.lines).toContain(`… ${500 - (MAX_MERGED_LINES - 2) - 1} more line(s) omitted …`);
    expect(spec.lines.slice(0, 3)).toEqual(['line 0', 'line 1', 'line 2']);
  });
});
