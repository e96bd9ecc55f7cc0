#!/usr/bin/env bash
# The README's install procedure, run as written: the fenced blocks of "Install as a systemd
# service" marked <!-- install-script: NAME --> run in bash -euo pipefail, with only the system
# paths (/opt/zabbix-glpi-bridge, /etc/zabbix-glpi-bridge, /etc/systemd/system,
# /var/lib/zabbix-glpi-bridge) moved into a scratch root. The service user is real (created if
# missing, removed after). Then, since no systemd runs here (PID 1 is not systemd), the installed
# unit is started the way systemd would start it: its User=/Group=, WorkingDirectory=, UMask=,
# Environment=, EnvironmentFile=, StateDirectory= and LoadCredential= (a private copy of each
# credential in $CREDENTIALS_DIRECTORY, readable by the user only), no capabilities, no new
# privileges, and its ExecStart= command line. Against a GLPI fake, the daemon must answer
# /readyz 200, take a webhook with the installed token, open the ticket with the installed GLPI
# tokens, and exit 0 on SIGTERM. Twice: without a GLPI app token, then after the README's
# optional app-token block (the fake then refuses sessions without it).
#
# Not covered (needs a running systemd): the hardening and limits themselves (ProtectSystem=,
# SystemCallFilter=, MemoryMax=, IPAddressDeny=, …); systemd-analyze verify checks the unit.
#
# Root only (it creates a system user); skipped otherwise. KEEP=1 keeps the scratch root.
# About a minute (two more with INSTALL_TEST_COMPILE=1, see the build step).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
NAME=zabbix-glpi-bridge
START=$SECONDS

if [ "$(id -u)" != 0 ]; then
  echo "readme-install: skipped (needs root: it creates the system user $NAME)"
  exit 0
fi

say() { printf '[readme-install %3ds] %s\n' $((SECONDS - START)) "$*"; }
fail() {
  printf '[readme-install] FAIL: %s\n' "$*" >&2
  exit 1
}

SCRATCH=$(mktemp -d /tmp/zgb-install.XXXXXX)
chmod 0755 "$SCRATCH" # the service user walks through it to /opt and /etc, as through /
ROOT=$SCRATCH/root
SRC=$SCRATCH/src
USER_CREATED=0
DAEMON_PID=
FAKE_PID=
cleanup() {
  local rc=$?
  set +e
  if [ -n "$DAEMON_PID" ]; then kill -KILL "$DAEMON_PID" 2>/dev/null; fi
  if [ -n "$FAKE_PID" ]; then kill -KILL "$FAKE_PID" 2>/dev/null; fi
  wait 2>/dev/null
  if [ "$USER_CREATED" = 1 ]; then userdel "$NAME"; fi
  if [ "${KEEP:-0}" = 1 ]; then echo "readme-install: kept $SCRATCH"; else rm -rf "$SCRATCH"; fi
  exit "$rc"
}
trap cleanup EXIT

# ---- the README's blocks ------------------------------------------------------------------------

