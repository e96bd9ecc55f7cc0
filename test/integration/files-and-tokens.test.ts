import { afterEach, describe, expect, it } from '@jest/globals';
import { chmodSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeGlpi } from '../../src/glpi-fake/server.js';
import { Daemon, runCli, waitFor } from '../helpers/daemon.js';
import { zabbixBody } from '../helpers/fixtures.js';

let glpi: FakeGlpi | undefined;
let daemon: Daemon | undefined;

afterEach(async () => {
  await daemon?.stop();
  await glpi?.close();
});

const mode = (path: string) => statSync(path).mode & 0o777;

describe('data files are private whatever the umask', () => {
  it('under umask 000 the data directory is 0700 and every file in it 0600 (state, inbox, WAL, marker key, files left readable before)', async () => {
    glpi = new FakeGlpi({ userTokens: ['user-token'] });
    await glpi.listen();
    const dir = mkdtempSync(join(tmpdir(), 'zgb-modes-'));
    chmodSync(dir, 0o777);
    writeFileSync(join(dir, 'left-over.db'), 'from an earlier version', { mode: 0o666 });
    chmodSync(join(dir, 'left-over.db'), 0o666);
    const previous = process.umask(0);
    try {
      daemon = new Daemon({ glpiUrl: glpi.url, dataDir: dir });
      await daemon.start();
    } finally {
      process.umask(previous);
    }
    expect((await daemon.post(zabbixBody('problem'))).status).toBe(202);
    await waitFor(() => glpi!.count('POST', 'Ticket') === 1, 'the ticket');
    const files = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name);
    expect(files).toEqual(expect.arrayContaining(['bridge.db', 'bridge.db-wal', 'bridge.inbox.db', 'bridge.inbox.db-wal', 'marker-key', 'left-over.db']));
    expect(mode(dir)).toBe(0o700);
    expect(Object.fromEntries(files.map((f) => [f, mode(join(dir, f)).toString(8)]))).toEqual(Object.fromEntries(files.map((f) => [f, '600'])));
    expect(daemon.logs.some((l) => l.msg.startsWith('made the data directory private') && JSON.stringify(l.tightened).includes('left-over.db'))).toBe(true);
  });
});

describe('tokens refused at startup, with the reason', () => {
  function configFile(dir: string): string {
    const file = join(dir, 'bridge.yaml');
    writeFileSync(file, ['listen: 127.0.0.1:0', `data_dir: ${dir}`, 'webhook:', '  token: ${BRIDGE_WEBHOOK_TOKEN}', 'glpi:', '  url: http://127.0.0.1:9/apirest.php', '  user_token: ${GLPI_USER_TOKEN}'].join('\n'));
    return file;
  }

  it('an empty token file: run exits 1 naming the file, and nothing is started', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zgb-empty-token-'));
    const empty = join(dir, 'glpi-user-token');
    writeFileSync(empty, '');
    const r = await runCli(['run', '--config', configFile(dir)], { BRIDGE_WEBHOOK_TOKEN: 'a-long-enough-webhook-token', GLPI_USER_TOKEN_FILE: empty });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`glpi.user_token: GLPI_USER_TOKEN_FILE=${empty} is empty`);
    expect(readdirSync(dir).filter((f) => f.endsWith('.db'))).toEqual([]);
  });

  it('a webhook token shorter than 16 characters: run and check-config refuse it and say why', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zgb-short-token-'));
    const env = { BRIDGE_WEBHOOK_TOKEN: 'zabbix', GLPI_USER_TOKEN: 'user-token' };
    const run = await runCli(['run', '--config', configFile(dir)], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/webhook\.token: too short: a token the bridge checks needs at least 16 characters/);
    const check = await runCli(['check-config', '--config', configFile(dir)], env);
    expect(check.code).toBe(1);
    expect(`${check.stdout}${check.stderr}`).toMatch(/webhook\.token: too short/);
    expect(`${run.stderr}${check.stdout}${check.stderr}`).not.toContain('zabbix\n');
  });
});
