/**
 * What the poller and the GLPI read-back remember across a restart, in the state (issue 14 items 5 and 6):
 * - announcedOnOpenEvents: the notes an incident announced on each of its open events (the poller reads the
 *   maintenances it announced back from there, for the "left maintenance" note after a restart);
 * - WatchCursor: where the GLPI read-back stopped (GLPI's date_mod), written in the state's transactions.
 */
import { describe, expect, it } from '@jest/globals';
import { backends, freshStore } from './backends.js';
import { T, incident } from './store-samples.js';

describe.each(backends)('announcedOnOpenEvents ($name)', (backend) => {
  const store = freshStore(backend);

  it('per open event, its keys starting with the prefix, oldest first; other events, closed events and other keys left out', () => {
    const s = store();
    s.putIncident(
      incident('A', 'open', {
        announced: ['27:maintenance:3:100', '27:disabled:trigger', '28:maintenance:3:100', '27:maintenance_end:3:100', '27:maintenance:4:200', 'glpi:solved:5', '270:maintenance:9:1'],
      }),
      T,
    );
    s.putEvents('A', [{ eventId: '27', cycle: 1, open: true }, { eventId: '28', cycle: 1, open: false }, { eventId: '29', cycle: 1, open: true }]);
    s.putIncident(incident('B', 'open'), T);
    s.putEvents('B', [{ eventId: '31', cycle: 1, open: true }]);
    expect(s.announcedOnOpenEvents('maintenance')).toEqual(new Map([['27', ['maintenance:3:100', 'maintenance_end:3:100', 'maintenance:4:200']]]));
    expect(s.announcedOnOpenEvents('disabled:')).toEqual(new Map([['27', ['disabled:trigger']]]));
    expect(s.announcedOnOpenEvents('nothing')).toEqual(new Map());
  });

  it('follows the incident as it is written: a new note, an event closed', () => {
    const s = store();
    s.putIncident(incident('A', 'open', { announced: ['27:maintenance:3:100'] }), T);
    s.putEvents('A', [{ eventId: '27', cycle: 1, open: true }]);
    s.putIncident(incident('A', 'open', { announced: ['27:maintenance:3:100', '27:maintenance_end:3:100'] }), T + 1);
    expect(s.announcedOnOpenEvents('maintenance').get('27')).toEqual(['maintenance:3:100', 'maintenance_end:3:100']);
    s.putEvents('A', [{ eventId: '27', cycle: 1, open: false }]);
    expect(s.announcedOnOpenEvents('maintenance')).toEqual(new Map());
  });
});

describe.each(backends)('WatchCursor ($name)', (backend) => {
  const store = freshStore(backend);

  it('none at first; then the last one put', () => {
    const s = store();
    expect(s.glpiWatchCursor()).toBeUndefined();
    s.putGlpiWatchCursor('2026-12-02 01:00:00');
    s.putGlpiWatchCursor('2026-12-02 01:00:07');
    expect(s.glpiWatchCursor()).toBe('2026-12-02 01:00:07');
  });

  it('is part of a state transaction: rolled back with it', () => {
    const s = store();
    s.putGlpiWatchCursor('2026-12-02 01:00:00');
    expect(() =>
      s.transaction(() => {
        s.putGlpiWatchCursor('2026-12-02 02:00:00');
        throw new Error('decision failed');
      }),
    ).toThrow('decision failed');
    expect(s.glpiWatchCursor()).toBe('2026-12-02 01:00:00');
  });
});
