#!/usr/bin/env bash
# The fault harness (`make chaos`; a short run in `make test` through scripts/test.d/chaos.sh).
# Starts the whole stack as `make up` does (scripts/stack.sh, every process supervised) on
# private ports with a short expiry window and the simulated gateway, drives sellers and
# buyers through nginx while it SIGKILLs (and SIGTERMs) random services and servers, waits
# for the system to settle, and checks the invariants (e2e/chaos/chaos.py says which).
# Last line: `chaos: N passed, M failed`; exits non-zero on any failure.
#
# Settings (environment):
#   CHAOS_SECONDS (120)   how long load and faults run      SEED / CHAOS_SEED  replay a run
#   CHAOS_FAULT_EVERY (5) mean seconds between faults       CHAOS_SETTLE (180) most seconds to converge
#   CHAOS_WINDOW (6)      EXPIRATION_WINDOW_SECONDS          CHAOS_ALLOWANCE (35) created past the window
#   CHAOS_PAYMENT_GRACE (3) PAYMENT_GRACE_SECONDS (the simulated gateway answers at once)
#   EVENT_ACK_WAIT_MS (1000) redelivery of what a killed replica held: under the grace
#   CHAOS_SELLERS (3), CHAOS_BUYERS (8), CHAOS_TERM (0.25: share of graceful SIGTERM restarts)
#   CHAOS_PORT_BASE (20400: ports base..base+19), BIN_DIR (target/release), REPLICAS (2)
#   CHAOS_STATE (.gittix/chaos; made anew each run, kept afterwards with every log)
#   CHAOS_TARGETS (all): the services and servers to kill, e.g. "tickets expiration nats"
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

state=${CHAOS_STATE:-$GITTIX_ROOT/.gittix/chaos}
base=${CHAOS_PORT_BASE:-20400}
export BIN_DIR="${BIN_DIR:-$GITTIX_ROOT/target/release}"
private_stack_ports "$base"
export EXPIRATION_WINDOW_SECONDS=${CHAOS_WINDOW:-6} PAYMENT_GRACE_SECONDS=${CHAOS_PAYMENT_GRACE:-3} PAYMENT_GATEWAY=simulated
# A payment held by a killed orders replica must reach the other one within the grace.
export EVENT_ACK_WAIT_MS=${EVENT_ACK_WAIT_MS:-1000}
export EVENTS_STREAM=GITTIX EVENTS_SUBJECT_PREFIX=gittix
require_service_binaries chaos
python=$(py_venv)
stop() { "$GITTIX_ROOT/scripts/stack.sh" stop "$state" >/dev/null 2>&1 || true; }
trap stop EXIT
stop
rm -rf "$state"
log "chaos: starting the stack in $state (logs in $state/logs)"
if ! "$GITTIX_ROOT/scripts/stack.sh" start "$state"; then
  echo "  FAIL  the stack starts"
  echo "chaos: 0 passed, 1 failed"
  exit 1
fi

# What to kill: every service process (each replica) and every server, with the port
# that tells it is back.
procs=""
for file in "$state"/*.pid; do
  name=$(basename "$file" .pid)
  case "$name" in *.sup | nginx) continue ;; esac
  case "$name" in
    nats) port=$NATS_PORT ;;
    redis) port=$REDIS_PORT ;;
    mongo) port=$MONGO_PORT ;;
    mailpit) port=$MAIL_SMTP_PORT ;;
    *)
      svc=${name%%.*} replica=1
      [ "$name" != "$svc" ] && replica=${name#*.}
      var="$(echo "$svc" | tr '[:lower:]' '[:upper:]')_PORT"
      port=$((${!var} + (replica - 1) * REPLICA_PORT_STEP))
      ;;
  esac
  if [ -n "${CHAOS_TARGETS:-}" ] && [[ " $CHAOS_TARGETS " != *" ${name%%.*} "* ]]; then
    continue
  fi
  procs="$procs $name:$port"
done

set -a
# shellcheck disable=SC1091
source "$state/servers.env"
set +a
# The harness reads the dead letters as the stack's operator (the `admin` NATS user).
nats_admin=()
[ -n "${NATS_USERS_DIR:-}" ] && nats_admin=(NATS_USER=admin NATS_PASSWORD_FILE="$NATS_USERS_DIR/admin")
env "${nats_admin[@]}" CHAOS_URL="http://127.0.0.1:$HTTP_PORT" CHAOS_STATE="$state" CHAOS_PROCS="$procs" \
  CHAOS_SEED="${SEED:-${CHAOS_SEED:-}}" CHAOS_WINDOW="$EXPIRATION_WINDOW_SECONDS" \
  "$python" "$GITTIX_ROOT/e2e/chaos/chaos.py" 2>&1 | tee "$state/chaos.out"
status=${PIPESTATUS[0]}
[ "$status" -eq 0 ] || warn "chaos found failures; every log is in $state/logs (supervisor.log lists the restarts)"
exit "$status"