block() { # block NAME: the fenced block after <!-- install-script: NAME -->
  local text
  text=$(awk -v marker="<!-- install-script: $1 -->" '
    $0 == marker { found = 1; next }
    found && /^```/ { if (inside) exit; inside = 1; next }
    inside { print }' "$REPO/README.md")
  [ -n "$text" ] || fail "README.md has no block marked <!-- install-script: $1 -->"
  printf '%s\n' "$text"
}

# Only the system paths move; every other word of the block runs as written. Idempotent: a path
# already in the scratch root (one a block wrote into a drop-in) stays as it is.
relocate() {
  sed -e "s#$ROOT/#/#g" \
    -e "s#sudo /usr/local/sbin/$NAME#sudo env ZGB_ETC=/etc/$NAME ZGB_OPT=/opt/$NAME BRIDGE_DATA_DIR=/var/lib/$NAME /usr/local/sbin/$NAME#g" \
    -e "s# /usr/local/sbin/$NAME# $ROOT/usr/local/sbin/$NAME#g" \
    -e "s#/opt/$NAME#$ROOT/opt/$NAME#g" \
    -e "s#/etc/$NAME#$ROOT/etc/$NAME#g" \
    -e "s#/etc/systemd/system#$ROOT/etc/systemd/system#g" \
    -e "s#/var/lib/$NAME#$ROOT/var/lib/$NAME#g"
}

run_blocks() { # run_blocks NAME...: the blocks in one shell (later blocks use earlier functions), in the source tree
  local script=''
  for b in "$@"; do script+="$(block "$b" | relocate)"$'\n'; done
  (cd "$SRC" && bash -euo pipefail -c "$script") || fail "README block(s) $* failed"
}

# ---- the machine ----------------------------------------------------------------------------------

ps -p 1 -o comm= | grep -qx systemd && say "note: systemd runs here, but the test still starts the service by hand (scratch root)"
if ! command -v sudo >/dev/null 2>&1; then
  # The README's commands use sudo; a fresh CI machine may lack it.
  apt-get update -qq && apt-get install -y -qq --no-install-recommends sudo >/dev/null
fi
command -v systemd-analyze >/dev/null || fail "systemd-analyze missing (apt-get install systemd)"
command -v setpriv >/dev/null || fail "setpriv missing (util-linux)"
id "$NAME" >/dev/null 2>&1 || USER_CREATED=1
if [ "$USER_CREATED" = 0 ]; then say "note: user $NAME exists already; it is kept"; fi

# What the scratch root starts with: the directories a Debian system has.
install -d -m 0755 "$ROOT" "$ROOT/usr" "$ROOT/usr/local" "$ROOT/usr/local/sbin" "$ROOT/opt" "$ROOT/etc" "$ROOT/etc/systemd" "$ROOT/etc/systemd/system" "$ROOT/var" "$ROOT/var/lib" "$ROOT/run" "$ROOT/run/credentials"

# The source tree as a git clone has it (no node_modules, no dist).
mkdir -m 0755 "$SRC"
tar -C "$REPO" --exclude=node_modules --exclude=./dist --exclude=./.git --exclude=./var --exclude=./coverage --exclude='*.db*' -cf - . | tar -C "$SRC" -xf -

# ---- 1. build -----------------------------------------------------------------------------------

say "build block (npm ci, npm prune)"
# A warm npm cache (CI ran npm ci just before). better-sqlite3 installs with `prebuild-install ||
# node-gyp rebuild`: with internet access prebuild-install downloads its binary; here
# (github.com unreachable) it would compile for ~100 s what CI compiled a minute ago, so that
# binary is offered as a local prebuild (prebuild-install's own --local-prebuilds, which loads it
# before use and compiles when it does not fit). INSTALL_TEST_COMPILE=1 compiles, as on a fresh machine.
export npm_config_prefer_offline=true npm_config_audit=false npm_config_fund=false JOBS=max
SQLITE_BIN=$REPO/node_modules/better-sqlite3/build/Release/better_sqlite3.node
if [ "${INSTALL_TEST_COMPILE:-0}" != 1 ] && [ -f "$SQLITE_BIN" ]; then
  mkdir "$SCRATCH/prebuilds"
  tar -czf "$SCRATCH/prebuilds/$(node -p "const p = require('$REPO/node_modules/better-sqlite3/package.json'); \`\${p.name}-v\${p.version}-node-v\${process.versions.modules}-\${process.platform}-\${process.arch}.tar.gz\`")" \
    -C "$REPO/node_modules/better-sqlite3" build/Release/better_sqlite3.node
  export npm_config_better_sqlite3_local_prebuilds=$SCRATCH/prebuilds
fi
run_blocks build >"$SCRATCH/build.log" 2>&1 || {
  tail -n 40 "$SCRATCH/build.log" >&2
  fail "build block"
}
[ "$(grep -c '^> tsc ' "$SCRATCH/build.log")" = 1 ] || fail "the build block compiled TypeScript $(grep -c '^> tsc ' "$SCRATCH/build.log") times, expected once"
[ -f "$SRC/dist/bridge/main.js" ] || fail "no dist/bridge/main.js after the build block"
[ ! -e "$SRC/node_modules/typescript" ] || fail "dev dependencies left in node_modules after the build block"

# ---- 2. program, user, configuration, secrets -----------------------------------------------------

GLPI_USER_TOKEN="install-test-user-$(head -c 9 /dev/urandom | base64 | tr '+/' '-_')"
export GLPI_USER_TOKEN
say "program and install blocks"
run_blocks program install

OPT=$ROOT/opt/$NAME
ETC=$ROOT/etc/$NAME
CREDS=$ETC/credentials
UNIT=$ROOT/etc/systemd/system/$NAME.service
STATE=$ROOT/var/lib/$NAME

expect_stat() { # expect_stat PATH OWNER:GROUP MODE
  local got
  got=$(stat -c '%U:%G %a' "$1") || fail "$1 missing"
  [ "$got" = "$2 $3" ] || fail "$1 is $got, expected $2 $3"
}
as_user() { setpriv --reuid="$NAME" --regid="$NAME" --init-groups -- "$@"; }

check_install() {
  local uid shell
  uid=$(id -u "$NAME")
  [ "$uid" -lt 1000 ] || fail "$NAME has uid $uid: not a system user"
  shell=$(getent passwd "$NAME" | cut -d: -f7)
  [ "$shell" = /usr/sbin/nologin ] || fail "$NAME has shell $shell"
  expect_stat "$OPT" root:root 755
  # The bundle's entry starts with #!/usr/bin/env node, and esbuild makes such a file executable: 755 after the chmod.
  expect_stat "$OPT/dist/bridge/main.js" root:root 755
  [ -z "$(find "$OPT" \( ! -user root -o ! -perm -o+r \) -print -quit)" ] || fail "$OPT holds a file not root's or not world-readable"
  [ -z "$(find "$OPT" ! -type l -perm /go+w -print -quit)" ] || fail "$OPT holds a file writable by others than root"
  expect_stat "$ETC" "root:$NAME" 750
  for f in bridge.yaml rules.example.yaml bridge.env; do expect_stat "$ETC/$f" "root:$NAME" 640; done
  expect_stat "$CREDS" root:root 700
  for f in "$CREDS"/*; do
    expect_stat "$f" root:root 600
    [ -s "$f" ] || fail "$f is empty"
  done
  expect_stat "$UNIT" root:root 644
  expect_stat "$ROOT/usr/local/sbin/$NAME" root:root 755
  as_user cat "$ETC/bridge.yaml" "$ETC/rules.example.yaml" "$OPT/dist/bridge/main.js" >/dev/null || fail "$NAME cannot read its configuration or program"
  if as_user cat "$CREDS/GLPI_USER_TOKEN" >/dev/null 2>&1; then fail "$NAME can read the credentials store"; fi
  # The unit as installed, with its drop-ins: clean, and no worse than the repository's rating.
  local verify
  verify=$(systemd-analyze verify "$UNIT" 2>&1) || fail "systemd-analyze verify: $verify"
  [ -z "$verify" ] || fail "systemd-analyze verify: $verify"
  systemd-analyze security --offline=true "$UNIT" | tail -n 1 | sed 's/^/  installed unit: /'
}
check_install
say "installed: user, folders, permissions, unit verified"

# ---- 3. configure, check, start as systemd would ----------------------------------------------------

free_port() { node -e "const s=require('node:net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
http_status() { # http_status URL [TOKEN BODYFILE]: the status code, 000 when nothing answers
  node -e "
    const [url, token, file] = process.argv.slice(1);
    const init = token ? { method: 'POST', headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' }, body: require('node:fs').readFileSync(file) } : {};
    fetch(url, { ...init, signal: AbortSignal.timeout(5000) }).then((r) => console.log(r.status), () => console.log('000'));" "$@"
}
json_count() { node -e "fetch(process.argv[1]).then((r) => r.json()).then((s) => console.log(s[process.argv[2]].length), () => console.log(-1))" "$1" "$2"; }

start_fake() { # start_fake [APP_TOKEN]
  GPORT=$(free_port)
  GLPI_USER_TOKEN=$GLPI_USER_TOKEN GLPI_APP_TOKEN=${1:-} node "$OPT/dist/src/glpi-fake/server.js" "$GPORT" >"$SCRATCH/fake.log" 2>&1 &
  FAKE_PID=$!
  for _ in $(seq 50); do
    [ "$(http_status "http://127.0.0.1:$GPORT/_fake/state")" = 200 ] && return 0
    sleep 0.2
  done
  fail "the GLPI fake did not start: $(cat "$SCRATCH/fake.log")"
}
stop_fake() {
  kill -TERM "$FAKE_PID"
  wait "$FAKE_PID" || true
  FAKE_PID=
}

# The operator's edit of bridge.env: GLPI_URL and BRIDGE_LISTEN (written in place: owner and mode stay).
configure() {
  BPORT=$(free_port)
  local text
  text=$(sed -e "s#^GLPI_URL=.*#GLPI_URL=http://127.0.0.1:$GPORT/apirest.php#" -e "s#^BRIDGE_LISTEN=.*#BRIDGE_LISTEN=127.0.0.1:$BPORT#" "$ETC/bridge.env")
  printf '%s\n' "$text" >"$ETC/bridge.env"
  grep -q "^GLPI_URL=http://127.0.0.1:$GPORT/" "$ETC/bridge.env" || fail "bridge.env has no GLPI_URL= line to set"
  grep -q "^BRIDGE_LISTEN=127.0.0.1:$BPORT$" "$ETC/bridge.env" || fail "bridge.env has no BRIDGE_LISTEN= line to set"
}

# The unit's [Service] settings, drop-ins after it (later lines win for single-valued keys).
unit_lines() { cat "$UNIT" "$ROOT/etc/systemd/system/$NAME.service.d"/*.conf 2>/dev/null | grep -E '^[A-Za-z]+=' || true; }
unit_all() { unit_lines | sed -n "s/^$1=//p"; }
unit_one() { unit_all "$1" | tail -n 1; }

# Start ExecStart= as systemd would (see the header); sets DAEMON_PID.
start_service() {
  local user group wd umask_ statedir statemode cred_dir line id path
  user=$(unit_one User)
  group=$(unit_one Group)
  wd=$(unit_one WorkingDirectory | relocate)
  umask_=$(unit_one UMask)
  statedir=$(unit_one StateDirectory)
  statemode=$(unit_one StateDirectoryMode)
  [ "$user" = "$NAME" ] && [ "$group" = "$NAME" ] || fail "unit runs as $user:$group"

  # StateDirectory=: created and owned by the user, mode StateDirectoryMode=.
  install -d -m "${statemode:-0755}" "$ROOT/var/lib/$statedir"
  chown -R "$user:$group" "$ROOT/var/lib/$statedir"
  chmod "${statemode:-0755}" "$ROOT/var/lib/$statedir"

  # LoadCredential=: read as root; a missing file keeps systemd from starting the unit.
  cred_dir=$ROOT/run/credentials/$NAME.service
  rm -rf "$cred_dir"
  install -d -m 0700 "$cred_dir"
  while IFS= read -r line; do
    id=${line%%:*}
    path=$(printf '%s' "${line#*:}" | relocate)
    [ -f "$path" ] || fail "LoadCredential=$line: no such file; systemd would not start the unit"
    cp "$path" "$cred_dir/$id"
  done < <(unit_all LoadCredential)
  chown -R "$user:$group" "$cred_dir"
  chmod 0400 "$cred_dir"/*
  chmod 0500 "$cred_dir"

  # The environment: systemd's own, Environment=, then EnvironmentFile= (which wins).
  local -a envs=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin "USER=$user" "LOGNAME=$user"
    "HOME=$(getent passwd "$user" | cut -d: -f6)" "SHELL=$(getent passwd "$user" | cut -d: -f7)"
    "INVOCATION_ID=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" "CREDENTIALS_DIRECTORY=$cred_dir")
  while IFS= read -r line; do
    [[ $line == *[[:space:]\"\']* ]] && fail "Environment=$line: this test reads one unquoted assignment per line"
    envs+=("$(printf '%s' "$line" | relocate)")
  done < <(unit_all Environment)
  while IFS= read -r path; do
    path=$(printf '%s' "${path#-}" | relocate)
    [ -f "$path" ] || continue
    while IFS= read -r line; do envs+=("$line"); done < <(grep -E '^[A-Za-z_][A-Za-z0-9_]*=' "$path")
  done < <(unit_all EnvironmentFile)

  local -a cmd
  read -r -a cmd <<<"$(unit_one ExecStart | relocate)"
  say "ExecStart as $user: ${cmd[*]}"
  # setpriv drops to the user (no capabilities, no new privileges) and execs env, which execs
  # sh, which changes to WorkingDirectory= as the user and execs the daemon: one PID throughout.
  (umask "$umask_" && exec setpriv --reuid="$user" --regid="$group" --init-groups --no-new-privs --bounding-set=-all --inh-caps=-all -- \
    env -i "${envs[@]}" /bin/sh -c 'cd "$0" && exec "$@"' "$wd" "${cmd[@]}") >"$SCRATCH/daemon.log" 2>&1 &
  DAEMON_PID=$!
}

daemon_log() { tail -n 30 "$SCRATCH/daemon.log" >&2; }

wait_ready() {
  local status
  for _ in $(seq 150); do
    kill -0 "$DAEMON_PID" 2>/dev/null || {
      daemon_log
      fail "the daemon exited before it was ready"
    }
    status=$(http_status "http://127.0.0.1:$BPORT/readyz")
    [ "$status" = 200 ] && return 0
    sleep 0.2
  done
  daemon_log
  fail "/readyz answered $status for 30 s"
}

# A problem for a new incident (HOST), with the installed webhook token; GLPI must get its ticket.
deliver_problem() {
  local host=$1 body=$SCRATCH/problem-$1.json status token
  node -e "
    const b = JSON.parse(require('node:fs').readFileSync(process.argv[1], 'utf8'));
    Object.assign(b, { event_id: String(Date.now()), host_host: process.argv[2], host_name: process.argv[2], trigger_name: 'Install test on ' + process.argv[2] });
    require('node:fs').writeFileSync(process.argv[3], JSON.stringify(b));" "$REPO/test/fixtures/zabbix/problem.json" "$host" "$body"
  token=$(cat "$CREDS/BRIDGE_WEBHOOK_TOKEN")
  status=$(http_status "http://127.0.0.1:$BPORT/zabbix/webhook" "$token" "$body")
  [ "$status" = 202 ] || {
    daemon_log
    fail "webhook with the installed token answered $status"
  }
  for _ in $(seq 75); do
    [ "$(json_count "http://127.0.0.1:$GPORT/_fake/state" tickets)" -ge 1 ] && return 0
    sleep 0.2
  done
  daemon_log
  fail "no ticket in GLPI 15 s after the webhook (GLPI tokens not passed on?)"
}

# The installed admin token reloads the configuration (read again as the service user); the webhook token may not.
check_admin() {
  local status
  printf '{}' >"$SCRATCH/empty.json"
  status=$(http_status "http://127.0.0.1:$BPORT/-/reload" "$(cat "$CREDS/BRIDGE_ADMIN_TOKEN")" "$SCRATCH/empty.json")
  [ "$status" = 200 ] || {
    daemon_log
    fail "POST /-/reload with the installed admin token answered $status"
  }
  status=$(http_status "http://127.0.0.1:$BPORT/-/reload" "$(cat "$CREDS/BRIDGE_WEBHOOK_TOKEN")" "$SCRATCH/empty.json")
  [ "$status" = 401 ] || fail "POST /-/reload with the webhook token answered $status, expected 401"
}

# Threads and memory against TasksMax= and MemoryMax=, with a margin of 2.
check_limits() {
  local threads rss_kb tasks_max mem_max
  threads=$(awk '/^Threads:/ { print $2 }' "/proc/$DAEMON_PID/status")
  rss_kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMON_PID/status")
  tasks_max=$(unit_one TasksMax)
  mem_max=$(unit_one MemoryMax)
  [ "$(stat -c %U "/proc/$DAEMON_PID")" = "$NAME" ] || fail "the daemon does not run as $NAME"
  say "daemon: $threads threads (TasksMax=$tasks_max), $((rss_kb / 1024)) MB resident (MemoryMax=$mem_max)"
  [ $((threads * 2)) -le "$tasks_max" ] || fail "$threads threads: TasksMax=$tasks_max leaves less than a margin of 2"
  [[ $mem_max =~ ^([0-9]+)M$ ]] || fail "MemoryMax=$mem_max: expected megabytes"
  [ $((rss_kb * 2)) -le $((BASH_REMATCH[1] * 1024)) ] || fail "$((rss_kb / 1024)) MB resident when idle: MemoryMax=$mem_max leaves less than a margin of 2"
}

stop_service() {
  local stop_timeout rc=0 t0=$SECONDS
  stop_timeout=$(unit_one TimeoutStopSec)
  kill -TERM "$DAEMON_PID"
  wait "$DAEMON_PID" || rc=$?
  DAEMON_PID=
  [ "$rc" = 0 ] || {
    daemon_log
    fail "the daemon exited $rc on SIGTERM"
  }
  [ $((SECONDS - t0)) -lt "${stop_timeout:-90}" ] || fail "SIGTERM took $((SECONDS - t0)) s (TimeoutStopSec=$stop_timeout)"
  [ -z "$(find "$STATE" ! -user "$NAME" -print -quit)" ] || fail "$STATE holds files not owned by $NAME: $(find "$STATE" ! -user "$NAME")"
  [ -z "$(find "$STATE" -perm /077 -print -quit)" ] || fail "$STATE holds files others can read: $(find "$STATE" -perm /077)"
}

run_service() { # run_service HOST: configure, check-config (README block), start, probe, stop
  configure
  run_blocks check >"$SCRATCH/check.log" 2>&1 || {
    cat "$SCRATCH/check.log" >&2
    fail "check block"
  }
  start_service
  wait_ready
  say "/readyz 200 on 127.0.0.1:$BPORT"
  deliver_problem "$1"
  say "webhook 202 with the installed token; GLPI has the ticket"
  check_admin
  say "reload 200 with the installed admin token, 401 with the webhook token"
  check_limits
  stop_service
  say "SIGTERM: exit 0"
  # The operator's commands as root on the stopped service's store: its files stay the service user's
  # (the next start, scenario 2, would fail on a root-owned -wal or -shm file).
  run_blocks operate >"$SCRATCH/operate.log" 2>&1 || {
    cat "$SCRATCH/operate.log" >&2
    fail "operate block"
  }
  grep -q "not answering: read from the store" "$SCRATCH/operate.log" || fail "status did not read the stopped service's store: $(cat "$SCRATCH/operate.log")"
  [ -z "$(find "$STATE" ! -user "$NAME" -print -quit)" ] || fail "the operate block left files not owned by $NAME in $STATE: $(find "$STATE" ! -user "$NAME")"
  say "status and queue as root: the store's files are still $NAME's"
}

say "scenario 1: GLPI without an app token"
start_fake
run_service install-test-1
stop_fake

say "scenario 2: upgrade (program block again), the install block again, then the optional GLPI app token block"
WEBHOOK_TOKEN=$(cat "$CREDS/BRIDGE_WEBHOOK_TOKEN")
GLPI_APP_TOKEN="install-test-app-$(head -c 9 /dev/urandom | base64 | tr '+/' '-_')"
export GLPI_APP_TOKEN
run_blocks program
# The install block again (it defines put_secret, as in the operator's shell): it keeps the bridge's tokens.
run_blocks install glpi-app-token >/dev/null
[ "$(cat "$CREDS/BRIDGE_WEBHOOK_TOKEN")" = "$WEBHOOK_TOKEN" ] || fail "running the install block again changed the webhook token"
check_install
[ -f "$ROOT/etc/systemd/system/$NAME.service.d/credential-GLPI_APP_TOKEN.conf" ] || fail "no drop-in for GLPI_APP_TOKEN"
start_fake "$GLPI_APP_TOKEN"
run_service install-test-2
stop_fake

say "passed in $((SECONDS - START)) s"
