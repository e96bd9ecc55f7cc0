import { describe, expect, it } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/fixtures.js';

const UNIT = join(ROOT, 'systemd', 'zabbix-glpi-bridge.service');

/**
 * `systemd-analyze security` rated the unit 1.6 before issue 11 and 1.2 with its limits
 * (IPAddressDeny=, PrivateMounts=, RemoveIPC=): it may go down, never up. 1.4 since Type=notify
 * (issue 17): NotifyAccess=all (0.2), as the daemon's notifications come from systemd-notify, its child
 * (src/adapters/systemd/notify.ts says why).
 */
const MAX_EXPOSURE = 1.4;

/** README.md's "Install as a systemd service" section. */
function installSection(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('## Install as a systemd service\n');
  expect(start).toBeGreaterThanOrEqual(0);
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

/** The fenced block after <!-- install-script: NAME --> (what test/install/readme-install.sh runs). */
function installBlock(name: string): string {
  const m = new RegExp(`<!-- install-script: ${name} -->\\n\`\`\`sh\\n([\\s\\S]*?)\`\`\``).exec(installSection());
  if (!m?.[1]) throw new Error(`README.md has no block marked <!-- install-script: ${name} -->`);
  return m[1];
}

function unitValues(text: string, key: string): string[] {
  return [...text.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1] ?? '');
}

/**
 * System calls the daemon makes (strace -f of `run` on Node 20 under load, with
 * /metrics, /readyz, SIGHUP and SIGTERM; as root SQLite also calls fchown, not
 * as the service user; with NOTIFY_SOCKET, spawning systemd-notify and the tool itself
 * add clone, dup2, getppid, ppoll, prctl, sendmsg, socketpair, statfs, fstatfs and wait4; chrt, run once by the processing
 * thread, adds sched_get_priority_min, sched_get_priority_max and sched_setscheduler).
 * A call outside the unit's filter would kill the daemon or break it.
 */
const DAEMON_SYSCALLS = ['accept4', 'access', 'arch_prctl', 'bind', 'brk', 'capget', 'clock_nanosleep', 'clone', 'clone3', 'close', 'connect', 'dup2', 'epoll_create1', 'epoll_ctl', 'epoll_pwait', 'eventfd2', 'execve', 'exit', 'exit_group', 'fcntl', 'fdatasync', 'fstat', 'fstatfs', 'fsync', 'ftruncate', 'futex', 'getcwd', 'getdents64', 'getegid', 'geteuid', 'getgid', 'getpid', 'getppid', 'getrandom', 'getrusage', 'getsockname', 'getsockopt', 'gettid', 'getuid', 'ioctl', 'listen', 'lseek', 'madvise', 'mkdir', 'mmap', 'mprotect', 'munmap', 'newfstatat', 'openat', 'pipe2', 'pkey_alloc', 'ppoll', 'prctl', 'pread64', 'prlimit64', 'pwrite64', 'read', 'readlink', 'rseq', 'rt_sigaction', 'rt_sigprocmask', 'rt_sigreturn', 'sched_get_priority_max', 'sched_get_priority_min', 'sched_getaffinity', 'sched_setscheduler', 'sendmsg', 'set_robust_list', 'set_tid_address', 'setpriority', 'setsockopt', 'shutdown', 'socket', 'socketpair', 'statfs', 'statx', 'sysinfo', 'uname', 'unlink', 'wait4', 'write', 'writev'];

const setCache = new Map<string, Set<string>>();
/** A systemd syscall set (@name) as system call names, nested sets expanded. */
function expand(name: string): Set<string> {
  if (!name.startsWith('@')) return new Set([name]);
  const cached = setCache.get(name);
  if (cached) return cached;
  const out = execFileSync('systemd-analyze', ['syscall-filter', name], { encoding: 'utf8' }).split('\n').slice(1);
  const calls = new Set<string>();
  for (const line of out.map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))) for (const c of expand(line)) calls.add(c);
  setCache.set(name, calls);
  return calls;
}

/** The calls a unit's SystemCallFilter= lines allow, applied in order (the first line is an allow list here). */
function allowedBy(unit: string): Set<string> {
  const lines = [...unit.matchAll(/^SystemCallFilter=(.*)$/gm)].map((m) => (m[1] ?? '').trim());
  const allowed = new Set<string>();
  for (const line of lines) {
    const deny = line.startsWith('~');
    for (const name of line.replace(/^~/, '').split(/\s+/).filter(Boolean)) {
      for (const c of expand(name)) {
        if (deny) allowed.delete(c);
        else allowed.add(c);
      }
    }
  }
  return allowed;
}

