#!/usr/bin/env bash
# Brings up a real Zabbix 6.0 from Debian's packages on this machine, for the
# end-to-end test (test/e2e/zabbix.test.ts): PostgreSQL, zabbix_server, and
# the PHP frontend (API) served by PHP's built-in server. Needs root.
# Idempotent: a second run only starts what is not running.
# Ports: the frontend (ZBX_WEB_PORT) and the server's trapper (ZBX_SERVER_PORT,
# in $STATE/zabbix_server.conf as ListenPort, where the test reads it for
# zabbix_sender) take free ports unless given; a second run reuses them.
# Prints nothing on success but the API URL on the last line.
set -euo pipefail
STATE=${ZBX_STATE:-/tmp/zgb-zbx}          # short: zabbix_server's IPC sockets live here
DB_PASSWORD=zabbix
log() { echo "[zabbix-up] $*" >&2; }
# A free port chosen by the kernel (bind to port 0), for the frontend.
kernel_port() {
  node -e "const s = require('net').createServer().listen(0, '0.0.0.0', () => { const p = s.address().port; s.close(() => console.log(p)); });"
}
# zabbix_server's ListenPort stops at 32767, below the kernel's ephemeral range, so port 0 cannot serve the
# trapper: the first port from 10000 up that nothing listens on (each one tried by binding it).
free_trapper_port() {
  node -e "
    const net = require('net');
    const tryPort = (port) => {
      if (port > 32767) process.exit(1);
      const s = net.createServer().once('error', () => tryPort(port + 1)).listen(port, '0.0.0.0', () => s.close(() => console.log(port)));
    };
    tryPort(10051);"
}

packages=(postgresql zabbix-server-pgsql zabbix-frontend-php php-pgsql zabbix-agent)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  added_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && added_policy=1
  fi
  if ! apt-cache policy zabbix-server-pgsql | grep -q 'Candidate: [0-9]'; then apt-get update -qq; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ "$added_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

pg_version=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | awk '{print $4}' | grep -q online; then
  log "starting PostgreSQL $pg_version"
  pg_ctlcluster "$pg_version" main start
fi
psql_pg() { su postgres -c "psql -X -q -v ON_ERROR_STOP=1 $*"; }
if ! su postgres -c "psql -X -tAc \"SELECT 1 FROM pg_roles WHERE rolname='zabbix'\"" | grep -q 1; then
  psql_pg "-c \"CREATE ROLE zabbix LOGIN PASSWORD '$DB_PASSWORD'\""
fi
complete=$(su postgres -c "psql -X -tAd zabbix -c 'SELECT count(*) > 0 FROM widget_field'" 2>/dev/null || true)
if [ "$complete" != "t" ]; then
  log "importing the Zabbix schema (about 40 s)"
  su postgres -c "dropdb --if-exists zabbix && createdb -O zabbix zabbix"
  { echo "SET session_replication_role = replica; SET ROLE zabbix;"
    zcat /usr/share/zabbix-server-pgsql/schema.sql.gz /usr/share/zabbix-server-pgsql/images.sql.gz /usr/share/zabbix-server-pgsql/data.sql.gz
  } | su postgres -c "psql -X -q -v ON_ERROR_STOP=1 -d zabbix" >/dev/null
fi

mkdir -p "$STATE" && chown zabbix:zabbix "$STATE"
server_running() { [ -f "$STATE/zabbix_server.pid" ] && kill -0 "$(cat "$STATE/zabbix_server.pid")" 2>/dev/null; }
if [ -n "${ZBX_SERVER_PORT:-}" ]; then
  SERVER_PORT=$ZBX_SERVER_PORT
elif server_running && grep -q '^ListenPort=' "$STATE/zabbix_server.conf" 2>/dev/null; then
  SERVER_PORT=$(sed -n 's/^ListenPort=//p' "$STATE/zabbix_server.conf")
else
  SERVER_PORT=$(free_trapper_port)
