import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { statusLine, SystemdNotifier, watchdogUsec, type NotifySender } from '../../src/adapters/systemd/notify.js';
import { createLogger } from '../../src/observability/logger.js';
import { ROOT } from '../helpers/fixtures.js';

/** The daemon's side of sd_notify(3); the built daemon under a notify socket is test/integration/systemd-notify.test.ts. */

const UNIT = readFileSync(join(ROOT, 'systemd', 'zabbix-glpi-bridge.service'), 'utf8');

function recordingSender(fail?: () => Error | undefined): NotifySender & { readonly sent: string[][] } {
  const sent: string[][] = [];
  return {
    sent,
    send: async (assignments) => {
      sent.push([...assignments]);
      const e = fail?.();
      if (e) throw e;
    },
  };
}

function logLines(): { logger: ReturnType<typeof createLogger>; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger('info', { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { logger, lines };
}

afterEach(() => {
  jest.useRealTimers();
});

describe('watchdogUsec (as sd_watchdog_enabled)', () => {
  it('reads WATCHDOG_USEC, for this process only when WATCHDOG_PID is set', () => {
    expect(watchdogUsec({ WATCHDOG_USEC: '30000000' }, 42)).toBe(30_000_000);
    expect(watchdogUsec({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }, 42)).toBe(30_000_000);
    // Inherited from a parent that systemd watches: not ours to ping.
    expect(watchdogUsec({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '41' }, 42)).toBeUndefined();
    for (const bad of ['', '0', '-5', '1e6', 'infinity']) expect(watchdogUsec({ WATCHDOG_USEC: bad }, 42)).toBeUndefined();
    expect(watchdogUsec({}, 42)).toBeUndefined();
  });
});

describe('SystemdNotifier', () => {
  it('does nothing without NOTIFY_SOCKET (not started by systemd), watchdog variables or not', async () => {
    const sender = recordingSender();
    const n = new SystemdNotifier({ logger: logLines().logger, env: { WATCHDOG_USEC: '1000' }, sender });
    expect(n.enabled).toBe(false);
    expect(n.watchdogIntervalMs).toBeUndefined();
    await n.ready('up');
    await n.status('x');
    await n.stopping();
    n.startWatchdog();
    expect(sender.sent).toEqual([]);
  });

  it('sends in order, one message at a time: READY=1 with its status, STATUS= only when it changed, one line', async () => {
    const sender = recordingSender();
    const n = new SystemdNotifier({ logger: logLines().logger, env: { NOTIFY_SOCKET: '/run/systemd/notify' }, sender });
    void n.ready('accepting webhooks on http://127.0.0.1:8080; 0 pending jobs');
    void n.status('accepting webhooks on http://127.0.0.1:8080; 0 pending jobs');
    void n.status('two\nlines');
    void n.reloading();
    await n.stopping();
    expect(sender.sent.map((m) => m.filter((a) => !a.startsWith('MONOTONIC_USEC=')))).toEqual([
      ['READY=1', 'STATUS=accepting webhooks on http://127.0.0.1:8080; 0 pending jobs'],
      ['STATUS=two lines'],
      ['RELOADING=1', 'STATUS=reloading the configuration'],
      ['STOPPING=1', 'STATUS=stopping: finishing the work in flight'],
    ]);
    expect(sender.sent[2]?.find((a) => a.startsWith('MONOTONIC_USEC='))).toMatch(/^MONOTONIC_USEC=\d+$/);
  });

  it('logs a failing notification once, never throws, and says when they are sent again', async () => {
    let failing = true;
    const sender = recordingSender(() => (failing ? new Error('systemd-notify exited 1: Failed to notify init system: Connection refused') : undefined));
    const { logger, lines } = logLines();
    const n = new SystemdNotifier({ logger, env: { NOTIFY_SOCKET: '/run/systemd/notify' }, sender });
    await n.notify('WATCHDOG=1');
    await n.notify('WATCHDOG=1');
    expect(lines.filter((l) => l.code === 'SYSTEMD_NOTIFY_FAILED')).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'warn', err: expect.stringContaining('Connection refused') });
    failing = false;
    await n.notify('WATCHDOG=1');
    expect(lines.at(-1)).toMatchObject({ level: 'info', msg: 'systemd notifications are sent again' });
  });

  it('pings every half WATCHDOG_USEC from an unref\'d timer, never two pings waiting at once', async () => {
    jest.useFakeTimers();
    let release: () => void = () => undefined;
    const sent: string[][] = [];
    const sender: NotifySender = {
      send: (a) => {
        sent.push([...a]);
        // systemd slow to read: the ping waits on its barrier.
        return new Promise<void>((r) => (release = r));
      },
    };
    const n = new SystemdNotifier({ logger: logLines().logger, env: { NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '30000000' }, pid: 7, sender });
    expect(n.watchdogIntervalMs).toBe(15_000);
    n.startWatchdog();
    await jest.advanceTimersByTimeAsync(15_000);
    expect(sent).toEqual([['WATCHDOG=1']]);
    await jest.advanceTimersByTimeAsync(45_000);
    expect(sent).toHaveLength(1);
    release();
    await jest.advanceTimersByTimeAsync(15_000);
    expect(sent).toHaveLength(2);
    release();
    n.stopWatchdog();
    await jest.advanceTimersByTimeAsync(60_000);
    expect(sent).toHaveLength(2);
  });
});

describe('statusLine', () => {
  it('says where the webhook listens, the backlog, and the GLPI session', () => {
    expect(statusLine({ address: 'http://127.0.0.1:8080', pending: 1, dead: 2, undecided: 0, glpiSession: 'open' })).toBe(
      'accepting webhooks on http://127.0.0.1:8080; 1 pending job, 2 dead letters, 0 alerts to decide; GLPI session open',
    );
    expect(statusLine({ address: 'http://[::1]:8080', pending: 0, dead: 0, undecided: 1, glpiSession: 'login_failed' })).toMatch(/1 alert to decide; GLPI login failed \(see the log\)$/);
    expect(statusLine({ address: 'x', pending: 0, dead: 0, undecided: 0, glpiSession: undefined })).toMatch(/; processing thread not answering$/);
  });
});

describe('the unit file', () => {
  it('is Type=notify with a watchdog, and accepts messages from systemd-notify (a child of the daemon)', () => {
    const values = (key: string) => [...UNIT.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]);
    expect(values('Type')).toEqual(['notify']);
    expect(values('NotifyAccess')).toEqual(['all']);
    expect(values('WatchdogSec')).toEqual(['30s']);
    expect(values('RestrictAddressFamilies')[0]?.split(' ')).toContain('AF_UNIX');
    expect(UNIT).toContain('ExecReload=/bin/kill -HUP $MAINPID');
  });

  it('relies on systemd-notify, which waits for the manager (BARRIER=1) unless --no-block', () => {
    const help = spawnSync('systemd-notify', ['--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('--no-block');
  });
});
