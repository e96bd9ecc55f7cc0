/**
 * The same end-to-end scenarios as test/e2e/zabbix.test.ts (five categories, acknowledge, recovery,
 * write-back, poller catch-up, maintenance), against the real Zabbix 7.0 that test/e2e/zabbix7/up.sh runs in a Debian
 * trixie root: ZABBIX7_E2E_URL is its API. Jest gives each test file its own copy of process.env, so
 * pointing that file at 7.0 here leaves the 6.0 run (ZABBIX_E2E_URL) as it is.
 */
// Selected by jest.config.js only when ZABBIX7_E2E_URL is set.
const API7 = process.env.ZABBIX7_E2E_URL;
if (!API7) throw new Error('ZABBIX7_E2E_URL is not set (bash test/e2e/zabbix7/up.sh starts a Zabbix 7.0 and prints it)');
process.env.ZABBIX_E2E_URL = API7;
process.env.ZBX_E2E_CHROOT = process.env.ZBX7_ROOT ?? '/var/cache/zgb-trixie';
delete process.env.ZBX_STATE;
await import('../zabbix.test.js');
