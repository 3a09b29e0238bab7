#!/usr/bin/env bash
# `make test`: the newcomer's path (issue 12). `make up`, use the site, Ctrl-C, `make up`
# again on the same state folder: every service must come back ready with the data.
# Runs scripts/stack.sh run as make up does, on private ports, stops it with the signal
# handling Ctrl-C goes through (SIGTERM: the same trap), starts it again, and checks with
# e2e/chaos/restart.py. Also checks that the stop left no process of the stack behind.
# Settings: BIN_DIR (target/debug), RESTART_PORT_BASE (20500: ports base..base+19).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"

state="$root/.gittix/restart"
base=${RESTART_PORT_BASE:-20500}
export BIN_DIR="${BIN_DIR:-$root/target/debug}"
private_stack_ports "$base"
export PAYMENT_GATEWAY=simulated READY_TIMEOUT=${READY_TIMEOUT:-40}
unset EVENTS_STREAM EVENTS_SUBJECT_PREFIX
url="http://127.0.0.1:$HTTP_PORT"
passed=0 failed=0
check() {
  if [ "$2" = 0 ]; then
    passed=$((passed + 1)); echo "  ok    $1"
  else
    failed=$((failed + 1)); echo "  FAIL  $1"
  fi
}

for bin in auth tickets orders payments expiration client; do
  [ -x "$BIN_DIR/$bin" ] || die "restart: $BIN_DIR/$bin is missing; run cargo build --workspace --bins"
done
runner=""
cleanup() {
  [ -n "$runner" ] && kill -TERM "$runner" 2>/dev/null && wait "$runner" 2>/dev/null
  "$root/scripts/stack.sh" stop "$state" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
rm -rf "$state"
mkdir -p "$state"

# Starts `stack.sh run` in the background; 0 once it says it is up, 1 if it exited first.
up() {
  local out="$state/run-$1.out" tries=0
  : >"$out"
  "$root/scripts/stack.sh" run "$state" >"$out" 2>&1 &
  runner=$!
  until grep -q 'GitTix is up' "$out"; do
    if ! kill -0 "$runner" 2>/dev/null; then
      wait "$runner" 2>/dev/null || true
      runner=""
      sed 's/^/    | /' "$out" | tail -n 8
      return 1
    fi
    tries=$((tries + 1))
    [ "$tries" -gt 1200 ] && return 1
    sleep 0.1
  done
}

# Stops it as Ctrl-C does and checks that no process of the stack (nor a supervisor) is
# left running.
down() {
  local pids="" pid left="" file
  for file in "$state"/*.pid; do
    [ -e "$file" ] && pids="$pids $(cat "$file")"
  done
  kill -TERM "$runner"
  wait "$runner" 2>/dev/null || true
  runner=""
  for pid in $pids; do
    if alive "$pid"; then
      left="$left $pid ($(ps -o comm= -p "$pid" 2>/dev/null || echo '?'))"
    fi
  done
  if [ -z "$left" ]; then
    check "the stop left nothing running" 0
  else
    check "the stop left nothing running (still running:$left)" 1
  fi
}

up first; check "the stack starts on a new state folder" $?
status=0
python3 "$root/e2e/chaos/restart.py" create "$url" "$state/facts.json" | sed 's/^/  /' || status=1
check "data made through nginx (restart-create)" "$status"
down
if up second; then
  check "every service is ready again on the same state folder" 0
  status=0
  python3 "$root/e2e/chaos/restart.py" verify "$url" "$state/facts.json" | sed 's/^/  /' || status=1
  check "the data is still there (restart-verify)" "$status"
  down
else
  check "every service is ready again on the same state folder" 1
  for log in "$state"/logs/orders.log "$state"/logs/payments.log; do
    [ -s "$log" ] && grep -m1 -E 'Error|error' "$log" | sed "s|^|    $(basename "$log"): |" || true
  done
fi
echo "restart: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
