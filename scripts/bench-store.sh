#!/usr/bin/env bash
# `make bench`, store part: the MongoDB server of the test stack measured the way GitTix
# uses it (tools/ferretdb/storebench): races across 16 connections (version-checked updates,
# claims, $push: what is lost, how many win), then the tickets listing query and find by
# _id at 10,000 documents. Prints figures; asserts nothing.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$GITTIX_ROOT"

env_file="$GITTIX_ROOT/.gittix/test/servers.env"
url=${TEST_MONGO_URL:-$(sed -n 's/^MONGO_URL=//p' "$env_file" 2>/dev/null)}
[ -n "$url" ] || die "no test MongoDB: run make test-servers"
command -v go >/dev/null || { warn "Go is missing: skipping the store benchmark"; exit 0; }
log "store benchmark against $url"
cd tools/ferretdb
GOFLAGS=-buildvcs=false go run ./storebench -url "$url" -docs "${BENCH_DOCS:-10000}" -seconds "${BENCH_SECONDS:-3}"
