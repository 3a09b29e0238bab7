#!/usr/bin/env bash
# Starts or stops private instances of the servers GitTix needs, in a state folder of
# their own and on ports of their own, so they never touch servers already running:
#   NATS with JetStream, Redis, MongoDB (a `mongod` on the PATH, else the FerretDB
#   stand-in), and Mailpit (SMTP in, its API and web UI out). NATS_URL, REDIS_URL or
#   MONGO_URL, when set, name a server of your own instead, which is then used as it is
#   (CI uses real service containers this way).
# Writes "$STATE/servers.env" (MONGO_URL, NATS_URL, REDIS_URL, NATS_MONITOR_URL,
#   MAIL_SMTP_URL, MAILPIT_URL) for the callers.
#
# usage: servers.sh start|stop STATE_DIR
# ports: NATS_PORT, MONGO_PORT, REDIS_PORT (defaults 4222+10000, … chosen to avoid clashes),
#   NATS_MONITOR_PORT (NATS_PORT+1: the monitoring endpoint, /jsz, /varz, /healthz),
#   MAILPIT_SMTP_PORT (11025) and MAILPIT_UI_PORT (18025: API and web UI)
# NATS_SYNC_INTERVAL (always): how often JetStream fsyncs its file store. `always` syncs
#   every write before the publisher's acknowledgement, so an event JetStream acknowledged
#   survives a SIGKILL of nats-server (or of the machine); the server's default, 2 min,
#   does not (scripts/test.d/nats-durability.sh checks it).
# NATS_AUTH (0): 1 gives NATS the users of the permission model (infra/nats/permissions.json,
#   for EVENTS_STREAM and EVENTS_SUBJECT_PREFIX): one per service and `admin`, each with a
#   password generated once into STATE/nats-users/<user>; servers.env then names that
#   folder as NATS_USERS_DIR. The stack runs this way; the test servers of `cargo test`
#   stay open (each test has a stream and prefix of its own).
# Every server runs under a supervisor (lib.sh start_daemon) that restarts it when it dies.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

cmd=${1:-}
state=${2:-}
[ -n "$cmd" ] && [ -n "$state" ] || die "usage: servers.sh start|stop STATE_DIR"
mkdir -p "$state"
state=$(cd "$state" && pwd)

NATS_PORT=${NATS_PORT:-14222}
NATS_MONITOR_PORT=${NATS_MONITOR_PORT:-$((NATS_PORT + 1))}
NATS_SYNC_INTERVAL=${NATS_SYNC_INTERVAL:-always}
MONGO_PORT=${MONGO_PORT:-27217}
REDIS_PORT=${REDIS_PORT:-16379}
MAILPIT_SMTP_PORT=${MAILPIT_SMTP_PORT:-11025}
MAILPIT_UI_PORT=${MAILPIT_UI_PORT:-18025}

start() {
  local mongo_url nats_url redis_url nats_monitor_url="" nats_users_dir=""

  if [ -n "${NATS_URL:-}" ]; then
    nats_url=$NATS_URL
  else
    nats_url="nats://127.0.0.1:$NATS_PORT"
    nats_monitor_url="http://127.0.0.1:$NATS_MONITOR_PORT"
    [ "${NATS_AUTH:-0}" = 1 ] && nats_users_dir="$state/nats-users"
    start_nats
  fi
  if [ -n "${REDIS_URL:-}" ]; then
    redis_url=$REDIS_URL
  else
    redis_url="redis://127.0.0.1:$REDIS_PORT"
    start_redis
  fi
  if [ -n "${MONGO_URL:-}" ]; then
    mongo_url=$MONGO_URL
  else
    # The FerretDB stand-in serializes writes in front of FerretDB, so any number of
    # connections and processes is safe (docs/STORE-CONTRACT.md); no pool limit is needed.
    mongo_url="mongodb://127.0.0.1:$MONGO_PORT"
    start_mongo
  fi
  start_mailpit

  cat >"$state/servers.env" <<ENV
MONGO_URL=$mongo_url
NATS_URL=$nats_url
REDIS_URL=$redis_url
NATS_MONITOR_URL=$nats_monitor_url
NATS_USERS_DIR=$nats_users_dir
MAIL_SMTP_URL=smtp://127.0.0.1:$MAILPIT_SMTP_PORT
MAILPIT_URL=http://127.0.0.1:$MAILPIT_UI_PORT
ENV
}

