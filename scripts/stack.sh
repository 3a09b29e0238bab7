#!/usr/bin/env bash
# Runs the whole GitTix stack on this machine: private NATS, Redis and MongoDB
# (scripts/servers.sh), every service binary that has been built, and nginx in front of
# them as the single origin, routed by infra/routes.tsv.
#
# usage: stack.sh start|stop|run STATE_DIR
#   run   start, print the URL and a status table, stop everything on Ctrl-C or SIGTERM
# Settings (environment): HTTP_PORT (8080), BIN_DIR (target/release), <SERVICE>_PORT
# (AUTH_PORT=4001, …), NATS_PORT, MONGO_PORT, REDIS_PORT, JWT_KEY (generated and kept in
# the state folder when unset), EXPIRATION_WINDOW_SECONDS, LOG_FORMAT, RUST_LOG.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

cmd=${1:-}
state=${2:-}
[ -n "$cmd" ] && [ -n "$state" ] || die "usage: stack.sh start|stop|run STATE_DIR"
mkdir -p "$state/logs"
state=$(cd "$state" && pwd)
BIN_DIR=${BIN_DIR:-$GITTIX_ROOT/target/release}
HTTP_PORT=${HTTP_PORT:-8080}
HTTP_HOST=${HTTP_HOST:-127.0.0.1}

service_port() {
  local name=$1 default=$2 var
  var="$(echo "$name" | tr '[:lower:]' '[:upper:]')_PORT"
  echo "${!var:-$default}"
}

jwt_key() {
  if [ -n "${JWT_KEY:-}" ]; then
    echo "$JWT_KEY"
    return
  fi
  # A random key per state folder: sessions survive restarts, and nothing secret is in the repo.
  [ -s "$state/jwt.key" ] || (umask 077 && head -c 48 /dev/urandom | base64 | tr -d '\n=/+' >"$state/jwt.key")
  cat "$state/jwt.key"
}

render_nginx_conf() {
  local conf="$state/nginx/nginx.conf" prefix svc port upstream
  mkdir -p "$state/nginx/tmp"
  {
    [ "$(id -u)" -eq 0 ] && echo "user root;"
    cat <<CONF
daemon off;
worker_processes 1;
pid $state/nginx/nginx.pid;
error_log $state/logs/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log $state/logs/nginx-access.log;
  client_body_temp_path $state/nginx/tmp/body;
  proxy_temp_path $state/nginx/tmp/proxy;
  fastcgi_temp_path $state/nginx/tmp/fastcgi;
  uwsgi_temp_path $state/nginx/tmp/uwsgi;
  scgi_temp_path $state/nginx/tmp/scgi;
  client_max_body_size 1m;
  proxy_http_version 1.1;
  proxy_set_header Host \$host;
  proxy_set_header X-Real-IP \$remote_addr;
  proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
  proxy_set_header X-Forwarded-Proto \$scheme;
  default_type application/json;
  server {
    listen $HTTP_HOST:$HTTP_PORT;
CONF
    while IFS=$'\t' read -r prefix svc; do
      case "$prefix" in ''|'#'*) continue ;; esac
      port=""
      for entry in "${GITTIX_SERVICES[@]}"; do
        [ "${entry%%:*}" = "$svc" ] && port=$(service_port "$svc" "${entry#*:}")
      done
      if [ "$prefix" = "/" ]; then
        echo "    location / {"
      else
        echo "    location ~ ^${prefix}(/|\$) {"
      fi
      if [ -x "$BIN_DIR/$svc" ]; then
        echo "      proxy_pass http://127.0.0.1:$port;"
      else
        upstream="{\"errors\":[{\"message\":\"The $svc service is not part of this build yet\"}]}"
        echo "      return 503 '$upstream';"
      fi
      echo "    }"
    done <"$GITTIX_ROOT/infra/routes.tsv"
    echo "  }"
    echo "}"
  } >"$conf"
  echo "$conf"
}

