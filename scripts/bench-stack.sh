#!/usr/bin/env bash
# `make bench`, service part (issue 14): starts the whole stack as `make up` does
# (scripts/stack.sh, REPLICAS processes per service, simulated gateway) on private ports
# and a fresh state folder, then e2e/bench/stack_bench.py measures through nginx: listing
# p50/p99 after BENCH_TICKETS tickets, how long orders' replica takes to learn them,
# show-by-id throughput next to the driver's find by _id on the same server, the
# BENCH_BUYERS-buyer race for one ticket, and reserve -> ticket shows orderId. Prints
# figures; asserts nothing. Stops the stack afterwards (logs stay in the state folder).
#
# Settings (environment), defaults sized for a 2-core machine:
BENCH_TICKETS=${BENCH_TICKETS:-10000}          # tickets listed before the listing is measured
BENCH_SELLERS=${BENCH_SELLERS:-16}             # sellers listing them at once
BENCH_CREATE_SECONDS=${BENCH_CREATE_SECONDS:-240} # most seconds for that (fewer tickets if it runs out)
BENCH_DRAIN_SECONDS=${BENCH_DRAIN_SECONDS:-120}   # most seconds to wait for orders' replica (then: how far it got)
BENCH_LIST_SECONDS=${BENCH_LIST_SECONDS:-10}   # GET /api/tickets
BENCH_LIST_CONCURRENCY=${BENCH_LIST_CONCURRENCY:-4}
BENCH_SHOW_SECONDS=${BENCH_SHOW_SECONDS:-4}    # GET /api/tickets/{id}, then the driver's find
BENCH_CONCURRENCY=${BENCH_CONCURRENCY:-16}
BENCH_BUYERS=${BENCH_BUYERS:-200}              # buyers racing for one ticket
BENCH_PROPAGATION=${BENCH_PROPAGATION:-50}     # reservations timed until the ticket shows orderId
BENCH_PORT_BASE=${BENCH_PORT_BASE:-20800}      # ports base..base+57 (replicas at +50)
BENCH_STATE=${BENCH_STATE:-}                   # state folder (.gittix/bench-stack, made anew)
# BIN_DIR (target/release; target/debug when release is not built), REPLICAS (2)
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

state=${BENCH_STATE:-$GITTIX_ROOT/.gittix/bench-stack}
base=$BENCH_PORT_BASE
if [ -z "${BIN_DIR:-}" ]; then
  BIN_DIR=$GITTIX_ROOT/target/release
  [ -x "$BIN_DIR/orders" ] || BIN_DIR=$GITTIX_ROOT/target/debug
fi
export BIN_DIR REPLICAS=${REPLICAS:-2}
private_stack_ports "$base"
export PAYMENT_GATEWAY=simulated EVENTS_STREAM=GITTIX EVENTS_SUBJECT_PREFIX=gittix LOG_FORMAT=${LOG_FORMAT:-json}
require_service_binaries bench
python=$(py_venv)
stop() { "$GITTIX_ROOT/scripts/stack.sh" stop "$state" >/dev/null 2>&1 || true; }
trap stop EXIT
stop
rm -rf "$state"
log "bench: starting the stack in $state ($BIN_DIR, REPLICAS=$REPLICAS; logs in $state/logs)"
"$GITTIX_ROOT/scripts/stack.sh" start "$state"
set -a
# shellcheck disable=SC1091
source "$state/servers.env"
set +a
export BENCH_URL="http://127.0.0.1:$HTTP_PORT" BENCH_TICKETS BENCH_SELLERS BENCH_CREATE_SECONDS \
  BENCH_DRAIN_SECONDS BENCH_LIST_SECONDS BENCH_LIST_CONCURRENCY BENCH_SHOW_SECONDS BENCH_CONCURRENCY \
  BENCH_BUYERS BENCH_PROPAGATION
echo "bench: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), binaries $BIN_DIR, REPLICAS=$REPLICAS"
"$python" "$GITTIX_ROOT/e2e/bench/stack_bench.py" 2>&1 | tee "$state/bench.out"
status=${PIPESTATUS[0]}
restarts=0
[ -f "$state/logs/supervisor.log" ] && restarts=$(wc -l <"$state/logs/supervisor.log")
[ "$restarts" -eq 0 ] || warn "bench: $restarts restarts during the run (see $state/logs/supervisor.log)"
exit "$status"
