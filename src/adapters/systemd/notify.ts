import { spawn } from 'node:child_process';
import type { Logger } from '../../observability/logger.js';

/**
 * sd_notify(3) for the daemon under systemd (Type=notify): READY=1, RELOADING=1, STOPPING=1,
 * STATUS=… and the watchdog's WATCHDOG=1. Without NOTIFY_SOCKET (not started by systemd, tests,
 * the CLI) every call does nothing.
 *
 * How a message gets to systemd. The notify socket is an AF_UNIX datagram socket, and Node's core
 * has none (dgram is UDP only; net is stream only). The choices weighed:
 * - systemd's own `systemd-notify` tool (chosen). It is on every host that runs the unit (package
 *   systemd), needs no dependency, no compiler and no FFI. Its known race: systemd attributes a
 *   message to a unit by the sender's PID, and a helper that has exited by the time PID 1 reads the
 *   message is not attributed, so the message is dropped even with NotifyAccess=all. Since systemd
 *   246 the tool closes that race itself: unless --no-block, it follows the message with BARRIER=1
 *   (sd_notify_barrier(3)) and waits until the manager has processed both before it exits
 *   (systemd-notify(1), "Note that sd_notify() notifications may be attributed to units correctly
 *   only if …"). Debian 11 has 247, Debian 12 252. Its cost: one short process per message (a ping
 *   every WatchdogSec/2, STATUS= only when it changes), and the unit needs NotifyAccess=all, since
 *   the sender is the helper, not the main PID.
 * - A native addon (npm unix-dgram, a maintained AF_UNIX datagram binding; sd-notify, which links
 *   libsystemd): the main PID sends itself (NotifyAccess=main) without a process per message, but a
 *   native build (node-gyp, headers, libsystemd-dev for sd-notify) on every install, for four short
 *   strings. An FFI library (koffi) avoids the build but calls socket()/sendto() with hand-made
 *   structs. Either stays possible: `NotifySender` is the seam.
 * - A long-lived helper process (python3, socat): one more runtime on the host, and a helper that
 *   keeps pinging while the event loop is stuck would defeat the watchdog.
 *
 * The watchdog's timer runs on the main thread's event loop and is unref'd: a loop stuck in a
 * synchronous call (or a stopped process) sends no ping, and systemd kills and restarts the daemon
 * after WatchdogSec=. The processing thread has its own loop; the daemon stops itself when that
 * thread dies (app.ts), so the main loop is what the watchdog watches.
 */

/** Sends one notification message (newline-separated VARIABLE=VALUE assignments). */
export interface NotifySender {
  send(assignments: readonly string[]): Promise<void>;
}

/** A helper that does not finish in this time is killed: a notification must not hold anything up. */
const SEND_TIMEOUT_MS = 5_000;

/** `systemd-notify VAR=VALUE …` (see above); PATH must hold it (/usr/bin under systemd). */
export const systemdNotifySender: NotifySender = {
  send: (assignments) =>
    new Promise<void>((resolve, reject) => {
      const child = spawn('systemd-notify', [...assignments], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        if (stderr.length < 1000) stderr += d;
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), SEND_TIMEOUT_MS);
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else reject(new Error(`systemd-notify ${signal ? `killed by ${signal}` : `exited ${code}`}${stderr.trim() ? `: ${stderr.trim()}` : ''}`));
      });
    }),
};

/**
 * The watchdog's timeout in microseconds, or undefined when systemd asks for no pings: as
 * sd_watchdog_enabled(3) reads WATCHDOG_USEC and WATCHDOG_PID (set for this process only, so a
 * child that inherited them does not ping for its parent).
 */
export function watchdogUsec(env: NodeJS.ProcessEnv, pid: number): number | undefined {
  const usec = env.WATCHDOG_USEC;
  if (usec === undefined || !/^\d+$/.test(usec) || Number(usec) <= 0) return undefined;
  const forPid = env.WATCHDOG_PID;
  if (forPid !== undefined && (!/^\d+$/.test(forPid) || Number(forPid) !== pid)) return undefined;
  return Number(usec);
}

/** STATUS= is one line; systemctl status shows it whole. */
function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').slice(0, 400);
}

export interface NotifierOptions {
  readonly logger: Logger;
  readonly env?: NodeJS.ProcessEnv;
  readonly pid?: number;
  readonly sender?: NotifySender;
}