describe('systemd unit', () => {
  it('passes systemd-analyze verify without a warning', () => {
    const r = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8' });
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 0, stdout: '', stderr: '' });
  });

  it('lets the daemon make every system call it makes, and fails (EPERM) rather than kills on any other', () => {
    const text = readFileSync(UNIT, 'utf8');
    expect(text).toMatch(/^SystemCallFilter=@system-service$/m);
    const allowed = allowedBy(text);
    expect(DAEMON_SYSCALLS.filter((c) => !allowed.has(c))).toEqual([]);
    expect(allowed.has('mount')).toBe(false); // still a filter
    expect(text).toMatch(/^SystemCallErrorNumber=EPERM$/m);
  });

  it('starts Node with the options and allocator settings `npm start` uses (the small heaps of issue 16), which the bench reads', () => {
    const unit = readFileSync(UNIT, 'utf8');
    const [exec] = unitValues(unit, 'ExecStart');
    const unitFlags = /^\S+ (.*?)\S*main\.js /.exec(exec ?? '')?.[1]?.trim();
    const unitAllocator = unitValues(unit, 'Environment').filter((v) => v.startsWith('MALLOC_'));
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    const start = /^((?:MALLOC_\w+=\S+ )*)node (.*?)\S*main\.js /.exec(pkg.scripts.start ?? '');
    expect(unitFlags).toContain('--max-semi-space-size=');
    expect(unitFlags).toContain('--heap-growing-percent=');
    expect(unitFlags).toContain('--single-threaded-gc');
    expect(start?.[2]?.trim()).toBe(unitFlags);
    expect(unitAllocator).toContain('MALLOC_ARENA_MAX=2');
    expect(start?.[1]?.trim().split(' ')).toEqual(unitAllocator);
  });

  it('lets journald keep a storm\'s log lines (one per decision) instead of dropping past its default 10,000 per 30 s', () => {
    const text = readFileSync(UNIT, 'utf8');
    expect(unitValues(text, 'LogRateLimitIntervalSec')).toEqual(['30s']);
    expect(Number(unitValues(text, 'LogRateLimitBurst')[0])).toBeGreaterThanOrEqual(100_000);
    expect(readFileSync(join(ROOT, 'README.md'), 'utf8')).toContain('LogRateLimitBurst=200000');
  });

  it('runs as a dedicated user with a state directory, restart on failure and hardening', () => {
    const text = readFileSync(UNIT, 'utf8');
    for (const line of ['User=zabbix-glpi-bridge', 'StateDirectory=zabbix-glpi-bridge', 'Restart=on-failure', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'PrivateTmp=yes', 'ExecReload=/bin/kill -HUP $MAINPID']) {
      expect(text).toContain(line);
    }
  });

  it(`is rated ${MAX_EXPOSURE} or better by systemd-analyze security`, () => {
    const out = execFileSync('systemd-analyze', ['security', '--offline=true', UNIT], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const m = /Overall exposure level for .*: (\d+\.\d+)/.exec(out);
    expect(m).not.toBeNull();
    expect(Number(m?.[1])).toBeLessThanOrEqual(MAX_EXPOSURE);
  });

  it('caps memory and tasks, lets only loopback addresses through, and the README states each limit', () => {
    const text = readFileSync(UNIT, 'utf8');
    const section = installSection();
    const memory = unitValues(text, 'MemoryMax');
    const tasks = unitValues(text, 'TasksMax');
    expect(memory).toHaveLength(1);
    expect(memory[0]).toMatch(/^\d+M$/);
    // Half again the storm peak (about 270 MB resident) at least; the install test checks twice the idle size.
    expect(Number(memory[0]?.replace('M', ''))).toBeGreaterThanOrEqual(1.5 * 270);
    expect(tasks).toHaveLength(1);
    expect(Number(tasks[0])).toBeGreaterThanOrEqual(32);
    expect(unitValues(text, 'IPAddressDeny')).toEqual(['any']);
    expect(unitValues(text, 'IPAddressAllow')).toEqual(['localhost']);
    expect(text).toMatch(/^#IPAddressAllow=\S/m); // the documented line to widen it
    for (const line of [`MemoryMax=${memory[0]}`, `TasksMax=${tasks[0]}`, 'IPAddressDeny=any', 'IPAddressAllow=localhost']) expect(section).toContain(line);
  });

  it('loads as credentials the secrets the README install creates, optional ones only through drop-ins', () => {
    const text = readFileSync(UNIT, 'utf8');
    const install = installBlock('install');
    const loaded = unitValues(text, 'LoadCredential').map((v) => v.split(':'));
    for (const [id, path] of loaded) {
      expect(path).toBe(`/etc/zabbix-glpi-bridge/credentials/${id}`);
      // A LoadCredential= whose file is missing keeps systemd from starting the unit.
      expect(install).toMatch(new RegExp(`put_secret (${id}\\b|"\\$t")`));
      expect(install).toMatch(new RegExp(`\\b${id}\\b`));
    }
    expect(loaded.map(([id]) => id).sort()).toEqual(['BRIDGE_ADMIN_TOKEN', 'BRIDGE_WEBHOOK_TOKEN', 'GLPI_USER_TOKEN']);
    expect(installBlock('glpi-app-token')).toContain('LoadCredential=%s:/etc/zabbix-glpi-bridge/credentials/%s');
  });

  it('is installed by a README that builds once and sets the modes the unit expects', () => {
    const build = installBlock('build')
      .split('\n')
      .map((l) => l.replace(/#.*$/, '').trim())
      .filter(Boolean);
    // npm ci's prepare step compiles TypeScript; no second build, and no dev dependencies left.
    expect(build).toEqual(['npm ci', 'npm prune --omit=dev']);
    const text = readFileSync(UNIT, 'utf8');
    expect(unitValues(text, 'ConfigurationDirectoryMode')).toEqual(['0750']);
    expect(installBlock('install')).toContain('install -d -m 0750 -o root -g zabbix-glpi-bridge /etc/zabbix-glpi-bridge\n');
    expect(installBlock('install')).toContain('install -d -m 0700 -o root -g root /etc/zabbix-glpi-bridge/credentials\n');
    expect(unitValues(text, 'StateDirectoryMode')).toEqual(['0700']);
  });
});
