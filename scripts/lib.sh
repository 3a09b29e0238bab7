# Shared helpers for the GitTix scripts. Source it; do not run it.
# shellcheck shell=bash

GITTIX_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Go-built tools live outside the checkout, so a fresh clone on the same machine reuses them.
GITTIX_TOOLS_DIR="${GITTIX_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gittix/bin}"
export PATH="$GITTIX_TOOLS_DIR:$PATH:/usr/sbin:/sbin"

# Pinned versions of what `scripts/install.sh` builds.
# shellcheck disable=SC2034 # read by install.sh
NATS_SERVER_VERSION="v2.12.4"
# shellcheck disable=SC2034 # read by install.sh
CARGO_MACHETE_VERSION="0.9.2"
# shellcheck disable=SC2034 # read by install.sh
MAILPIT_VERSION="v1.33.1"
# shellcheck disable=SC2034 # read by install.sh; .github/workflows/deploy.yml installs the same
HELM_VERSION="v3.22.0"

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
warn() { printf '\033[1;33mwarning:\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# True when process $1 runs: a zombie (exited, not yet reaped by an init that reaps
# slowly, as orphans of `stack.sh start` are) does not count.
alive() {
  local pid=${1:-} stat
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 0
  stat=${stat##*) }
  [ "${stat:0:1}" != Z ]
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# During start-up: fails when process $1 has gone for good. $2 is its pid, or the state
# folder it was started in by start_daemon: then only its supervisor's death counts (the
# supervisor restarts the process meanwhile, as Kubernetes would).
starting() {
  local name=$1 target=${2:-} sup
  [ -n "$target" ] || return 0
  if [ -d "$target" ]; then
    sup=$(cat "$target/$name.sup.pid" 2>/dev/null || true)
    if [ -n "$sup" ]; then
      alive "$sup" || die "$name's supervisor is gone; see $target/logs/$name.log"
      return 0
    fi
    target=$(pid_of "$target" "$name")
  fi
  alive "$target" || die "$name exited during start-up; see its log"
}

# What to say when $1 did not become ready within $2 seconds ($3: as for `starting`).
not_ready() {
  local name=$1 secs=$2 target=${3:-} exits=0
  [ -d "$target" ] && exits=$(restarts_of "$target" "$name")
  if [ "$exits" -gt 0 ]; then
    die "$name exited during start-up ($exits times; still restarting) and was not ready within $secs s; see $target/logs/$name.log"
  fi
  die "$name was not ready within $secs s"
}

# Waits until 127.0.0.1:$2 accepts connections; $1 names the server, $3 is its pid or state
# folder (see `starting`). READY_TIMEOUT (60 s) bounds the wait.
wait_for_port() {
  local name=$1 port=$2 target=${3:-} deadline=$((SECONDS + ${READY_TIMEOUT:-60}))
  until port_open "$port"; do
    starting "$name" "$target"
    [ "$SECONDS" -ge "$deadline" ] && not_ready "$name" "${READY_TIMEOUT:-60}" "$target"
    sleep 0.1
  done
}

# Waits until an HTTP URL answers 200 (arguments as for wait_for_port).
wait_for_http() {
  local name=$1 url=$2 target=${3:-} deadline=$((SECONDS + ${READY_TIMEOUT:-60}))
  until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
    starting "$name" "$target"
    [ "$SECONDS" -ge "$deadline" ] && not_ready "$name" "${READY_TIMEOUT:-60}" "$target"
    sleep 0.1
  done
}

# Starts a long-running command in the background under a supervisor, as Kubernetes
# would run it: output in "$dir/logs/$name.log", the command's pid in "$dir/$name.pid",
# the supervisor's in "$dir/$name.sup.pid". Whenever the command exits (crash, SIGKILL,
# or a clean exit after SIGTERM) the supervisor starts it again after a capped backoff
# (SUPERVISE_BACKOFF_MIN 0.5 s, doubling up to SUPERVISE_BACKOFF_MAX 10 s; back to the
# minimum once a run lasted SUPERVISE_STABLE_SECONDS, 30 s), logs each restart in the
# command's log and in "$dir/logs/supervisor.log", and counts them in "$dir/$name.restarts".
# SUPERVISE=0 runs the command unsupervised (the old behaviour). Does nothing when that
# supervisor (or unsupervised command) is still alive.
start_daemon() {
  local dir=$1 name=$2; shift 2
  local pidfile="$dir/$name.pid" suppid="$dir/$name.sup.pid"
  if [ -f "$suppid" ] && alive "$(cat "$suppid")"; then
    return 0
  fi
  if [ ! -f "$suppid" ] && [ -f "$pidfile" ] && alive "$(cat "$pidfile")"; then
    return 0
  fi
  mkdir -p "$dir/logs"
  rm -f "$pidfile" "$suppid"
  echo 0 >"$dir/$name.restarts"
  if [ "${SUPERVISE:-1}" = 0 ]; then
    nohup "$@" >>"$dir/logs/$name.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    return 0
  fi
  # The supervisor's own stdio goes to the log, so a caller capturing our output never
  # waits on it; HUP is ignored (as nohup would), and so by the command it runs.
  (supervise "$dir" "$name" "$@") >>"$dir/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$suppid"
  # The command's pid, once the supervisor has started it (callers wait on it).
  local tries=0
  until [ -s "$pidfile" ] || [ "$tries" -ge 50 ]; do sleep 0.02; tries=$((tries + 1)); done
}

# The supervisor loop of start_daemon (runs in its own subshell).
supervise() {
  local dir=$1 name=$2; shift 2
  local pidfile="$dir/$name.pid" child rc started ran restarts=0
  local delay=${SUPERVISE_BACKOFF_MIN:-0.5} max=${SUPERVISE_BACKOFF_MAX:-10} stable=${SUPERVISE_STABLE_SECONDS:-30}
  set +e
  trap '' HUP INT
  # Stopping: TERM to the supervisor ends it without a restart (stop_daemon then stops
  # the command itself).
  trap 'exit 0' TERM
  while true; do
    started=$SECONDS
    "$@" &
    child=$!
    echo "$child" >"$pidfile"
    wait "$child"
    rc=$?
    # A trapped TERM interrupts wait: the child is still running; leave it to stop_daemon.
    alive "$child" && exit 0
    ran=$((SECONDS - started))
    [ "$ran" -ge "$stable" ] && delay=${SUPERVISE_BACKOFF_MIN:-0.5}
    restarts=$((restarts + 1))
    echo "$restarts" >"$dir/$name.restarts"
    printf '%s supervisor: %s (pid %s) exited with status %s after %ss; restart %s in %ss\n' \
      "$(date -u +%FT%TZ)" "$name" "$child" "$rc" "$ran" "$restarts" "$delay" | tee -a "$dir/logs/supervisor.log"
    sleep "$delay" &
    wait $!
    delay=$(awk -v d="$delay" -v m="$max" 'BEGIN { d *= 2; if (d > m) d = m; print d }')
  done
}

# Ends process $1: TERM, then KILL if it is still alive after $2 tenths of a second, and
# returns once it is gone (a killed process takes a moment to vanish; at most 3 s more).
terminate() {
  local pid=$1 tenths=$2 tries=0
  alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  while alive "$pid" && [ "$tries" -lt "$tenths" ]; do
    sleep 0.1
    tries=$((tries + 1))
  done
  alive "$pid" || return 0
  kill -KILL "$pid" 2>/dev/null || true
  tries=0
  while alive "$pid" && [ "$tries" -lt 30 ]; do
    sleep 0.1
    tries=$((tries + 1))
  done
}

# Stops what start_daemon started: the supervisor first (so nothing restarts), then the
# command: TERM, then KILL after 10 s.
stop_daemon() {
  local dir=$1 name=$2
  local pidfile="$dir/$name.pid" suppid="$dir/$name.sup.pid"
  if [ -f "$suppid" ]; then
    terminate "$(cat "$suppid")" 50
    rm -f "$suppid"
  fi
  [ -f "$pidfile" ] || return 0
  terminate "$(cat "$pidfile")" 100
  rm -f "$pidfile"
}

# How often the supervisor of $2 (in state folder $1) restarted its command.
restarts_of() {
  cat "$1/$2.restarts" 2>/dev/null || echo 0
}

pid_of() {
  cat "$1/$2.pid" 2>/dev/null || true
}

# The Python venv of the fault harness and the NATS durability test (pymongo, nats-py,
# pinned in e2e/chaos/requirements.txt), outside the checkout like the Go tools; built
# once, and anew when the pins or the Python change. Prints the venv's python.
GITTIX_PY_VENV="${GITTIX_PY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/gittix/py-venv}"
py_venv() {
  local venv=$GITTIX_PY_VENV requirements="$GITTIX_ROOT/e2e/chaos/requirements.txt" python=${PYTHON:-python3} want
  want=$( {
    cat "$requirements"
    "$python" -c 'import sys; print(sys.executable, sys.version)'
  } | sha256sum | cut -c1-16)
  mkdir -p "$(dirname "$venv")"
  (
    # One installer at a time (two test runs at once share the venv).
    if command -v flock >/dev/null; then
      exec 9>"$venv.lock"
      flock 9
    fi
    if [ "$(cat "$venv/.gittix-stamp" 2>/dev/null)" != "$want" ]; then
      log "installing the harness's Python packages into $venv (once)"
      rm -rf "$venv"
      "$python" -m venv "$venv" >&2 || die "could not create the venv $venv"
      "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
        -r "$requirements" >&2 || die "pip could not install $requirements"
      echo "$want" >"$venv/.gittix-stamp"
    fi
  ) || exit 1
  echo "$venv/bin/python"
}

# The NATS users of a stack, from the committed permission model (infra/nats/permissions.json,
# generated from crates/common/src/bus_permissions.rs) with the stream ($2) and subject
# prefix ($3) this stack uses. A password per user is generated once per state folder into
# $1/<user> (mode 0600; never committed, kept across restarts). Prints nats.conf's
# `authorization` block.
nats_authorization() {
  local dir=$1 stream=$2 prefix=$3 model="$GITTIX_ROOT/infra/nats/permissions.json" user
  mkdir -p "$dir"
  chmod 700 "$dir"
  for user in $(python3 -c 'import json, sys; print(" ".join(json.load(open(sys.argv[1]))["users"]))' "$model"); do
    [ -s "$dir/$user" ] || (umask 077 && head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$dir/$user")
  done
  python3 - "$model" "$dir" "$stream" "$prefix" <<'PY'
import json, sys
model_path, folder, stream, prefix = sys.argv[1:]
model = json.load(open(model_path))
# The model names the deployment's stream and prefix: each is one subject token.
swap = {model["stream"]: stream, model["prefix"]: prefix}
local = lambda subject: ".".join(swap.get(token, token) for token in subject.split("."))
users = [
    {
        "user": user,
        "password": open(f"{folder}/{user}").read().strip(),
        "permissions": {side: {"allow": [local(s) for s in allowed]} for side, allowed in rules.items()},
    }
    for user, rules in model["users"].items()
]
print("authorization: " + json.dumps({"users": users}, indent=2))
PY
}

# Ports of the private test servers (`make test`), apart from those of `make up`.
TEST_NATS_PORT=${TEST_NATS_PORT:-14322}
TEST_MONGO_PORT=${TEST_MONGO_PORT:-27318}
TEST_REDIS_PORT=${TEST_REDIS_PORT:-16479}

# The services of the stack: name and default port. `expiration` and `notifications` serve
# only health and metrics.
# shellcheck disable=SC2034 # read by stack.sh
GITTIX_SERVICES=(auth:4001 tickets:4002 orders:4003 payments:4004 expiration:4006 notifications:4007 client:4005)

# Ports of a private stack (chaos, restart, bench) from one base: nginx at BASE, the
# services at BASE+1..BASE+7, NATS at +10 (monitoring +11), Mongo +12, Redis +13, Mailpit's
# SMTP +14 and web UI +15; second replicas REPLICA_PORT_STEP (50) further. The servers are
# always the stack's own.
private_stack_ports() {
  local base=$1
  export HTTP_PORT=$base AUTH_PORT=$((base + 1)) TICKETS_PORT=$((base + 2)) ORDERS_PORT=$((base + 3)) \
    PAYMENTS_PORT=$((base + 4)) CLIENT_PORT=$((base + 5)) EXPIRATION_PORT=$((base + 6)) NOTIFICATIONS_PORT=$((base + 7))
  export NATS_PORT=$((base + 10)) NATS_MONITOR_PORT=$((base + 11)) MONGO_PORT=$((base + 12)) REDIS_PORT=$((base + 13))
  export MAIL_SMTP_PORT=$((base + 14)) MAIL_UI_PORT=$((base + 15))
  export REPLICA_PORT_STEP=${REPLICA_PORT_STEP:-50}
  unset STRIPE_SECRET_KEY MONGO_URL NATS_URL REDIS_URL JWT_PRIVATE_KEY JWT_PUBLIC_KEYS
  # Emails go to the stack's own Mailpit, never through a transport of the caller's.
  unset MAIL_TRANSPORT SENDGRID_API_KEY PUBLIC_URL
  load_from_one_address
}

# Every user of a test or benchmark stack comes from 127.0.0.1: raise the per-address and
# per-user limits (unless set) so they measure the system, not the abuse limits.
load_from_one_address() {
  export SIGNIN_PER_MINUTE=${SIGNIN_PER_MINUTE:-1000000} SIGNUP_PER_MINUTE=${SIGNUP_PER_MINUTE:-1000000}
  export LISTINGS_PER_MINUTE=${LISTINGS_PER_MINUTE:-1000000}
  export MAX_ACTIVE_ORDERS_PER_USER=${MAX_ACTIVE_ORDERS_PER_USER:-1000}
  export HASH_QUEUE=${HASH_QUEUE:-1000}
}

# Dies unless every service binary is in BIN_DIR; $1 names the caller.
require_service_binaries() {
  local bin
  for bin in auth tickets orders payments expiration client; do
    [ -x "$BIN_DIR/$bin" ] || die "$1: $BIN_DIR/$bin is missing; build the services first (cargo build --workspace --bins)"
  done
}
