# Shared helpers for the GitTix scripts. Source it; do not run it.
# shellcheck shell=bash

GITTIX_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Go-built tools live outside the checkout, so a fresh clone on the same machine reuses them.
GITTIX_TOOLS_DIR="${GITTIX_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gittix/bin}"
export PATH="$GITTIX_TOOLS_DIR:$PATH:/usr/sbin:/sbin"

# Pinned versions of what `scripts/install.sh` builds.
NATS_SERVER_VERSION="v2.12.4"

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
warn() { printf '\033[1;33mwarning:\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Waits until 127.0.0.1:$2 accepts connections; $1 names the server, $3 is its pid.
wait_for_port() {
  local name=$1 port=$2 pid=${3:-} tries=0
  until port_open "$port"; do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      die "$name exited during start-up; see its log"
    fi
    tries=$((tries + 1))
    [ "$tries" -gt 300 ] && die "$name did not open port $port within 30 s"
    sleep 0.1
  done
}

# Waits until an HTTP URL answers 200.
wait_for_http() {
  local name=$1 url=$2 pid=${3:-} tries=0
  until curl -fsS -o /dev/null "$url" 2>/dev/null; do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      die "$name exited during start-up; see its log"
    fi
    tries=$((tries + 1))
    [ "$tries" -gt 600 ] && die "$name was not ready at $url within 60 s"
    sleep 0.1
  done
}

# Starts a long-running command in the background, its output in a log file and its pid
# in "$dir/$name.pid". Does nothing when that pid is still alive.
start_daemon() {
  local dir=$1 name=$2; shift 2
  local pidfile="$dir/$name.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    return 0
  fi
  mkdir -p "$dir/logs"
  nohup "$@" >>"$dir/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
}

# Stops what start_daemon started: TERM, then KILL after 10 s.
stop_daemon() {
  local dir=$1 name=$2 pid tries=0
  local pidfile="$dir/$name.pid"
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && [ "$tries" -lt 100 ]; do
      sleep 0.1
      tries=$((tries + 1))
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

pid_of() {
  cat "$1/$2.pid" 2>/dev/null || true
}

# Ports of the private test servers (`make test`), apart from those of `make up`.
TEST_NATS_PORT=${TEST_NATS_PORT:-14322}
TEST_MONGO_PORT=${TEST_MONGO_PORT:-27318}
TEST_REDIS_PORT=${TEST_REDIS_PORT:-16479}

# The services of the stack: name and default port. `expiration` serves only health.
GITTIX_SERVICES=(auth:4001 tickets:4002 orders:4003 payments:4004 expiration:4006 client:4005)
