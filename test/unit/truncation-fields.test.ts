/**
 * The fields an alert's long text is cut in are one list (core/limits.ts TRUNCATED_FIELDS and
 * TRUNCATED_UPDATE_FIELDS): every `truncate` limit is on it, normalise's quick "nothing to cut" check and
 * truncateAlert read it, so the two cannot disagree. For each field: a webhook value at its limit comes out as
 * sent and the alert is returned as is; one character more is cut to the limit with the marker.
 */
import { describe, expect, it } from '@jest/globals';
import type { Alert } from '../../src/core/alert.js';
import { characters, LIMITS, TRUNCATED_FIELDS, TRUNCATED_UPDATE_FIELDS, truncateAlert, withinTruncationLimits, type LimitedField } from '../../src/core/limits.js';
import { normalise, type ZabbixEvent } from '../../src/core/normalise.js';

const MARKER = /… \[truncated [\d,]+ characters\]$/;

const problem: ZabbixEvent = { event_id: '101', event_value: '1', event_nseverity: '4', trigger_id: '23133', trigger_name: 'High CPU', host_host: 'web-01', tags: [] };
const update: ZabbixEvent = { ...problem, event_update_status: '1', event_update_action: 'acknowledged', event_update_message: 'on it', user_fullname: 'Ann Ops' };

/** A field's limit, the event that carries it, how to read it from an alert and how to set it in one. */
type Case = readonly [LimitedField, ZabbixEvent, (a: Alert) => string | undefined, (a: Alert, v: string) => Alert];
const cases: Case[] = [
  ...TRUNCATED_FIELDS.map((f): Case => [f, problem, (a) => a[f], (a, v) => ({ ...a, [f]: v })]),
  ...TRUNCATED_UPDATE_FIELDS.map(([key, f]): Case => [f, update, (a) => a.update?.[key], (a, v) => ({ ...a, update: { ...a.update!, [key]: v } })]),
];

describe('one list of truncated fields', () => {
  it('every limit whose excess is truncated is on it (and only those)', () => {
    const truncating = (Object.keys(LIMITS) as LimitedField[]).filter((f) => LIMITS[f].over === 'truncate').sort();
    const listed = [...TRUNCATED_FIELDS, ...TRUNCATED_UPDATE_FIELDS.map(([, f]) => f), 'tagCount'].sort();
    expect(listed).toEqual(truncating);
  });

  it.each(cases)('%s: at its limit returned as is, one more character truncated', (field, event, read, set) => {
    const max = LIMITS[field].max;
    const parameter = LIMITS[field].parameters[0]!;

    const at = normalise({ ...event, [parameter]: 'a'.repeat(max) });
    expect(read(at)).toBe('a'.repeat(max));
    expect(withinTruncationLimits(at)).toBe(true);
    expect(truncateAlert(at)).toBe(at);

    // At the limit in characters though longer in UTF-16 units (an emoji is one character): kept too.
    const wide = normalise({ ...event, [parameter]: `${'a'.repeat(max - 1)}😀` });
    expect(read(wide)).toBe(`${'a'.repeat(max - 1)}😀`);
    expect(truncateAlert(wide)).toBe(wide);

    const over = normalise({ ...event, [parameter]: 'a'.repeat(max + 1) });
    const kept = read(over)!;
    expect(kept).toMatch(MARKER);
    expect(characters(kept)).toBe(max);
    expect(truncateAlert(over)).toBe(over);
    // The quick check sees the field too: an alert with it one over is not "nothing to cut", and gets cut.
    const long = set(at, 'a'.repeat(max + 1));
    expect(withinTruncationLimits(long)).toBe(false);
    expect(read(truncateAlert(long))).toBe(kept);
  });

  it(`tags: ${LIMITS.tagCount.max} returned as is, one more and the first ${LIMITS.tagCount.max} are kept`, () => {
    const tags = (n: number) => Array.from({ length: n }, (_v, i) => ({ tag: `t${i}`, value: 'v' }));
    const at = normalise({ ...problem, tags: tags(LIMITS.tagCount.max) });
    expect(at.tags).toHaveLength(LIMITS.tagCount.max);
    expect(truncateAlert(at)).toBe(at);
    const over = normalise({ ...problem, tags: tags(LIMITS.tagCount.max + 1) });
    expect(over.tags).toEqual(tags(LIMITS.tagCount.max));
  });
});