start_services() {
  local key name port pid payment_gateway=simulated
  key=$(jwt_key)
  # Real Stripe when keys are given (STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET pass through
  # from the environment); otherwise the simulated gateway, which says so loudly.
  [ -n "${STRIPE_SECRET_KEY:-}" ] && payment_gateway=stripe
  # shellcheck disable=SC1091
  source "$state/servers.env"
  for entry in "${GITTIX_SERVICES[@]}"; do
    name=${entry%%:*}
    port=$(service_port "$name" "${entry#*:}")
    [ -x "$BIN_DIR/$name" ] || continue
    start_daemon "$state" "$name" env \
      APP_ENV="${APP_ENV:-development}" HOST=127.0.0.1 PORT="$port" \
      JWT_KEY="$key" COOKIE_SECURE="${COOKIE_SECURE:-false}" \
      MONGO_URL="$MONGO_URL" MONGO_DB="$name" NATS_URL="$NATS_URL" REDIS_URL="$REDIS_URL" \
      EVENTS_STREAM="${EVENTS_STREAM:-GITTIX}" EVENTS_SUBJECT_PREFIX="${EVENTS_SUBJECT_PREFIX:-gittix}" \
      EXPIRATION_WINDOW_SECONDS="${EXPIRATION_WINDOW_SECONDS:-900}" \
      PAYMENT_GATEWAY="${PAYMENT_GATEWAY:-$payment_gateway}" \
      AUTH_URL="http://127.0.0.1:$(service_port auth 4001)" TICKETS_URL="http://127.0.0.1:$(service_port tickets 4002)" \
      ORDERS_URL="http://127.0.0.1:$(service_port orders 4003)" PAYMENTS_URL="http://127.0.0.1:$(service_port payments 4004)" \
      "$BIN_DIR/$name"
  done
  for entry in "${GITTIX_SERVICES[@]}"; do
    name=${entry%%:*}
    port=$(service_port "$name" "${entry#*:}")
    [ -x "$BIN_DIR/$name" ] || continue
    pid=$(pid_of "$state" "$name")
    wait_for_http "$name" "http://127.0.0.1:$port/readyz" "$pid"
  done
}

start() {
  local conf
  NATS_PORT=${NATS_PORT:-14222} MONGO_PORT=${MONGO_PORT:-27217} REDIS_PORT=${REDIS_PORT:-16379} \
    "$GITTIX_ROOT/scripts/servers.sh" start "$state"
  start_services
  conf=$(render_nginx_conf)
  if [ -z "$(pid_of "$state" nginx)" ] && port_open "$HTTP_PORT"; then
    die "port $HTTP_PORT (HTTP_PORT) is taken by another process"
  fi
  nginx -t -q -c "$conf" -p "$state/nginx" 2>>"$state/logs/nginx-error.log" || die "nginx rejected $conf"
  start_daemon "$state" nginx nginx -c "$conf" -p "$state/nginx"
  wait_for_port nginx "$HTTP_PORT" "$(pid_of "$state" nginx)"
}

status() {
  local name port pid
  printf '\n  %-12s %-7s %s\n' SERVICE PORT STATUS
  for entry in "${GITTIX_SERVICES[@]}"; do
    name=${entry%%:*}
    port=$(service_port "$name" "${entry#*:}")
    pid=$(pid_of "$state" "$name")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      printf '  %-12s %-7s %s\n' "$name" "$port" "ready (pid $pid)"
    else
      printf '  %-12s %-7s %s\n' "$name" "-" "not built yet"
    fi
  done
  printf '  %-12s %-7s %s\n\n' nginx "$HTTP_PORT" "routes: infra/routes.tsv; logs: $state/logs"
}

stop() {
  stop_daemon "$state" nginx
  for entry in "${GITTIX_SERVICES[@]}"; do
    stop_daemon "$state" "${entry%%:*}"
  done
  "$GITTIX_ROOT/scripts/servers.sh" stop "$state"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  run)
    trap 'echo; log "stopping GitTix"; stop; exit 0' INT TERM
    start
    status
    printf '\033[1;32mGitTix is up at http://localhost:%s\033[0m  (Ctrl-C stops it)\n' "$HTTP_PORT"
    while true; do sleep 3600 & wait $!; done
    ;;
  *) die "usage: stack.sh start|stop|run STATE_DIR" ;;
esac
