#!/usr/bin/env bash
# Brings up a real Zabbix 7.0 LTS next to the 6.0 of test/e2e/zabbix/up.sh, for the end-to-end test:
# bookworm ships Zabbix 6.0, trixie ships 7.0, so a minbase Debian trixie root is made with debootstrap
# (from the host's own Debian mirror) in $ZBX7_ROOT, PostgreSQL 17, PHP 8.4 and Zabbix 7.0 are installed
# inside it, and all three are started with chroot on their own loopback ports. Needs root.
# Cached: the root (packages installed, database created) stays in $ZBX7_ROOT (default
# /var/cache/zgb-trixie, ~900 MB); a second run only starts what is not running.
# Ports: PostgreSQL (ZBX7_PG_PORT, default the first free from 55432), the trapper (ZBX7_SERVER_PORT, the
# first free from 10061) and the frontend (ZBX7_WEB_PORT, a kernel-chosen one) are reused by a second run.
# Prints nothing on success but the API URL on the last line. down.sh stops it.
set -euo pipefail
ROOT=${ZBX7_ROOT:-/var/cache/zgb-trixie}
STATE_IN=/tmp/zgb-zbx7                    # inside the root: zabbix_server's IPC sockets, pid, logs
STATE=$ROOT$STATE_IN
DB_PASSWORD=zabbix
SUITE=trixie
log() { echo "[zabbix7-up] $*" >&2; }
in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root "$@"; }

kernel_port() {
  node -e "const s = require('net').createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => console.log(p)); });"
}
# The first port from $1 up to $2 that nothing listens on (each one tried by binding it; zabbix_server's
# ListenPort stops at 32767).
free_port_from() {
  node -e "
    const net = require('net');
    const tryPort = (port) => {
      if (port > $2) process.exit(1);
      const s = net.createServer().once('error', () => tryPort(port + 1)).listen(port, '0.0.0.0', () => s.close(() => console.log(port)));
    };
    tryPort($1);"
}

