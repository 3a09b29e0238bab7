#!/usr/bin/env bash
# Runs the whole GitTix stack on this machine: private NATS, Redis, MongoDB and Mailpit
# (scripts/servers.sh), every service binary that has been built, and nginx in front of
# them as the single origin, routed by infra/routes.tsv. Mailpit is the mail server: the
# notifications service sends every email to it over SMTP, and its web UI and API (at
# http://localhost:MAIL_UI_PORT) show what was sent; nothing leaves the machine.
#
# usage: stack.sh start|stop|run|status STATE_DIR
#   run     start, print the URL and a status table, report restarts as they happen, and
#           stop everything on Ctrl-C or SIGTERM
#   status  the status table of a running stack (pids, restarts)
# Settings (environment): HTTP_PORT (8080), BIN_DIR (target/release), <SERVICE>_PORT
# (AUTH_PORT=4001, …, NOTIFICATIONS_PORT=4007), NATS_PORT, NATS_MONITOR_PORT, MONGO_PORT,
# REDIS_PORT, MAIL_SMTP_PORT (1025: Mailpit's SMTP), MAIL_UI_PORT (8025: its web UI and API),
# PUBLIC_URL (http://localhost:HTTP_PORT: the origin of the links in emails),
# JWT_PRIVATE_KEY and JWT_PUBLIC_KEYS (both, or neither: then a key pair is generated once
# per state folder in keys/), EXPIRATION_WINDOW_SECONDS, PAYMENT_GRACE_SECONDS,
# LOG_FORMAT, RUST_LOG, READY_TIMEOUT (60 s per process at start-up). Every other variable
# of infra/service-env.tsv (limits such as SIGNIN_PER_MINUTE, ADMIN_EMAILS) passes through
# from the environment to the services.
# REPLICAS (2): processes of each of auth, tickets, orders, payments, expiration and
#   notifications, as Kubernetes runs them; the replica i (1-based) of a service listens on
#   its port + (i-1) * REPLICA_PORT_STEP (100) and nginx balances over all of them. Safe on
#   the FerretDB stand-in, whose front serializes writes (docs/STORE-CONTRACT.md).
# notifications runs once built (like every service) and sends through Mailpit
#   (MAIL_TRANSPORT=smtp://127.0.0.1:MAIL_SMTP_PORT unless MAIL_TRANSPORT is set), its Redis
#   keys under NOTIFICATIONS_KEY_PREFIX (gittix:notifications), its Mongo database
#   `notifications`.
# NATS runs with the permission model of a deployment (infra/nats/permissions.json): each
#   service connects as its own user (NATS_USER, NATS_PASSWORD_FILE), whose password is
#   generated once per state folder in nats-users/, and may publish only its own events and
#   consume only those it listens to. With NATS_URL (a server of your own), its users are
#   yours to set: NATS_USER, NATS_PASSWORD pass through to every service.
# Every process (servers, services, nginx) runs under a supervisor that restarts it with
# capped backoff when it dies, as Kubernetes would (lib.sh start_daemon); each restart is
# logged in logs/supervisor.log and the process's log, and counted in the status table.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

cmd=${1:-}
state=${2:-}
[ -n "$cmd" ] && [ -n "$state" ] || die "usage: stack.sh start|stop|run|status STATE_DIR"
mkdir -p "$state/logs"
state=$(cd "$state" && pwd)
BIN_DIR=${BIN_DIR:-$GITTIX_ROOT/target/release}
HTTP_PORT=${HTTP_PORT:-8080}
HTTP_HOST=${HTTP_HOST:-127.0.0.1}
REPLICAS=${REPLICAS:-2}
REPLICA_PORT_STEP=${REPLICA_PORT_STEP:-100}
MAIL_SMTP_PORT=${MAIL_SMTP_PORT:-1025}
MAIL_UI_PORT=${MAIL_UI_PORT:-8025}
case "$REPLICAS" in '' | *[!0-9]* | 0) die "REPLICAS must be a whole number of 1 or more" ;; esac
# The services that run as REPLICAS processes (the client stays one).
REPLICATED_SERVICES=" auth tickets orders payments expiration notifications "

