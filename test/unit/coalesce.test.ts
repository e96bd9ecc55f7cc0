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

describe('coalesce: a problem group\'s burst (problems.together)', () => {
  const group = (members: number, line: string): JobSpec => ({
    type: 'problem_group',
    marker: '[zbx:g1]',
    problem: { name: '[zbx:g1] x', content: 'x', urgency: 3, impact: 3, entities_id: 0, itilcategories_id: 0 },
    members: Array.from({ length: members }, (_, i) => ({ fingerprint: `host=h${i}|trigger=#1`, cycle: 1 })),
    required: 3,
    lines: [line],
    delayMs: 0,
  });

  it('a job not sent yet takes the newer one\'s members and keeps every firing\'s line: one GLPI round for the burst', () => {
    const merged = coalesce(group(3, 'third'), group(4, 'fourth'));
    expect(merged.kind).toBe('merge');
    const spec = (merged as { spec: Extract<JobSpec, { type: 'problem_group' }> }).spec;
    expect(spec.members).toHaveLength(4);
    expect(spec.lines).toEqual(['third', 'fourth']);
    // Under a hold-down each waits for its own member's.
    expect(coalesce(group(3, 'third'), { ...group(4, 'fourth'), delayMs: 60_000 } as JobSpec).kind).toBe('append');
  });
});