# 1. The trixie root with everything installed (cached: .zgb-ready marks a complete one).
if [ ! -f "$ROOT/.zgb-ready" ]; then
  started=$(date +%s)
  command -v debootstrap >/dev/null || {
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
  }
  # The mirror this host installs from (deb822 or one-line sources).
  mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -1 || true)
  [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $0 !~ /security/ { print $2; exit }' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
  [ -n "$mirror" ] || { log "no Debian mirror found in /etc/apt/sources.list*"; exit 1; }
  if [ ! -x "$ROOT/usr/bin/apt-get" ] || [ ! -f "$ROOT/.zgb-bootstrapped" ]; then
    log "debootstrap $SUITE (minbase) into $ROOT from $mirror"
    # A half-made root from an interrupted run: its mounts first, and never across a file system.
    for m in dev proc; do mountpoint -q "$ROOT/$m" && umount "$ROOT/$m"; done
    rm -rf --one-file-system "$ROOT" && mkdir -p "$ROOT"
    debootstrap --variant=minbase "$SUITE" "$ROOT" "$mirror" >"$ROOT.debootstrap.log" 2>&1 \
      || { tail -20 "$ROOT.debootstrap.log" >&2; exit 1; }
    touch "$ROOT/.zgb-bootstrapped"
  fi
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
  printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d" && chmod +x "$ROOT/usr/sbin/policy-rc.d"
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' > "$ROOT/etc/apt/apt.conf.d/90zgb"
  mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
  mountpoint -q "$ROOT/dev" || mount --bind /dev "$ROOT/dev"
  log "installing PostgreSQL, PHP and Zabbix 7.0 in the root (log: $ROOT.apt.log)"
  apt_in_root() { in_root env DEBIAN_FRONTEND=noninteractive apt-get "$@" >>"$ROOT.apt.log" 2>&1 || { tail -30 "$ROOT.apt.log" >&2; exit 1; }; }
  : > "$ROOT.apt.log"
  apt_in_root update -qq
  # php-cgi (and the CLI for its built-in server) before the frontend, or apt satisfies the frontend's
  # web-server dependency with Apache.
  apt_in_root install -y -qq php-cli php-cgi php-pgsql
  apt_in_root install -y -qq postgresql zabbix-server-pgsql zabbix-frontend-php
  apt_in_root clean
  touch "$ROOT/.zgb-ready"
  log "root ready in $(( $(date +%s) - started )) s ($(du -shx "$ROOT" | cut -f1))"
fi
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
mountpoint -q "$ROOT/dev" || mount --bind /dev "$ROOT/dev"
mkdir -p "$STATE" && in_root chown zabbix:zabbix "$STATE_IN"

# 2. PostgreSQL 17 on its own loopback port (conf.d, so the packaged postgresql.conf stays as shipped).
pg_version=$(ls "$ROOT/usr/lib/postgresql" | sort -n | tail -1)
pg_conf_dir=$ROOT/etc/postgresql/$pg_version/main/conf.d
pg_online() { in_root pg_lsclusters -h | awk '{print $4}' | grep -q online; }
if [ -n "${ZBX7_PG_PORT:-}" ]; then
  PG_PORT=$ZBX7_PG_PORT
elif [ -f "$pg_conf_dir/zgb.conf" ] && { pg_online || ! ss -Hltn "sport = :$(sed -n 's/^port *= *//p' "$pg_conf_dir/zgb.conf")" | grep -q .; }; then
  PG_PORT=$(sed -n 's/^port *= *//p' "$pg_conf_dir/zgb.conf")
else
  PG_PORT=$(free_port_from 55432 65535)
fi
if ! grep -qx "port = $PG_PORT" "$pg_conf_dir/zgb.conf" 2>/dev/null; then
  pg_online && in_root pg_ctlcluster "$pg_version" main stop
  printf "listen_addresses = '127.0.0.1'\nport = %s\nfsync = off\nsynchronous_commit = off\n" "$PG_PORT" > "$pg_conf_dir/zgb.conf"
fi
if ! pg_online; then
  log "starting PostgreSQL $pg_version on 127.0.0.1:$PG_PORT"
  in_root pg_ctlcluster "$pg_version" main start
fi
psql_pg() { in_root su postgres -c "psql -X -p $PG_PORT $*"; }
if ! psql_pg "-tAc \"SELECT 1 FROM pg_roles WHERE rolname='zabbix'\"" | grep -q 1; then
  psql_pg "-q -v ON_ERROR_STOP=1 -c \"CREATE ROLE zabbix LOGIN PASSWORD '$DB_PASSWORD'\""
fi
complete=$(psql_pg "-tAd zabbix -c 'SELECT count(*) > 0 FROM widget_field'" 2>/dev/null || true)
if [ "$complete" != "t" ]; then
  log "importing the Zabbix 7.0 schema"
  in_root su postgres -c "dropdb -p $PG_PORT --if-exists zabbix 2>/dev/null; createdb -p $PG_PORT -O zabbix zabbix"
  sql=/usr/share/zabbix-server-pgsql
  { echo "SET session_replication_role = replica; SET ROLE zabbix;"
    for f in schema images data; do
      if [ -f "$ROOT$sql/$f.sql.gz" ]; then zcat "$ROOT$sql/$f.sql.gz"; else cat "$ROOT$sql/$f.sql"; fi
    done
  } | in_root su postgres -c "psql -X -q -p $PG_PORT -v ON_ERROR_STOP=1 -d zabbix" >/dev/null
fi

# 3. zabbix_server (trapper on its own port, from 10061 up so that it never meets 6.0's 10051).
server_running() { [ -f "$STATE/zabbix_server.pid" ] && kill -0 "$(cat "$STATE/zabbix_server.pid")" 2>/dev/null; }
if [ -n "${ZBX7_SERVER_PORT:-}" ]; then
  SERVER_PORT=$ZBX7_SERVER_PORT
elif server_running && grep -q '^ListenPort=' "$STATE/zabbix_server.conf" 2>/dev/null; then
  SERVER_PORT=$(sed -n 's/^ListenPort=//p' "$STATE/zabbix_server.conf")
else
  SERVER_PORT=$(free_port_from 10061 32767)
fi
if server_running && ! grep -qx "ListenPort=$SERVER_PORT" "$STATE/zabbix_server.conf"; then
  log "restarting zabbix_server on port $SERVER_PORT"
  kill "$(cat "$STATE/zabbix_server.pid")"
  for _ in $(seq 1 50); do server_running || break; sleep 0.2; done
fi
cat > "$STATE/zabbix_server.conf" <<CONF
ListenIP=127.0.0.1
ListenPort=$SERVER_PORT
LogFile=$STATE_IN/zabbix_server.log
PidFile=$STATE_IN/zabbix_server.pid
SocketDir=$STATE_IN
DBHost=127.0.0.1
DBPort=$PG_PORT
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
StartAgentPollers=0
StartHTTPAgentPollers=0
StartSNMPPollers=0
StartTrappers=2
StartAlerters=2
StartEscalators=1
StartDBSyncers=1
HousekeepingFrequency=0
AlertScriptsPath=/etc/zabbix/alert.d/
CONF
if ! server_running; then
  log "starting zabbix_server 7.0 (trapper on port $SERVER_PORT)"
  in_root zabbix_server -c "$STATE_IN/zabbix_server.conf"
fi

# 4. The frontend (API) on PHP's built-in server inside the root.
cat > "$ROOT/etc/zabbix/zabbix.conf.php" <<PHP
<?php
\$DB['TYPE'] = 'POSTGRESQL';
\$DB['SERVER'] = '127.0.0.1';
\$DB['PORT'] = '$PG_PORT';
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
\$DB['VAULT'] = '';
\$DB['VAULT_URL'] = '';
\$DB['VAULT_PREFIX'] = '';
\$DB['VAULT_DB_PATH'] = '';
\$DB['VAULT_TOKEN'] = '';
\$DB['VAULT_CERT_FILE'] = '';
\$DB['VAULT_KEY_FILE'] = '';
\$DB['VAULT_CACHE'] = false;
\$DB['DOUBLE_IEEE754'] = true;
\$ZBX_SERVER = '127.0.0.1';
\$ZBX_SERVER_PORT = '$SERVER_PORT';
\$ZBX_SERVER_NAME = 'bridge-e2e-7';
\$IMAGE_FORMAT_DEFAULT = IMAGE_FORMAT_PNG;
PHP
version() { curl -s -m 5 -H 'Content-Type: application/json-rpc' -d '{"jsonrpc":"2.0","method":"apiinfo.version","params":[],"id":1}' "http://127.0.0.1:$1/api_jsonrpc.php" 2>/dev/null | grep -o '"result":"[^"]*"' || true; }
if [ -n "${ZBX7_WEB_PORT:-}" ]; then
  WEB_PORT=$ZBX7_WEB_PORT
elif [ -f "$STATE/web_port" ] && [ -n "$(version "$(cat "$STATE/web_port")")" ]; then
  WEB_PORT=$(cat "$STATE/web_port")
else
  WEB_PORT=$(kernel_port)
fi
API="http://127.0.0.1:$WEB_PORT/api_jsonrpc.php"
if [ -z "$(version "$WEB_PORT")" ]; then
  log "starting the frontend on :$WEB_PORT"
  # Its own process group (its pid), so that down.sh stops the workers too.
  setsid nohup chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 PHP_CLI_SERVER_WORKERS=4 \
    php -S "127.0.0.1:$WEB_PORT" -t /usr/share/zabbix > "$STATE/php.log" 2>&1 &
  echo $! > "$STATE/php.pid"
  echo "$WEB_PORT" > "$STATE/web_port"
  for _ in $(seq 1 50); do [ -n "$(version "$WEB_PORT")" ] && break; sleep 0.2; done
fi
[ -n "$(version "$WEB_PORT")" ] || { log "the Zabbix API does not answer at $API"; tail -20 "$STATE/php.log" >&2; exit 1; }
log "Zabbix $(version "$WEB_PORT") up (API $API, trapper port $SERVER_PORT, PostgreSQL port $PG_PORT); server log $STATE/zabbix_server.log"
echo "$API"
