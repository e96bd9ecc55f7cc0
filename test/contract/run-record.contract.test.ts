/**
 * The RunRecord contract: whether the last run stopped cleanly. What the dispatcher relies on: after a
 * run that did not record a clean stop, every ticket creation still queued or running counts as possibly
 * sent (attempted at least once), so its next run searches GLPI for its marker before creating.
 */
import { describe, expect, it } from '@jest/globals';
import { backends, freshStore } from './backends.js';
import { T, create, followup } from './store-samples.js';

const none = new Set<string>();

describe.each(backends)('RunRecord ($name)', (backend) => {
  const store = freshStore(backend);

  it('a first start follows no unclean stop', () => {
    expect(store().recordStart(T)).toBe(false);
  });

  it('a start after a run that did not stop cleanly says so, and marks queued and running creates as possibly sent', () => {
    const s = store();
    s.recordStart(T);
    const queued = s.enqueue('A', 1, create(), T + 60_000, T);
    const running = s.enqueue('B', 1, create(), T, T);
    const tried = s.enqueue('C', 1, create(), T, T);
    const follow = s.enqueue('D', 1, followup('x'), T + 60_000, T);
    const done = s.enqueue('E', 1, create(), T, T);
    s.claimReady(T, 10, none);
    s.rescheduleJob(tried, T, 'GLPI_TIMEOUT', T);
    s.claimReady(T, 10, none); // tried: attempts 2
    s.completeJob(done, T);
    expect(s.recordStart(T + 1)).toBe(true);
    expect([queued, running, tried, follow, done].map((id) => s.job(id)?.attempts)).toEqual([1, 1, 2, 0, 1]);
    expect(s.job(queued)?.status).toBe('pending');
    expect(s.job(running)?.status).toBe('running');
  });

  it('a start after a clean stop says so, and leaves the queue as it is', () => {
    const s = store();
    s.recordStart(T);
    const queued = s.enqueue('A', 1, create(), T + 60_000, T);
    s.recordCleanStop();
    expect(s.recordStart(T + 1)).toBe(false);
    expect(s.job(queued)?.attempts).toBe(0);
    // And the run now going on has not stopped cleanly yet.
    expect(s.recordStart(T + 2)).toBe(true);
    expect(s.job(queued)?.attempts).toBe(1);
  });
});