start_nats() {
  if ! port_open "$NATS_PORT" || [ -z "$(pid_of "$state" nats)" ]; then
    port_open "$NATS_PORT" && die "port $NATS_PORT (NATS_PORT) is taken by another process"
    port_open "$NATS_MONITOR_PORT" && die "port $NATS_MONITOR_PORT (NATS_MONITOR_PORT) is taken by another process"
    mkdir -p "$state/nats"
    # The JetStream settings that have no command-line flag live in a generated config file.
    install -m 600 /dev/null "$state/nats.conf"
    cat >"$state/nats.conf" <<CONF
# Written by scripts/servers.sh; the command line adds the ports and the store folder.
jetstream {
  sync_interval: $NATS_SYNC_INTERVAL
}
CONF
    if [ -n "$nats_users_dir" ]; then
      nats_authorization "$nats_users_dir" "${EVENTS_STREAM:-GITTIX}" "${EVENTS_SUBJECT_PREFIX:-gittix}" >>"$state/nats.conf" \
        || die "could not render the NATS users from infra/nats/permissions.json"
    fi
    start_daemon "$state" nats nats-server --config "$state/nats.conf" --jetstream --store_dir "$state/nats" \
      --addr 127.0.0.1 --port "$NATS_PORT" --http_port "$NATS_MONITOR_PORT" --server_name gittix-local
  fi
  wait_for_port nats "$NATS_PORT" "$state"
}

start_redis() {
  if ! port_open "$REDIS_PORT" || [ -z "$(pid_of "$state" redis)" ]; then
    port_open "$REDIS_PORT" && die "port $REDIS_PORT (REDIS_PORT) is taken by another process"
    mkdir -p "$state/redis"
    start_daemon "$state" redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" \
      --dir "$state/redis" --appendonly yes --save "" --daemonize no
  fi
  wait_for_port redis "$REDIS_PORT" "$state"
}

start_mongo() {
    if ! port_open "$MONGO_PORT" || [ -z "$(pid_of "$state" mongo)" ]; then
      port_open "$MONGO_PORT" && die "port $MONGO_PORT (MONGO_PORT) is taken by another process"
      mkdir -p "$state/mongo"
      if command -v mongod >/dev/null; then
        start_daemon "$state" mongo mongod --dbpath "$state/mongo" --bind_ip 127.0.0.1 --port "$MONGO_PORT"
      else
        command -v ferretdb >/dev/null || die "no MongoDB: run scripts/install.sh, or set MONGO_URL"
        start_daemon "$state" mongo ferretdb -listen "127.0.0.1:$MONGO_PORT" -dir "$state/mongo"
      fi
    fi
    wait_for_port mongo "$MONGO_PORT" "$state"
}

# Mailpit keeps its messages in memory (no --database): tests tell theirs apart by
# recipient, and a restart starts empty.
start_mailpit() {
  if ! port_open "$MAILPIT_SMTP_PORT" || [ -z "$(pid_of "$state" mailpit)" ]; then
    port_open "$MAILPIT_SMTP_PORT" && die "port $MAILPIT_SMTP_PORT (MAILPIT_SMTP_PORT) is taken by another process"
    port_open "$MAILPIT_UI_PORT" && die "port $MAILPIT_UI_PORT (MAILPIT_UI_PORT) is taken by another process"
    command -v mailpit >/dev/null || die "no Mailpit: run scripts/install.sh"
    start_daemon "$state" mailpit mailpit --smtp "127.0.0.1:$MAILPIT_SMTP_PORT" \
      --listen "127.0.0.1:$MAILPIT_UI_PORT" --max 20000 \
      --disable-version-check
  fi
  wait_for_port mailpit "$MAILPIT_UI_PORT" "$state"
}

stop() {
  for name in mailpit nats redis mongo; do
    stop_daemon "$state" "$name"
  done
  rm -f "$state/servers.env"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) die "usage: servers.sh start|stop STATE_DIR" ;;
esac
