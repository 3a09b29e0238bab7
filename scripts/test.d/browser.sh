#!/usr/bin/env bash
# `make test`, browser part: issue 7's scenario (e2e/browser/scenario.mjs) in real headless
# Chromium (Debian's `chromium`), driven by playwright-core from npm, against the whole
# stack started by scripts/stack.sh from the binaries in BIN_DIR, on private ports so it
# never meets `make up` or the test servers. Steps whose services are not built are skipped.
# Screenshots of every page go to artifacts/browser/ (git-ignored).
# Settings: BIN_DIR (target/debug), EXPIRATION_WINDOW_SECONDS (15), BROWSER_HTTP_PORT (18080),
# CHROMIUM (/usr/bin/chromium), and TEST_MONGO_URL / TEST_NATS_URL / TEST_REDIS_URL to use
# servers of your own as `make test` does.
# Ends with the line `browser: N passed, M failed`; exits non-zero when anything failed.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/../lib.sh"

BIN_DIR=${BIN_DIR:-$GITTIX_ROOT/target/debug}
e2e="$GITTIX_ROOT/e2e/browser"
state="$GITTIX_ROOT/.gittix/browser"
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

# Setup failures still end with the closing line, so the count shows what happened.
setup_failed() {
  printf '\033[1;31merror:\033[0m %s\n' "$*" >&2
  echo "browser: 0 passed, 1 failed"
  exit 1
}

[ -x "$CHROMIUM" ] || setup_failed "$CHROMIUM is missing: scripts/install.sh installs Debian's chromium"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  setup_failed "node and npm are missing: scripts/install.sh installs them"
fi
[ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ] \
  || setup_failed "node $(node --version) is too old: playwright-core needs node 20 or newer"
for bin in auth tickets client; do
  [ -x "$BIN_DIR/$bin" ] || setup_failed "$BIN_DIR/$bin is missing: build first (cargo build --workspace --bins)"
done

# playwright-core from the lock file, installed again only when the lock file changes.
want=$(sha256sum "$e2e/package-lock.json" | cut -c1-16)
if [ "$(cat "$e2e/node_modules/.gittix-stamp" 2>/dev/null)" != "$want" ]; then
  log "installing the browser test's npm packages (npm ci)"
  (cd "$e2e" && npm ci --no-audit --no-fund --loglevel=error) || setup_failed "npm ci failed in e2e/browser"
  echo "$want" >"$e2e/node_modules/.gittix-stamp"
fi

# Private ports: apart from `make up` (8080, 4001-4007, 14222, 27217, 16379, Mailpit's 1025
# and 8025) and from the test servers (14322, 27318, 16479, 11025, 18025).
export HTTP_PORT=${BROWSER_HTTP_PORT:-18080}
unset JWT_PRIVATE_KEY JWT_PUBLIC_KEYS
load_from_one_address
export AUTH_PORT=18481 TICKETS_PORT=18482 ORDERS_PORT=18483 PAYMENTS_PORT=18484 CLIENT_PORT=18485 EXPIRATION_PORT=18486
export NOTIFICATIONS_PORT=18487 NATS_PORT=14422 MONGO_PORT=27418 REDIS_PORT=16579 MAIL_SMTP_PORT=18488 MAIL_UI_PORT=18489
# Servers of your own (CI's service containers) when given, as `make test` does.
export MONGO_URL=${TEST_MONGO_URL:-} NATS_URL=${TEST_NATS_URL:-} REDIS_URL=${TEST_REDIS_URL:-}
# The stack passes its environment on to every service: the client's service URLs, a short
# reservation window, and the simulated payment gateway.
export AUTH_URL="http://127.0.0.1:$AUTH_PORT" TICKETS_URL="http://127.0.0.1:$TICKETS_PORT"
export ORDERS_URL="http://127.0.0.1:$ORDERS_PORT" PAYMENTS_URL="http://127.0.0.1:$PAYMENTS_PORT"
export EXPIRATION_WINDOW_SECONDS=${EXPIRATION_WINDOW_SECONDS:-15} PAYMENT_GRACE_SECONDS=${PAYMENT_GRACE_SECONDS:-2}
export PAYMENT_GATEWAY=simulated
export APP_ENV=development COOKIE_SECURE=false
unset STRIPE_PUBLISHABLE_KEY
# Emails go to the stack's own Mailpit, never through a transport of the caller's.
unset MAIL_TRANSPORT SENDGRID_API_KEY PUBLIC_URL
# A stream and subject prefix of this run's own, in case NATS is shared.
run_id="browser$(date +%s)"
export EVENTS_STREAM=${run_id^^} EVENTS_SUBJECT_PREFIX=$run_id

stop_stack() { BIN_DIR="$BIN_DIR" "$GITTIX_ROOT/scripts/stack.sh" stop "$state" >/dev/null 2>&1 || true; }
trap stop_stack EXIT
stop_stack
rm -rf "$state"
mkdir -p "$state"
log "starting the stack from $BIN_DIR on http://127.0.0.1:$HTTP_PORT"
if ! BIN_DIR="$BIN_DIR" "$GITTIX_ROOT/scripts/stack.sh" start "$state" >"$state/start.log" 2>&1; then
  tail -n 20 "$state/start.log" >&2
  setup_failed "the stack did not start; logs in $state/logs"
fi

services=""
for entry in "${GITTIX_SERVICES[@]}"; do
  name=${entry%%:*}
  [ -x "$BIN_DIR/$name" ] && services="$services $name"
done

status=0
(cd "$e2e" && BASE_URL="http://127.0.0.1:$HTTP_PORT" GITTIX_SERVICES="$services" \
  MAILPIT_URL="http://127.0.0.1:$MAIL_UI_PORT" ARTIFACTS="$GITTIX_ROOT/artifacts/browser" node scenario.mjs) || status=$?
if [ "$status" -ne 0 ]; then
  warn "browser test failed: screenshots in artifacts/browser, service logs in $state/logs"
fi
exit "$status"
