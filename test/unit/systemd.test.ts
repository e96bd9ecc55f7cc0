import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/fixtures.js';

const UNIT = join(ROOT, 'systemd', 'zabbix-glpi-bridge.service');

describe('systemd unit', () => {
  it('passes systemd-analyze verify', () => {
    const out = execFileSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out).toBe('');
  });

  it('runs as a dedicated user with a state directory, restart on failure and hardening', () => {
    const text = readFileSync(UNIT, 'utf8');
    for (const line of ['User=zabbix-glpi-bridge', 'StateDirectory=zabbix-glpi-bridge', 'Restart=on-failure', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'PrivateTmp=yes', 'ExecReload=/bin/kill -HUP $MAINPID']) {
      expect(text).toContain(line);
    }
  });
});
