#!/usr/bin/env bash
# `make test`: install what is missing, start private test servers, check formatting and
# lints, run every test, and stop the servers whatever happened.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$GITTIX_ROOT"

"$GITTIX_ROOT/scripts/install.sh"

state="$GITTIX_ROOT/.gittix/test"
stop_servers() { "$GITTIX_ROOT/scripts/servers.sh" stop "$state" || true; }
trap stop_servers EXIT
# A fresh data folder per run: tests never see state they did not create.
stop_servers
rm -rf "$state"
NATS_PORT=$TEST_NATS_PORT MONGO_PORT=$TEST_MONGO_PORT REDIS_PORT=$TEST_REDIS_PORT \
  MONGO_URL="${TEST_MONGO_URL:-}" NATS_URL="${TEST_NATS_URL:-}" REDIS_URL="${TEST_REDIS_URL:-}" \
  "$GITTIX_ROOT/scripts/servers.sh" start "$state"
log "test servers: $(tr '\n' ' ' <"$state/servers.env")"

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "cargo machete (dependencies no code uses)"
cargo-machete
log "building binaries for the end-to-end tests"
cargo build --workspace --bins --locked
log "cargo test"
cargo test --workspace --locked --no-fail-fast
# Every end-to-end script runs, whichever failed before it; the run fails at the end.
failed_extras=()
for extra in "$GITTIX_ROOT"/scripts/test.d/*.sh; do
  [ -e "$extra" ] || continue
  log "$(basename "$extra")"
  bash "$extra" || failed_extras+=("$(basename "$extra")")
done
[ "${#failed_extras[@]}" -eq 0 ] || die "failed: ${failed_extras[*]}"
