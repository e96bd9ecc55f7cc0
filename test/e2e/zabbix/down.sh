#!/usr/bin/env bash
# Stops what up.sh started (the database stays, so the next up.sh is quick).
STATE=${ZBX_STATE:-/tmp/zgb-zbx}
# Waits for the server to exit (up to 10 s), as zabbix7/down.sh does: stopped PostgreSQL under a server still
# shutting down, and it reconnects forever instead of exiting.
if [ -f "$STATE/zabbix_server.pid" ] && kill "$(cat "$STATE/zabbix_server.pid")" 2>/dev/null; then
  for _ in $(seq 1 50); do kill -0 "$(cat "$STATE/zabbix_server.pid" 2>/dev/null)" 2>/dev/null || break; sleep 0.2; done
fi
# The frontend and its workers: the process group up.sh started it in.
[ -f "$STATE/php.pid" ] && kill -- "-$(cat "$STATE/php.pid")" 2>/dev/null; rm -f "$STATE/php.pid"
exit 0