service_port() {
  local name=$1 default=$2 var
  var="$(echo "$name" | tr '[:lower:]' '[:upper:]')_PORT"
  echo "${!var:-$default}"
}

# The processes of a service, one "process-name port" line each: the first replica is
# named after the service, the others <service>.<i>.
instances() {
  local name=$1 port=$2 count=1 i
  case "$REPLICATED_SERVICES" in *" $name "*) count=$REPLICAS ;; esac
  echo "$name $port"
  for ((i = 2; i <= count; i++)); do
    echo "$name.$i $((port + (i - 1) * REPLICA_PORT_STEP))"
  done
}

# Every service process of the stack, "service process-name port" per line.
all_instances() {
  local entry name
  for entry in "${GITTIX_SERVICES[@]}"; do
    name=${entry%%:*}
    instances "$name" "$(service_port "$name" "${entry#*:}")" | sed "s/^/$name /"
  done
}

# The session keys: auth signs with the private key, every service verifies with the
# public ones. Generated once per state folder (sessions survive restarts, and nothing
# secret is in the repo) unless both are given.
session_keys() {
  if [ -n "${JWT_PRIVATE_KEY:-}" ] && [ -n "${JWT_PUBLIC_KEYS:-}" ]; then
    return
  fi
  [ -s "$state/keys/jwt-private.pem" ] || "$BIN_DIR/gittix" keygen "$state/keys" >/dev/null \
    || die "could not generate session keys with $BIN_DIR/gittix"
  JWT_PRIVATE_KEY=$(cat "$state/keys/jwt-private.pem")
  JWT_PUBLIC_KEYS=$(cat "$state/keys/jwt-public.pem")
}

render_nginx_conf() {
  local conf="$state/nginx/nginx.conf" prefix svc port upstream entry
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
  # The path without its query string, and no Referer: a password reset link carries its
  # token in the query (/reset-password?token=…) and the reset form's page in the Referer.
  log_format gittix '\$remote_addr - \$remote_user [\$time_local] '
                    '"\$request_method \$uri \$server_protocol" \$status \$body_bytes_sent '
                    '"\$http_user_agent" \$request_time';
  access_log $state/logs/nginx-access.log gittix;
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
  proxy_set_header X-Forwarded-Host \$http_host;
  default_type application/json;
CONF
    # One upstream per service, listing all its replicas.
    for entry in "${GITTIX_SERVICES[@]}"; do
      svc=${entry%%:*}
      [ -x "$BIN_DIR/$svc" ] || continue
      echo "  upstream $svc {"
      instances "$svc" "$(service_port "$svc" "${entry#*:}")" | while read -r _ port; do
        echo "    server 127.0.0.1:$port;"
      done
      echo "  }"
    done
    cat <<CONF
  server {
    listen $HTTP_HOST:$HTTP_PORT;
CONF
    # A ticket's live stream (Server-Sent Events): each message passed on at once, and the
    # connection kept past the default 60 s read timeout (the service also sends a comment
    # every 15 s and X-Accel-Buffering: no). Before the prefixes: the first regex wins.
    if [ -x "$BIN_DIR/tickets" ]; then
      cat <<'CONF'
    location ~ ^/api/tickets/[^/]+/events$ {
      proxy_pass http://tickets;
      proxy_buffering off;
      proxy_cache off;
      proxy_read_timeout 1h;
    }
CONF
    fi
    while IFS=$'\t' read -r prefix svc; do
      case "$prefix" in ''|'#'*) continue ;; esac
      if [ "$prefix" = "/" ]; then
        echo "    location / {"
      else
        echo "    location ~ ^${prefix}(/|\$) {"
      fi
      if [ -x "$BIN_DIR/$svc" ]; then
        echo "      proxy_pass http://$svc;"
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
  local name proc port payment_gateway=simulated key_env nats_env
  session_keys
  # Real Stripe when keys are given (STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET pass through
  # from the environment); otherwise the simulated gateway, which says so loudly.
  [ -n "${STRIPE_SECRET_KEY:-}" ] && payment_gateway=stripe
  # shellcheck disable=SC1091
  source "$state/servers.env"
  while read -r name proc port; do
    [ -x "$BIN_DIR/$name" ] || continue
    # Only auth may sign sessions.
    key_env=(-u JWT_PRIVATE_KEY)
    [ "$name" = auth ] && key_env=(JWT_PRIVATE_KEY="$JWT_PRIVATE_KEY")
    # Each service as its own NATS user (the client uses no bus: none).
    nats_env=()
    if [ -n "${NATS_USERS_DIR:-}" ] && [ -f "$NATS_USERS_DIR/$name" ]; then
      nats_env=(NATS_USER="$name" NATS_PASSWORD="" NATS_PASSWORD_FILE="$NATS_USERS_DIR/$name")
    fi
    start_daemon "$state" "$proc" env "${key_env[@]}" "${nats_env[@]}" \
      APP_ENV="${APP_ENV:-development}" HOST=127.0.0.1 PORT="$port" \
      JWT_PUBLIC_KEYS="$JWT_PUBLIC_KEYS" COOKIE_SECURE="${COOKIE_SECURE:-false}" \
      MONGO_URL="$MONGO_URL" MONGO_DB="$name" NATS_URL="$NATS_URL" REDIS_URL="$REDIS_URL" \
      EVENTS_STREAM="${EVENTS_STREAM:-GITTIX}" EVENTS_SUBJECT_PREFIX="${EVENTS_SUBJECT_PREFIX:-gittix}" \
      EXPIRATION_WINDOW_SECONDS="${EXPIRATION_WINDOW_SECONDS:-900}" PAYMENT_GRACE_SECONDS="${PAYMENT_GRACE_SECONDS:-30}" \
      PAYMENT_GATEWAY="${PAYMENT_GATEWAY:-$payment_gateway}" \
      MAIL_TRANSPORT="${MAIL_TRANSPORT:-$MAIL_SMTP_URL}" PUBLIC_URL="${PUBLIC_URL:-http://localhost:$HTTP_PORT}" \
      NOTIFICATIONS_KEY_PREFIX="${NOTIFICATIONS_KEY_PREFIX:-gittix:notifications}" \
      AUTH_URL="http://127.0.0.1:$(service_port auth 4001)" TICKETS_URL="http://127.0.0.1:$(service_port tickets 4002)" \
      ORDERS_URL="http://127.0.0.1:$(service_port orders 4003)" PAYMENTS_URL="http://127.0.0.1:$(service_port payments 4004)" \
      "$BIN_DIR/$name"
  done < <(all_instances)
  while read -r name proc port; do
    [ -x "$BIN_DIR/$name" ] || continue
    wait_for_http "$proc" "http://127.0.0.1:$port/readyz" "$state"
  done < <(all_instances)
}

start() {
  local conf port
  # Mailpit's ports are the stack's own: say which setting moves them (a second `make up`,
  # or a Mailpit of your own, holds them).
  if [ -z "$(pid_of "$state" mailpit)" ]; then
    for port in MAIL_SMTP_PORT MAIL_UI_PORT; do
      port_open "${!port}" && die "port ${!port} ($port) is taken by another process; set $port to another port"
    done
  fi
  NATS_PORT=${NATS_PORT:-14222} MONGO_PORT=${MONGO_PORT:-27217} REDIS_PORT=${REDIS_PORT:-16379} \
    MAILPIT_SMTP_PORT=$MAIL_SMTP_PORT MAILPIT_UI_PORT=$MAIL_UI_PORT NATS_AUTH=1 \
    "$GITTIX_ROOT/scripts/servers.sh" start "$state"
  start_services
  conf=$(render_nginx_conf)
  if [ -z "$(pid_of "$state" nginx)" ] && port_open "$HTTP_PORT"; then
    die "port $HTTP_PORT (HTTP_PORT) is taken by another process"
  fi
  nginx -t -q -c "$conf" -p "$state/nginx" 2>>"$state/logs/nginx-error.log" || die "nginx rejected $conf"
  start_daemon "$state" nginx nginx -c "$conf" -p "$state/nginx"
  wait_for_port nginx "$HTTP_PORT" "$state"
}

status() {
  local name proc port pid
  printf '\n  %-16s %-7s %-9s %s\n' PROCESS PORT RESTARTS STATUS
  while read -r name proc port; do
    if [ ! -x "$BIN_DIR/$name" ]; then
      printf '  %-16s %-7s %-9s %s\n' "$proc" "-" "-" "not built yet"
      continue
    fi
    row "$proc" "$port"
  done < <(all_instances)
  # The servers servers.sh started here (not those given as NATS_URL and the like).
  [ -f "$state/nats.restarts" ] && row nats "${NATS_PORT:-14222}"
  [ -f "$state/redis.restarts" ] && row redis "${REDIS_PORT:-16379}"
  [ -f "$state/mongo.restarts" ] && row mongo "${MONGO_PORT:-27217}"
  [ -f "$state/mailpit.restarts" ] && row mailpit "$MAIL_UI_PORT"
  row nginx "$HTTP_PORT"
  printf '\n  routes: infra/routes.tsv; logs (restarts in supervisor.log): %s/logs\n\n' "$state"
}

# One line of the status table: a process of the state folder and its port.
row() {
  local proc=$1 port=$2 pid state_text
  pid=$(pid_of "$state" "$proc")
  if [ -n "$pid" ] && alive "$pid"; then
    state_text="running (pid $pid)"
  elif [ -f "$state/$proc.sup.pid" ] && alive "$(cat "$state/$proc.sup.pid")"; then
    state_text="restarting"
  else
    state_text="stopped"
  fi
  printf '  %-16s %-7s %-9s %s\n' "$proc" "$port" "$(restarts_of "$state" "$proc")" "$state_text"
}

stop() {
  local file proc
  stop_daemon "$state" nginx
  # Every service process the folder has a pid file of, whatever REPLICAS is now.
  for file in "$state"/*.pid; do
    [ -e "$file" ] || continue
    proc=$(basename "$file" .pid)
    proc=${proc%.sup}
    case "$proc" in nats | redis | mongo | mailpit | nginx) continue ;; esac
    stop_daemon "$state" "$proc"
  done
  "$GITTIX_ROOT/scripts/servers.sh" stop "$state"
}

# Lines in file $1 (0 when there is none).
lines_of() {
  if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi
}

# While `run` waits: says so whenever a supervisor restarted something.
watch_restarts() {
  local seen now
  seen=$(lines_of "$state/logs/supervisor.log")
  while true; do
    sleep 2 &
    wait $!
    now=$(lines_of "$state/logs/supervisor.log")
    if [ "$now" -gt "$seen" ]; then
      sed -n "$((seen + 1)),${now}p" "$state/logs/supervisor.log" | while read -r line; do warn "$line"; done
      seen=$now
    fi
  done
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  run)
    # Whatever ends this script (Ctrl-C, SIGTERM, a failed start) stops everything it began.
    trap 'echo; log "stopping GitTix"; stop' EXIT
    trap 'exit 0' INT TERM
    start
    status
    printf '\033[1;32mGitTix is up at http://localhost:%s\033[0m  (Ctrl-C stops it)\n' "$HTTP_PORT"
    printf '  emails: http://localhost:%s  (Mailpit: every email the stack sends, none leaves)\n' "$MAIL_UI_PORT"
    watch_restarts
    ;;
  *) die "usage: stack.sh start|stop|run|status STATE_DIR" ;;
esac