export class SystemdNotifier {
  /** Whether systemd listens (NOTIFY_SOCKET is set). */
  readonly enabled: boolean;
  /** How often WATCHDOG=1 is sent: half of WATCHDOG_USEC, as sd_watchdog_enabled(3) recommends; undefined: no watchdog. */
  readonly watchdogIntervalMs: number | undefined;
  readonly #logger: Logger;
  readonly #sender: NotifySender;
  /** Messages go one at a time, in order (READY=1 before the STATUS= that follows it). */
  #tail: Promise<void> = Promise.resolve();
  #pingQueued = false;
  #watchdog: NodeJS.Timeout | undefined;
  #lastStatus: string | undefined;
  #failing = false;

  constructor(opts: NotifierOptions) {
    const env = opts.env ?? process.env;
    this.enabled = (env.NOTIFY_SOCKET ?? '') !== '';
    const usec = this.enabled ? watchdogUsec(env, opts.pid ?? process.pid) : undefined;
    this.watchdogIntervalMs = usec === undefined ? undefined : Math.max(1, Math.floor(usec / 2000));
    this.#logger = opts.logger;
    this.#sender = opts.sender ?? systemdNotifySender;
  }

  /** Queue a message; resolves once it is sent or has failed (failures are logged, never thrown). */
  notify(...assignments: string[]): Promise<void> {
    if (!this.enabled) return Promise.resolve();
    this.#tail = this.#tail.then(() =>
      this.#sender.send(assignments).then(
        () => {
          if (this.#failing) this.#logger.info('systemd notifications are sent again');
          this.#failing = false;
        },
        (e: unknown) => {
          // Logged once until one succeeds again: a ping every few seconds must not flood the log.
          if (!this.#failing) this.#logger.warn({ err: (e as Error).message, code: 'SYSTEMD_NOTIFY_FAILED' }, 'cannot notify systemd (NOTIFY_SOCKET); readiness, status and watchdog pings may be lost');
          this.#failing = true;
        },
      ),
    );
    return this.#tail;
  }

  /** Started (or done reloading): READY=1, with the status line. */
  ready(status: string): Promise<void> {
    this.#lastStatus = oneLine(status);
    return this.notify('READY=1', `STATUS=${this.#lastStatus}`);
  }

  /**
   * Reloading the configuration until the next ready(). MONOTONIC_USEC is what Type=notify-reload
   * (systemd 253+) requires with it; older managers ignore it. Node's hrtime is CLOCK_MONOTONIC on Linux.
   */
  reloading(): Promise<void> {
    const usec = process.hrtime.bigint() / 1000n;
    return this.notify('RELOADING=1', `MONOTONIC_USEC=${usec}`, 'STATUS=reloading the configuration');
  }

  /**
   * The daemon is stopping: systemd shows "deactivating" and TimeoutStopSec= runs. The watchdog goes on
   * pinging while the work in flight drains: a loop stuck then is still caught.
   */
  stopping(status = 'stopping: finishing the work in flight'): Promise<void> {
    this.#lastStatus = oneLine(status);
    return this.notify('STOPPING=1', `STATUS=${this.#lastStatus}`);
  }

  /** STATUS=…, sent only when it changed. */
  status(text: string): Promise<void> {
    const line = oneLine(text);
    if (line === this.#lastStatus) return this.#tail;
    this.#lastStatus = line;
    return this.notify(`STATUS=${line}`);
  }

  /** Ping every watchdogIntervalMs from this thread's event loop, until stopWatchdog(). */
  startWatchdog(): void {
    if (this.watchdogIntervalMs === undefined || this.#watchdog) return;
    this.#watchdog = setInterval(() => {
      // A ping still waiting (systemd slow to read) is not doubled.
      if (this.#pingQueued) return;
      this.#pingQueued = true;
      void this.notify('WATCHDOG=1').finally(() => {
        this.#pingQueued = false;
      });
    }, this.watchdogIntervalMs);
    this.#watchdog.unref();
  }

  stopWatchdog(): void {
    if (this.#watchdog) clearInterval(this.#watchdog);
    this.#watchdog = undefined;
  }

  /** Wait until every queued message has gone (before the process exits). */
  flush(): Promise<void> {
    return this.#tail;
  }
}

/** The one-line summary systemctl status shows under the unit. */
export function statusLine(s: {
  readonly address: string;
  readonly pending: number;
  readonly dead: number;
  readonly undecided: number;
  /** GLPI's session as the processing thread sees it; undefined when the thread does not answer. */
  readonly glpiSession: string | undefined;
}): string {
  const glpi = s.glpiSession === undefined ? 'processing thread not answering' : s.glpiSession === 'login_failed' ? 'GLPI login failed (see the log)' : `GLPI session ${s.glpiSession}`;
  const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
  return `accepting webhooks on ${s.address}; ${plural(s.pending, 'pending job', 'pending jobs')}, ${plural(s.dead, 'dead letter', 'dead letters')}, ${plural(s.undecided, 'alert', 'alerts')} to decide; ${glpi}`;
}
