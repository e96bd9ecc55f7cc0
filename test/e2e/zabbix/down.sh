#!/usr/bin/env bash
# Stops what up.sh started (the database stays, so the next up.sh is quick).
STATE=${ZBX_STATE:-/tmp/zgb-zbx}
[ -f "$STATE/zabbix_server.pid" ] && kill "$(cat "$STATE/zabbix_server.pid")" 2>/dev/null
pkill -f "php -S 127.0.0.1:${ZBX_WEB_PORT:-8090}" 2>/dev/null
exit 0
