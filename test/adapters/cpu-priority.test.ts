import { describe, expect, it } from '@jest/globals';
import { LOW_NICE, lowerThisThread, type PriorityCalls } from '../../src/adapters/cpu-priority.js';

/** The calls lowerThisThread makes, recorded; `fail` names the ones that throw, and with what. */
function recorded(fail: Partial<Record<keyof PriorityCalls, Error>> = {}, tid = 4242): { calls: PriorityCalls; made: string[] } {
  const made: string[] = [];
  const step = (name: keyof PriorityCalls, what: string) => {
    made.push(what);
    const e = fail[name];
    if (e) throw e;
  };
  return {
    made,
    calls: {
      threadId: () => {
        step('threadId', 'threadId');
        return tid;
      },
      setNice: (t, nice) => step('setNice', `nice ${t} ${nice}`),
      setIdlePolicy: (t) => step('setIdlePolicy', `idle ${t}`),
    },
  };
}

describe('lowering the processing thread', () => {
  it('sets nice 19 first, then SCHED_IDLE, on the calling thread only', () => {
    const { calls, made } = recorded();
    expect(lowerThisThread(calls)).toEqual({ policy: 'idle', tid: 4242 });
    expect(made).toEqual(['threadId', `nice 4242 ${LOW_NICE}`, 'idle 4242']);
  });

  it('keeps nice 19 and says why when chrt is not installed', () => {
    const missing = Object.assign(new Error('spawnSync chrt ENOENT'), { code: 'ENOENT' });
    const { calls } = recorded({ setIdlePolicy: missing });
    expect(lowerThisThread(calls)).toEqual({ policy: 'nice', tid: 4242, why: 'chrt (util-linux) is not installed' });
  });

  it('keeps nice 19 and passes on what chrt said when a system call filter refuses the policy', () => {
    const refused = Object.assign(new Error('Command failed: chrt --idle --pid 0 4242'), { status: 1, stderr: Buffer.from('chrt: failed to set pid 4242\'s policy: Operation not permitted\n') });
    const { calls } = recorded({ setIdlePolicy: refused });
    expect(lowerThisThread(calls)).toEqual({ policy: 'nice', tid: 4242, why: "chrt: chrt: failed to set pid 4242's policy: Operation not permitted" });
  });

  it('leaves the thread as it is when it cannot find its id or lower its nice value (not Linux), without throwing', () => {
    expect(lowerThisThread(recorded({ threadId: new Error("ENOENT: no such file or directory, readlink '/proc/thread-self'") }).calls)).toEqual({
      policy: 'unchanged',
      why: "ENOENT: no such file or directory, readlink '/proc/thread-self'",
    });
    const { calls, made } = recorded({ setNice: new Error('EACCES: permission denied, uv_os_setpriority') });
    expect(lowerThisThread(calls)).toEqual({ policy: 'unchanged', why: 'EACCES: permission denied, uv_os_setpriority' });
    expect(made).not.toContain('idle 4242');
    expect(lowerThisThread(recorded({}, Number.NaN).calls)).toEqual({ policy: 'unchanged', why: 'no thread id (read NaN)' });
  });
});
