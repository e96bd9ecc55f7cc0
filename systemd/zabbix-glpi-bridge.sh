#!/bin/sh
# zabbix-glpi-bridge COMMAND [ARGS…] — a command of the installed bridge (queue, status, explain,
# check-config …) with what the service gets: its configuration, bridge.env, its secrets and its data
# directory. Installed as /usr/local/sbin/zabbix-glpi-bridge by the README's program block; run it with sudo:
# it reads the root-only secrets, and a command that opens the store does so as the data directory's owner
# (the service's user), so that no file of the store becomes root's.
# The paths are the README's; ZGB_ETC, ZGB_OPT and BRIDGE_DATA_DIR move them (the install test does).
set -eu
etc=${ZGB_ETC:-/etc/zabbix-glpi-bridge}
[ -r "$etc/bridge.env" ] || { echo "zabbix-glpi-bridge: cannot read $etc/bridge.env (run it with sudo)" >&2; exit 1; }
set -a
. "$etc/bridge.env"
set +a
BRIDGE_DATA_DIR=${BRIDGE_DATA_DIR:-/var/lib/zabbix-glpi-bridge}
CREDENTIALS_DIRECTORY=$etc/credentials
export BRIDGE_DATA_DIR CREDENTIALS_DIRECTORY
exec node "${ZGB_OPT:-/opt/zabbix-glpi-bridge}/dist/bridge/main.js" "$@" --config "$etc/bridge.yaml"
