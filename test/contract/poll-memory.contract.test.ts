/**
 * The PollMemory contract: the poller's memory of its first sweep of a scope and of the baseline (problems
 * open then, never ticketed). What the poller relies on: no state before a first sweep; a recorded
 * sweep and its baseline are found again; a baseline event Zabbix reports resolved is forgotten.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { CursorState, PollMemory } from '../../src/core/ports.js';
import { backends, type Opened } from './backends.js';
import { T } from './store-samples.js';

const sweep = (scope: string, baselineCount: number): CursorState => ({ scope, baselineAt: T, baselineMode: 'skip', baselineCount });

describe.each(backends)('PollMemory ($name)', (backend) => {
  let opened: Opened<PollMemory>;
  beforeEach(() => {
    opened = backend.openPollMemory();
  });
  afterEach(() => opened.close());

  it('knows no sweep and no baseline at first', () => {
    expect(opened.store.state()).toBeUndefined();
    expect(opened.store.baseline()).toEqual(new Set());
  });

  it('records a sweep with its baseline, once the record resolves', async () => {
    const m = opened.store;
    await m.record(sweep('groups=1;severity>=3', 2), ['100', '101'], T);
    expect(m.state()).toEqual(sweep('groups=1;severity>=3', 2));
    expect(m.baseline()).toEqual(new Set(['100', '101']));
  });

  it('a later sweep replaces the state; its baseline joins the one kept', async () => {
    const m = opened.store;
    await m.record(sweep('a', 1), ['100'], T);
    await m.record(sweep('b', 2), ['100', '200'], T + 1);
    expect(m.state()).toEqual(sweep('b', 2));
    expect(m.baseline()).toEqual(new Set(['100', '200']));
  });

  it('forgets baseline events resolved in Zabbix, and nothing else', async () => {
    const m = opened.store;
    await m.record(sweep('a', 3), ['100', '101', '102'], T);
    m.forget(['101', '999']);
    m.forget([]);
    expect(m.baseline()).toEqual(new Set(['100', '102']));
    expect(m.state()).toEqual(sweep('a', 3));
  });

  it('hands out a copy of the baseline', async () => {
    const m = opened.store;
    await m.record(sweep('a', 1), ['100'], T);
    m.baseline().add('oops');
    expect(m.baseline()).toEqual(new Set(['100']));
  });
});