fi
if server_running && ! grep -qx "ListenPort=$SERVER_PORT" "$STATE/zabbix_server.conf"; then
  log "restarting zabbix_server on port $SERVER_PORT"
  kill "$(cat "$STATE/zabbix_server.pid")"
  for _ in $(seq 1 50); do server_running || break; sleep 0.2; done
fi
cat > "$STATE/zabbix_server.conf" <<CONF
ListenPort=$SERVER_PORT
LogFile=$STATE/zabbix_server.log
PidFile=$STATE/zabbix_server.pid
SocketDir=$STATE
DBHost=127.0.0.1
DBName=zabbix
DBUser=zabbix
DBPassword=$DB_PASSWORD
Timeout=10
CacheUpdateFrequency=5
StartPollers=1
StartPollersUnreachable=1
StartPingers=0
StartDiscoverers=0
StartHTTPPollers=0
StartTrappers=2
StartAlerters=2
StartEscalators=1
StartDBSyncers=1
HousekeepingFrequency=0
AlertScriptsPath=/etc/zabbix/alert.d/
CONF
if ! server_running; then
  log "starting zabbix_server (trapper on port $SERVER_PORT)"
  zabbix_server -c "$STATE/zabbix_server.conf"
fi

cat > /etc/zabbix/zabbix.conf.php <<PHP
<?php
\$DB['TYPE'] = 'POSTGRESQL';
\$DB['SERVER'] = '127.0.0.1';
\$DB['PORT'] = '0';
\$DB['DATABASE'] = 'zabbix';
\$DB['USER'] = 'zabbix';
\$DB['PASSWORD'] = '$DB_PASSWORD';
\$DB['SCHEMA'] = '';
\$DB['ENCRYPTION'] = false;
\$DB['KEY_FILE'] = '';
\$DB['CERT_FILE'] = '';
\$DB['CA_FILE'] = '';
\$DB['VERIFY_HOST'] = false;
\$DB['CIPHER_LIST'] = '';
\$DB['VAULT_URL'] = '';
\$DB['VAULT_DB_PATH'] = '';
\$DB['VAULT_TOKEN'] = '';
\$DB['DOUBLE_IEEE754'] = true;
\$ZBX_SERVER = '127.0.0.1';
\$ZBX_SERVER_PORT = '$SERVER_PORT';
\$ZBX_SERVER_NAME = 'bridge-e2e';
\$IMAGE_FORMAT_DEFAULT = IMAGE_FORMAT_PNG;
PHP
version() { curl -s -m 5 -H 'Content-Type: application/json-rpc' -d '{"jsonrpc":"2.0","method":"apiinfo.version","params":[],"id":1}' "http://127.0.0.1:$1/api_jsonrpc.php" 2>/dev/null | grep -o '"result":"[^"]*"' || true; }
if [ -n "${ZBX_WEB_PORT:-}" ]; then
  WEB_PORT=$ZBX_WEB_PORT
elif [ -f "$STATE/web_port" ] && [ -n "$(version "$(cat "$STATE/web_port")")" ]; then
  WEB_PORT=$(cat "$STATE/web_port")
else
  WEB_PORT=$(kernel_port)
fi
API="http://127.0.0.1:$WEB_PORT/api_jsonrpc.php"
if [ -z "$(version "$WEB_PORT")" ]; then
  log "starting the frontend on :$WEB_PORT"
  # Its own process group (its pid), so that down.sh stops the workers too.
  PHP_CLI_SERVER_WORKERS=4 setsid nohup php -S "127.0.0.1:$WEB_PORT" -t /usr/share/zabbix > "$STATE/php.log" 2>&1 &
  echo $! > "$STATE/php.pid"
  echo "$WEB_PORT" > "$STATE/web_port"
  for _ in $(seq 1 50); do [ -n "$(version "$WEB_PORT")" ] && break; sleep 0.2; done
fi
[ -n "$(version "$WEB_PORT")" ] || { log "the Zabbix API does not answer at $API"; tail -20 "$STATE/php.log" >&2; exit 1; }
log "Zabbix $(version "$WEB_PORT") up (API $API, trapper port $SERVER_PORT); server log $STATE/zabbix_server.log"
echo "$API"
