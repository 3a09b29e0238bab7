#!/usr/bin/env bash
# `make bench`, auth part (issue 15): one release auth process against the private test
# servers, a storm of BENCH_SIGNINS concurrent sign-ins twice, and auth's peak resident
# memory (e2e/bench/signin_bench.py). Prints figures; asserts nothing. Auth runs with its
# default hashing bound (HASH_CONCURRENCY: the cores; HASH_QUEUE 32) and the per-address
# limit raised, since the storm comes from one address.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

state=$GITTIX_ROOT/.gittix/bench-signin
BIN_DIR=${BIN_DIR:-$GITTIX_ROOT/target/release}
port=${BENCH_AUTH_PORT:-20901}
[ -x "$BIN_DIR/auth" ] && [ -x "$BIN_DIR/gittix" ] || die "bench-signin: build first (cargo build --release --workspace --bins)"
[ -f "$GITTIX_ROOT/.gittix/test/servers.env" ] || die "bench-signin: start the test servers first (make test-servers)"
python=$(py_venv)
rm -rf "$state"
mkdir -p "$state"
"$BIN_DIR/gittix" keygen "$state/keys" >/dev/null
set -a
# shellcheck disable=SC1091
source "$GITTIX_ROOT/.gittix/test/servers.env"
set +a
JWT_PRIVATE_KEY=$(cat "$state/keys/jwt-private.pem") HOST=127.0.0.1 PORT=$port MONGO_DB="bench_signin_$$" \
  EVENTS_STREAM="BENCH_SIGNIN_$$" EVENTS_SUBJECT_PREFIX="benchsignin$$" SIGNIN_PER_MINUTE=1000000 \
  SIGNUP_PER_MINUTE=1000000 LOG_FORMAT=json RUST_LOG=warn "$BIN_DIR/auth" >"$state/auth.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
wait_for_http auth "http://127.0.0.1:$port/readyz"
echo "signin-bench: $(nproc) cores, auth pid $pid ($BIN_DIR)"
BENCH_AUTH_URL="http://127.0.0.1:$port" BENCH_AUTH_PID=$pid "$python" "$GITTIX_ROOT/e2e/bench/signin_bench.py"
