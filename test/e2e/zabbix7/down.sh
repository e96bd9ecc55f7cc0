#!/usr/bin/env bash
# Stops what up.sh started: zabbix_server, the frontend, PostgreSQL, and the root's mounts. The root stays
# (packages and database), so the next up.sh only starts them. ZBX7_PURGE=1 also deletes the root.
ROOT=${ZBX7_ROOT:-/var/cache/zgb-trixie}
STATE=$ROOT/tmp/zgb-zbx7
[ -d "$ROOT" ] || exit 0
if [ -f "$STATE/zabbix_server.pid" ] && kill "$(cat "$STATE/zabbix_server.pid")" 2>/dev/null; then
  for _ in $(seq 1 50); do kill -0 "$(cat "$STATE/zabbix_server.pid" 2>/dev/null)" 2>/dev/null || break; sleep 0.2; done
fi
# The frontend and its workers: the process group up.sh started it in.
[ -f "$STATE/php.pid" ] && kill -- "-$(cat "$STATE/php.pid")" 2>/dev/null; rm -f "$STATE/php.pid"
if [ -x "$ROOT/usr/bin/pg_ctlcluster" ] && mountpoint -q "$ROOT/proc"; then
  for v in $(ls "$ROOT/usr/lib/postgresql" 2>/dev/null); do
    chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin pg_ctlcluster "$v" main stop 2>/dev/null
  done
fi
mountpoint -q "$ROOT/dev" && umount "$ROOT/dev"
mountpoint -q "$ROOT/proc" && umount "$ROOT/proc"
if [ "${ZBX7_PURGE:-0}" = 1 ]; then
  mountpoint -q "$ROOT/dev" || mountpoint -q "$ROOT/proc" || rm -rf --one-file-system "$ROOT" "$ROOT.debootstrap.log" "$ROOT.apt.log"
fi
exit 0
