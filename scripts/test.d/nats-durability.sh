#!/usr/bin/env bash
# `make test`: an event JetStream acknowledged survives a SIGKILL of nats-server. Starts a
# private nats-server as scripts/servers.sh does (JetStream file store, NATS_SYNC_INTERVAL
# from there, `always` by default), publishes acknowledged messages, SIGKILLs the server,
# lets its supervisor restart it, and counts them (e2e/chaos/nats_durability.py).
# Settings: DURABILITY_NATS_PORT (20611; its monitor and the Mailpit servers.sh starts take
# the next three), DURABILITY_COUNT (2000), NATS_SYNC_INTERVAL.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"

state="$root/.gittix/nats-durability"
python=$(py_venv)
export NATS_PORT=${DURABILITY_NATS_PORT:-20611}
export NATS_MONITOR_PORT=$((NATS_PORT + 1))
# Only NATS: the other servers are named as given, so servers.sh starts none of them.
export MONGO_URL=mongodb://unused REDIS_URL=redis://unused
# servers.sh always starts a Mailpit: on ports of this test's own, apart from the test
# servers' (11025, 18025) and `make up`'s (1025, 8025).
export MAILPIT_SMTP_PORT=$((NATS_PORT + 2)) MAILPIT_UI_PORT=$((NATS_PORT + 3))
unset NATS_URL

stop() { "$root/scripts/servers.sh" stop "$state" >/dev/null 2>&1 || true; }
trap stop EXIT
stop
rm -rf "$state"
"$root/scripts/servers.sh" start "$state"
NATS_MONITOR_URL="http://127.0.0.1:$NATS_MONITOR_PORT" "$python" "$root/e2e/chaos/nats_durability.py" "nats://127.0.0.1:$NATS_PORT" "$state/nats.pid" "${DURABILITY_COUNT:-2000}"
