# GitTix: the two commands are `make up` and `make test`; the rest are their parts.
SHELL := /bin/bash
.DEFAULT_GOAL := help

STATE ?= .gittix/up
# `make chaos SECONDS=600 SEED=…`: how long the fault run lasts, and a seed to replay.
SECONDS ?= 120
SEED ?=

# `make redrive ARGS='--service tickets --dry-run'`: options of `gittix redrive`.
ARGS ?=

.PHONY: help up down status chaos redrive test install build bench test-servers test-servers-stop fmt lint

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

up: install build ## Install what is missing, build, run the whole stack at http://localhost:8080, its emails (Mailpit) at http://localhost:8025 (Ctrl-C stops it)
	@BIN_DIR=$(CURDIR)/target/release scripts/stack.sh run $(STATE)

down: ## Stop a stack left running by `make up`
	@scripts/stack.sh stop $(STATE)

status: ## Status table of the `make up` stack: pids and restarts (every process is supervised)
	@BIN_DIR=$(CURDIR)/target/release scripts/stack.sh status $(STATE)

chaos: install build ## Fault harness: load + random SIGKILLs for SECONDS (120), then invariants; SEED=… replays
	@BIN_DIR=$(CURDIR)/target/release CHAOS_SECONDS=$(SECONDS) SEED=$(SEED) scripts/chaos.sh

redrive: ## Replay the `make up` stack's dead letters after a fix (ARGS: --service NAME, --dry-run)
	@set -a && source $(STATE)/servers.env && set +a && \
		env $${NATS_USERS_DIR:+NATS_USER=admin NATS_PASSWORD_FILE=$$NATS_USERS_DIR/admin} \
		cargo run --quiet --release --locked -p admin -- redrive $(ARGS)

test: ## Install what is missing, start private test servers, run fmt, clippy and every test
	@scripts/test.sh

install: ## Install or build the servers and tools (once; reused afterwards)
	@scripts/install.sh

build: ## Build release binaries of every service
	cargo build --release --workspace --bins --locked

test-servers: install ## Start the private test servers alone (for `cargo test` by hand)
	@source scripts/lib.sh && NATS_PORT=$$TEST_NATS_PORT MONGO_PORT=$$TEST_MONGO_PORT REDIS_PORT=$$TEST_REDIS_PORT \
		scripts/servers.sh start .gittix/test && cat .gittix/test/servers.env

test-servers-stop: ## Stop the private test servers
	@scripts/servers.sh stop .gittix/test

bench: build test-servers ## Benchmarks: store races and listing at 10,000 documents; the stack through nginx (listing, replica drain, show-by-id, 200-buyer race, propagation); auth under 200 concurrent sign-ins (peak RSS); currentuser beside a bare axum handler (wrk); expiry lateness; prints figures
	cargo build --release -p auth --example bare_handler --locked
	@scripts/bench-store.sh
	@BIN_DIR=$(CURDIR)/target/release scripts/bench-stack.sh
	@BIN_DIR=$(CURDIR)/target/release scripts/bench-signin.sh
	@BIN_DIR=$(CURDIR)/target/release scripts/bench-request-path.sh
	cargo bench -p expiration --bench lateness

fmt: ## Format the code
	cargo fmt --all

lint: ## Clippy as CI runs it
	cargo clippy --workspace --all-targets -- -D warnings
