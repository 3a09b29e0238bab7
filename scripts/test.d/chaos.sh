#!/usr/bin/env bash
# `make test`: a short, deterministic run of the fault harness (scripts/chaos.sh): a fixed
# seed, 75 s of load with a SIGKILL or SIGTERM every ~5 s on every service and server,
# then the invariants. About 2.5 minutes in all. `make chaos` runs a longer one.
# Settings as for scripts/chaos.sh; BIN_DIR defaults to the debug binaries here.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
export BIN_DIR="${BIN_DIR:-$root/target/debug}"
export CHAOS_SECONDS="${CHAOS_SECONDS:-75}" CHAOS_SETTLE="${CHAOS_SETTLE:-50}" SEED="${SEED:-20261126}"
export CHAOS_STATE="${CHAOS_STATE:-$root/.gittix/chaos-test}" CHAOS_PORT_BASE="${CHAOS_PORT_BASE:-20440}"
exec "$root/scripts/chaos.sh"
