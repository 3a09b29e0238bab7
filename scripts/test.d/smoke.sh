#!/usr/bin/env bash
# The whole stack as `make up` runs it (scripts/stack.sh, nginx in front), on private
# ports, with the debug binaries: the purchase flow through the single origin, and (once
# notifications is built) the emails it causes, in the stack's Mailpit.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"

state="$root/.gittix/smoke"
export BIN_DIR="${BIN_DIR:-$root/target/debug}"
export HTTP_PORT=19080 AUTH_PORT=19481 TICKETS_PORT=19482 ORDERS_PORT=19483 PAYMENTS_PORT=19484 CLIENT_PORT=19485 EXPIRATION_PORT=19486
export NOTIFICATIONS_PORT=19487 NATS_PORT=14622 MONGO_PORT=27618 REDIS_PORT=16779 MAIL_SMTP_PORT=19488 MAIL_UI_PORT=19489
export EXPIRATION_WINDOW_SECONDS=3 PAYMENT_GRACE_SECONDS=1 PAYMENT_GATEWAY=simulated
unset JWT_PRIVATE_KEY JWT_PUBLIC_KEYS
load_from_one_address
unset STRIPE_SECRET_KEY MONGO_URL NATS_URL REDIS_URL MAIL_TRANSPORT SENDGRID_API_KEY
# Use the test servers' MongoDB when they run one (one FerretDB is enough).
if [ -f "$root/.gittix/test/servers.env" ]; then
  MONGO_URL=$(sed -n 's/^MONGO_URL=//p' "$root/.gittix/test/servers.env")
  export MONGO_URL
fi
export EVENTS_STREAM="SMOKE_$$" EVENTS_SUBJECT_PREFIX="smoke$$"

for bin in auth tickets orders payments expiration client; do
  [ -x "$BIN_DIR/$bin" ] || die "smoke: $BIN_DIR/$bin is missing; run cargo build --workspace --bins"
done
stop() { "$root/scripts/stack.sh" stop "$state" >/dev/null 2>&1 || true; }
trap stop EXIT
stop
rm -rf "$state"
export PUBLIC_URL="http://localhost:$HTTP_PORT"
"$root/scripts/stack.sh" start "$state"
# With notifications built, the emails of the flow are checked in the stack's Mailpit.
mailpit=""
if [ -x "$BIN_DIR/notifications" ]; then
  mailpit=$(sed -n 's/^MAILPIT_URL=//p' "$state/servers.env")
fi
if ! MAILPIT_URL="$mailpit" python3 "$root/e2e/smoke/purchase.py" "http://127.0.0.1:$HTTP_PORT"; then
  warn "smoke failed; service logs are in $state/logs"
  tail -n 20 "$state"/logs/*.log >&2 || true
  exit 1
fi
# Every service reached NATS as its own user (the permission model of a deployment), and
# none was refused anything it does.
NATS_MONITOR_URL=$(sed -n 's/^NATS_MONITOR_URL=//p' "$state/servers.env")
if ! curl -fsS "$NATS_MONITOR_URL/connz?auth=true&limit=1000" | python3 -c '
import json, sys
conns = json.load(sys.stdin)["connections"]
wrong = [(c.get("name"), c.get("authorized_user")) for c in conns if c.get("authorized_user") != c.get("name")]
assert conns and not wrong, f"connections not as their own NATS user (name, user): {wrong}"
print(f"smoke: {len(conns)} NATS connections, each as its own user")
'; then
  die "smoke: a service connected to NATS without its own user"
fi
if grep -il "permission violation" "$state"/logs/*.log; then
  die "smoke: NATS refused a service something (permission violation in the logs above)"
fi
