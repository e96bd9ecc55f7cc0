import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/fixtures.js';

const UNIT = join(ROOT, 'systemd', 'zabbix-glpi-bridge.service');

/**
 * System calls the daemon makes (strace -f of `run` on Node 20 under load, with
 * /metrics, /readyz, SIGHUP and SIGTERM; as root SQLite also calls fchown, not
 * as the service user). A call outside the unit's filter would kill the daemon
 * or break it.
 */
const DAEMON_SYSCALLS = ['accept4', 'access', 'arch_prctl', 'bind', 'brk', 'capget', 'clock_nanosleep', 'clone3', 'close', 'connect', 'epoll_create1', 'epoll_ctl', 'epoll_pwait', 'eventfd2', 'execve', 'exit', 'exit_group', 'fcntl', 'fdatasync', 'fstat', 'fsync', 'ftruncate', 'futex', 'getcwd', 'getdents64', 'getegid', 'geteuid', 'getgid', 'getpid', 'getrandom', 'getrusage', 'getsockname', 'getsockopt', 'gettid', 'getuid', 'ioctl', 'listen', 'lseek', 'madvise', 'mkdir', 'mmap', 'mprotect', 'munmap', 'newfstatat', 'openat', 'pipe2', 'pkey_alloc', 'pread64', 'prlimit64', 'pwrite64', 'read', 'readlink', 'rseq', 'rt_sigaction', 'rt_sigprocmask', 'rt_sigreturn', 'sched_getaffinity', 'set_robust_list', 'set_tid_address', 'setpriority', 'setsockopt', 'shutdown', 'socket', 'statx', 'sysinfo', 'uname', 'unlink', 'write', 'writev'];

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
  it('passes systemd-analyze verify', () => {
    const out = execFileSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out).toBe('');
  });

  it('lets the daemon make every system call it makes, and fails (EPERM) rather than kills on any other', () => {
    const text = readFileSync(UNIT, 'utf8');
    expect(text).toMatch(/^SystemCallFilter=@system-service$/m);
    const allowed = allowedBy(text);
    expect(DAEMON_SYSCALLS.filter((c) => !allowed.has(c))).toEqual([]);
    expect(allowed.has('mount')).toBe(false); // still a filter
    expect(text).toMatch(/^SystemCallErrorNumber=EPERM$/m);
  });

  it('runs as a dedicated user with a state directory, restart on failure and hardening', () => {
    const text = readFileSync(UNIT, 'utf8');
    for (const line of ['User=zabbix-glpi-bridge', 'StateDirectory=zabbix-glpi-bridge', 'Restart=on-failure', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'PrivateTmp=yes', 'ExecReload=/bin/kill -HUP $MAINPID']) {
      expect(text).toContain(line);
    }
  });
});
