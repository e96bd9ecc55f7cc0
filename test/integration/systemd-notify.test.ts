import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { FakeGlpi } from '../../src/glpi-fake/server.js';
import { currentTestFailed, Daemon, MAIN, TOKEN, waitFor } from '../helpers/daemon.js';
import { zabbixBody } from '../helpers/fixtures.js';

/**
 * The built daemon under a notify socket, as systemd runs a Type=notify unit: the test plays the
 * service manager's side of sd_notify(3) — an AF_UNIX datagram socket with SO_PASSCRED, named by
 * NOTIFY_SOCKET, WATCHDOG_USEC set — in python3 (Node has no AF_UNIX datagram socket). Like PID 1,
 * the listener reads the sender's credentials, closes the file descriptors a BARRIER=1 carries (which
 * releases systemd-notify), and, when READY=1 arrives, records which TCP ports the daemon listens on
 * at that moment (/proc/<pid>/fd against /proc/net/tcp*): the sender is still alive then, since
 * systemd-notify waits on its barrier until the listener has closed the descriptor.
 */
const LISTENER = String.raw`
import array, json, os, socket, sys

def listening_ports(pid):
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for row in f.readlines()[1:]:
                cols = row.split()
                if cols[3] == "0A" and cols[9] in inodes:
                    ports.append(int(cols[1].rsplit(":", 1)[1], 16))
    return ports

def daemon_pid(pid):
    # systemd-notify (without privileges) sends with its own PID: the daemon is its parent.
    with open(f"/proc/{pid}/comm") as f:
        if f.read().strip() != "systemd-notify":
            return pid
    with open(f"/proc/{pid}/status") as f:
        return int(next(l for l in f if l.startswith("PPid:")).split()[1])

s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(sys.argv[1])
print(json.dumps({"listening": True}), flush=True)
while True:
    data, anc, flags, addr = s.recvmsg(65536, 1024)
    pid, fds = None, []
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = array.array("i", payload[:12])[0]
        elif level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds += list(array.array("i", payload[: len(payload) - len(payload) % 4]))
    text = data.decode()
    out = {"message": text, "pid": pid}
    if "READY=1" in text.split("\n") and pid is not None:
        try:
            d = daemon_pid(pid)
            out["daemon_pid"] = d
            out["listening_ports"] = listening_ports(d)
        except Exception as e:
            out["error"] = repr(e)
    print(json.dumps(out), flush=True)
    for fd in fds:
        os.close(fd)
`;

interface Received {
  readonly message: string;
  readonly pid: number | null;
  readonly daemon_pid?: number;
  readonly listening_ports?: number[];
  readonly error?: string;
}

/** The service manager's notify socket. */
class NotifySocket {
  readonly dir = mkdtempSync(join(tmpdir(), 'zgb-notify-'));
  readonly path = join(this.dir, 'notify.sock');
  readonly received: Received[] = [];
  readonly log: string[] = [];
  #child: ChildProcess | undefined;

