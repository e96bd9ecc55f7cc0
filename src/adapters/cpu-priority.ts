// The processing thread's CPU priority (issue 16): decisions and GLPI calls use the CPU the intake leaves, so that
// a webhook's answer never waits for them.
//
// A nice value is not enough on Linux 6.6 and later (the EEVDF scheduler): a thread at nice 19 that has just been
// given a core keeps it for the rest of its time slice, around a millisecond, before a thread at nice 0 that wakes
// on that core runs. Measured on 2 cores (2026-12-03): a busy loop at nice 19 taking a third of a core raised the
// bare ceiling's p90 at 1,000 webhooks/s from 1.0 to 1.8-2.5 ms and its p99 from 2.2 to 4.5-14.7 ms; the same loop
// at SCHED_IDLE left them at 0.96 and 2.6. A SCHED_IDLE thread gives up its core as soon as any other thread wants it.
// It does not make the work free: with the cores saturated, a SCHED_IDLE busy loop still cut the ceiling's accepted
// rate by a fifth at a sixth of a core (docs/performance-log.md, "The eighth sitting"); intake first holds the work back for that.
//
// Node has no binding for sched_setscheduler(2), so chrt(1) (util-linux, on every Debian and RHEL system) sets it
// for this thread's id. A thread may always lower its own priority; going back needs CAP_SYS_NICE, which the
// bridge never asks for.

import { execFileSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

/** Where the thread ended: SCHED_IDLE, only nice 19, or unchanged (with why). */
export type LoweredPriority =
  | { readonly policy: 'idle'; readonly tid: number }
  | { readonly policy: 'nice'; readonly tid: number; readonly why: string }
  | { readonly policy: 'unchanged'; readonly why: string };

/** The nice value set first: what the thread keeps where SCHED_IDLE cannot be had (no chrt, or a filter refusing it). */
export const LOW_NICE = 19;

/** What the work is done with: replaceable in tests. */
export interface PriorityCalls {
  readonly threadId: () => number;
  readonly setNice: (tid: number, nice: number) => void;
  readonly setIdlePolicy: (tid: number) => void;
}

const linuxCalls: PriorityCalls = {
  // /proc/thread-self -> "<pid>/task/<tid>": the calling thread's id (Node has no gettid()).
  threadId: () => Number(readlinkSync('/proc/thread-self').split('/').pop()),
  setNice: (tid, nice) => setPriority(tid, nice),
  setIdlePolicy: (tid) => {
    execFileSync('chrt', ['--idle', '--pid', '0', String(tid)], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 5_000 });
  },
};

function reason(e: unknown): string {
  const err = e as { code?: string; stderr?: Buffer; message?: string };
  if (err.code === 'ENOENT') return 'chrt (util-linux) is not installed';
  const said = err.stderr?.toString().trim();
  return said ? `chrt: ${said}` : (err.message ?? String(e));
}

/**
 * Lower the calling thread's CPU priority: nice 19, then SCHED_IDLE. Never throws: a thread that cannot be lowered
 * runs as before (not Linux, or a system call filter refusing it).
 */
export function lowerThisThread(calls: PriorityCalls = linuxCalls): LoweredPriority {
  let tid: number;
  try {
    tid = calls.threadId();
    if (!Number.isInteger(tid) || tid <= 0) return { policy: 'unchanged', why: `no thread id (read ${tid})` };
    calls.setNice(tid, LOW_NICE);
  } catch (e) {
    return { policy: 'unchanged', why: (e as Error).message };
  }
  try {
    calls.setIdlePolicy(tid);
    return { policy: 'idle', tid };
  } catch (e) {
    return { policy: 'nice', tid, why: reason(e) };
  }
}
