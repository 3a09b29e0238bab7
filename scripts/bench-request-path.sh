#!/usr/bin/env bash
# `make bench`, request-path part (issue 17): `GET /api/users/currentuser` with a valid
# session on one release auth process, and a bare axum handler answering a constant
# (services/auth/examples/bare_handler.rs), loaded alike with wrk one after the other.
# Auth logs as in production (LOG_FORMAT=json at the default level). Prints req/s, p99
# and the ratio; asserts nothing.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

state=$GITTIX_ROOT/.gittix/bench-request-path
BIN_DIR=${BIN_DIR:-$GITTIX_ROOT/target/release}
auth_port=${BENCH_AUTH_PORT:-20902}
bare_port=${BENCH_BARE_PORT:-20903}
duration=${BENCH_WRK_DURATION:-15s}
connections=${BENCH_WRK_CONNECTIONS:-32}
bare=$BIN_DIR/examples/bare_handler
command -v wrk >/dev/null || die "bench-request-path: wrk is missing (scripts/install.sh installs it)"
[ -x "$BIN_DIR/auth" ] && [ -x "$BIN_DIR/gittix" ] || die "bench-request-path: build first (cargo build --release --workspace --bins)"
[ -x "$bare" ] || die "bench-request-path: build the yardstick first (cargo build --release -p auth --example bare_handler)"
[ -f "$GITTIX_ROOT/.gittix/test/servers.env" ] || die "bench-request-path: start the test servers first (make test-servers)"
rm -rf "$state"
mkdir -p "$state"
"$BIN_DIR/gittix" keygen "$state/keys" >/dev/null
set -a
# shellcheck disable=SC1091
source "$GITTIX_ROOT/.gittix/test/servers.env"
set +a
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
JWT_PRIVATE_KEY=$(cat "$state/keys/jwt-private.pem") HOST=127.0.0.1 PORT=$auth_port MONGO_DB="bench_path_$$" \
  EVENTS_STREAM="BENCH_PATH_$$" EVENTS_SUBJECT_PREFIX="benchpath$$" LOG_FORMAT=json \
  "$BIN_DIR/auth" >"$state/auth.log" 2>&1 &
pids+=($!)
"$bare" "$bare_port" 2>"$state/bare.log" &
pids+=($!)
wait_for_http auth "http://127.0.0.1:$auth_port/readyz"
wait_for_http bare-handler "http://127.0.0.1:$bare_port/api/users/currentuser"

curl -fsS -o /dev/null -c "$state/cookies" -H 'content-type: application/json' \
  -d '{"email":"bench@example.com","password":"correct horse"}' "http://127.0.0.1:$auth_port/api/users/signup"
session=$(awk '$6 == "session" { print $7 }' "$state/cookies")
[ -n "$session" ] || die "bench-request-path: sign-up gave no session cookie"
curl -fsS -H "cookie: session=$session" "http://127.0.0.1:$auth_port/api/users/currentuser" | grep -q '"email"' \
  || die "bench-request-path: the session does not sign in"

# Prints "<req/s> <p99 ms>" of one wrk run.
load() {
  local out
  out=$(wrk -t2 -c"$connections" -d"$duration" --latency "$@")
  printf '%s\n' "$out" >>"$state/wrk.log"
  awk '/Requests\/sec/ { rps = $2 }
       $1 == "99%" { v = $2; ms = v + 0; if (v ~ /us$/) ms /= 1000; else if (v ~ /[^m]s$/) ms *= 1000; p99 = ms }
       END { printf "%.0f %.2f\n", rps, p99 }' <<<"$out"
}
echo "request-path-bench: $(nproc) cores, wrk -t2 -c$connections -d$duration, auth logging as in production (LOG_FORMAT=json)"
read -r auth_rps auth_p99 < <(load -H "cookie: session=$session" "http://127.0.0.1:$auth_port/api/users/currentuser")
read -r bare_rps bare_p99 < <(load "http://127.0.0.1:$bare_port/api/users/currentuser")
echo "request-path-bench: auth GET /api/users/currentuser (signed in): $auth_rps req/s, p99 $auth_p99 ms"
echo "request-path-bench: bare axum handler (constant):            $bare_rps req/s, p99 $bare_p99 ms"
awk -v a="$auth_rps" -v b="$bare_rps" 'BEGIN { printf "request-path-bench: currentuser / bare handler = %.2f\n", a / b }'