  async open(): Promise<void> {
    const child = spawn('python3', ['-c', LISTENER, this.path], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    createInterface({ input: child.stderr! }).on('line', (l) => this.log.push(`[listener stderr] ${l}`));
    await new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`the notify listener exited ${code}:\n${this.log.join('\n')}`)));
      createInterface({ input: child.stdout! }).on('line', (line) => {
        this.log.push(line);
        const m = JSON.parse(line) as Received | { listening: true };
        if ('listening' in m) resolve();
        else this.received.push(m);
      });
    });
  }

  /** Every assignment received, in order, one message after the other. */
  assignments(): string[] {
    return this.received.flatMap((r) => r.message.split('\n'));
  }

  count(assignment: string): number {
    return this.assignments().filter((a) => a === assignment).length;
  }

  statuses(): string[] {
    return this.assignments()
      .filter((a) => a.startsWith('STATUS='))
      .map((a) => a.slice('STATUS='.length));
  }

  close(): void {
    this.#child?.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let glpi: FakeGlpi;
let notify: NotifySocket;
let daemon: Daemon;

beforeEach(async () => {
  glpi = new FakeGlpi({ userTokens: ['user-token'] });
  await glpi.listen();
  notify = new NotifySocket();
  await notify.open();
});

afterEach(async () => {
  if (daemon?.running) process.kill(daemon.pid, 'SIGCONT');
  await daemon?.stop();
  await glpi.close();
  notify.close();
  // What the manager received, with the daemon's log (printed by the Daemon helper).
  if (currentTestFailed() !== false || process.env.ZGB_TEST_LOGS === 'always') process.stderr.write(`\n===== notify socket =====\n${notify.log.join('\n')}\n`);
});

/** WATCHDOG_USEC of one second: a ping every half second. */
function startDaemon(env: Record<string, string> = {}): Promise<void> {
  daemon = new Daemon({ glpiUrl: glpi.url, env: { NOTIFY_SOCKET: notify.path, WATCHDOG_USEC: '1000000', ...env } });
  return daemon.start();
}

describe('systemd readiness and watchdog (Type=notify)', () => {
  it('READY=1 once the webhook port listens, with a STATUS= summary; STOPPING=1 on SIGTERM', async () => {
    await startDaemon();
    await waitFor(() => notify.count('READY=1') === 1, 'READY=1');
    const ready = notify.received.find((r) => r.message.split('\n').includes('READY=1'))!;
    const port = Number(new URL(daemon.url).port);
    expect(ready.error).toBeUndefined();
    expect(ready.daemon_pid).toBe(daemon.pid);
    // Listening when the manager got READY=1, so `systemctl start` returns with the webhook open.
    expect(ready.listening_ports).toContain(port);
    expect(ready.message).toMatch(new RegExp(`^READY=1\\nSTATUS=accepting webhooks on http://127\\.0\\.0\\.1:${port}; 0 pending jobs, 0 dead letters, 0 alerts to decide; GLPI session \\w+$`));
    expect((await daemon.get('/healthz')).status).toBe(200);

    expect(await daemon.stop()).toBe(0);
    const all = notify.assignments();
    expect(all).toContain('STOPPING=1');
    expect(all.indexOf('STOPPING=1')).toBeGreaterThan(all.indexOf('READY=1'));
    expect(notify.statuses().at(-1)).toBe('stopping: finishing the work in flight');
  });

  it('SIGHUP: RELOADING=1, then READY=1 again with the summary as it is now (a dead letter, the GLPI session)', async () => {
    // GLPI has no ITIL category 11, which the rules give this problem: a 400, the job becomes a dead letter.
    await glpi.close();
    glpi = new FakeGlpi({ userTokens: ['user-token'], categories: [12] });
    await glpi.listen();
    await startDaemon();
    await waitFor(() => notify.count('READY=1') === 1, 'READY=1');
    expect((await daemon.post(zabbixBody('problem'))).status).toBe(202);
    await waitFor(async () => /zgb_queue_depth\{state="dead"\} 1/.test(await (await daemon.get('/metrics')).text()), 'a dead letter');

    process.kill(daemon.pid, 'SIGHUP');
    await waitFor(() => notify.count('READY=1') === 2, 'READY=1 after the reload');
    const all = notify.assignments();
    const reloading = all.indexOf('RELOADING=1');
    expect(reloading).toBeGreaterThan(all.indexOf('READY=1'));
    expect(all.lastIndexOf('READY=1')).toBeGreaterThan(reloading);
    expect(all.find((a) => a.startsWith('MONOTONIC_USEC='))).toMatch(/^MONOTONIC_USEC=\d+$/);
    expect(notify.statuses().at(-1)).toMatch(/; 0 pending jobs, 1 dead letter, 0 alerts to decide; GLPI session open$/);
  });

  it('WATCHDOG=1 every half WATCHDOG_USEC while the event loop runs, none while the process is stopped (SIGSTOP)', async () => {
    await startDaemon();
    await waitFor(() => notify.count('WATCHDOG=1') >= 3, 'three watchdog pings');

    process.kill(daemon.pid, 'SIGSTOP');
    // A systemd-notify started just before the stop may still deliver its ping.
    await sleep(1500);
    const whileStopped = notify.count('WATCHDOG=1');
    // Three WATCHDOG_USEC (six ping intervals): systemd would have killed the daemon by now.
    await sleep(3000);
    expect(notify.count('WATCHDOG=1')).toBe(whileStopped);

    process.kill(daemon.pid, 'SIGCONT');
    await waitFor(() => notify.count('WATCHDOG=1') >= whileStopped + 2, 'pings again after SIGCONT');
    expect(await daemon.stop()).toBe(0);
  });

  it('as the unit runs it (a user without privileges): messages come from systemd-notify, a child of the daemon, hence NotifyAccess=all', async () => {
    // The Daemon helper writes the configuration; the daemon is started here, through setpriv when the
    // test runs as root, like test/install/readme-install.sh starts the installed unit.
    const config = new Daemon({ glpiUrl: glpi.url });
    const asRoot = process.getuid?.() === 0;
    if (asRoot) {
      chownSync(config.dataDir, 65534, 65534);
      chmodSync(notify.dir, 0o755);
      chmodSync(notify.path, 0o777);
    }
    const argv = [process.execPath, MAIN, 'run', '--config', config.configFile];
    const child = asRoot
      ? spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--no-new-privs', '--bounding-set=-all', '--inh-caps=-all', '--', ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BRIDGE_WEBHOOK_TOKEN: TOKEN, GLPI_USER_TOKEN: 'user-token', NOTIFY_SOCKET: notify.path } })
      : spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BRIDGE_WEBHOOK_TOKEN: TOKEN, GLPI_USER_TOKEN: 'user-token', NOTIFY_SOCKET: notify.path } });
    const output: string[] = [];
    let address = '';
    createInterface({ input: child.stdout! }).on('line', (l) => {
      output.push(l);
      if (l.includes('"bridge started"')) address = String((JSON.parse(l) as { address: string }).address);
    });
    createInterface({ input: child.stderr! }).on('line', (l) => output.push(`[stderr] ${l}`));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    try {
      await waitFor(() => notify.count('READY=1') === 1, 'READY=1');
      await waitFor(() => address !== '', 'bridge started');
      const ready = notify.received.find((r) => r.message.split('\n').includes('READY=1'))!;
      expect(ready.error).toBeUndefined();
      // Not the main PID: systemd attributes it through the sender's cgroup (NotifyAccess=all), and
      // systemd-notify is still alive then, waiting on its BARRIER=1.
      expect(ready.pid).not.toBe(child.pid);
      expect(ready.daemon_pid).toBe(child.pid);
      expect(ready.listening_ports).toContain(Number(new URL(address).port));
      // systemd-notify sends BARRIER=1 in a datagram of its own after READY=1: it may be read a moment later.
      await waitFor(() => notify.count('BARRIER=1') >= 1, 'BARRIER=1 after READY=1');
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(notify.assignments()).toContain('STOPPING=1');
    } catch (e) {
      process.stderr.write(`\n===== daemon log =====\n${output.join('\n')}\n`);
      throw e;
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('no pings when WATCHDOG_PID names another process (the variables were inherited), readiness still sent', async () => {
    await startDaemon({ WATCHDOG_PID: String(process.pid) });
    await waitFor(() => notify.count('READY=1') === 1, 'READY=1');
    await sleep(2000);
    expect(notify.count('WATCHDOG=1')).toBe(0);
  });
});
