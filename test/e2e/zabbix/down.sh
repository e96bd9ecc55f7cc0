#!/usr/bin/env bash
# Stops what up.sh started (the database stays, so the next up.sh is quick).
STATE=${ZBX_STATE:-/tmp/zgb-zbx}
[ -f "$STATE/zabbix_server.pid" ] && kill "$(cat "$STATE/zabbix_server.pid")" 2>/dev/null
# The frontend and its workers: the process group up.sh started it in.
[ -f "$STATE/php.pid" ] && kill -- "-$(cat "$STATE/php.pid")" 2>/dev/null; rm -f "$STATE/php.pid"
exit 0
