#!/usr/bin/env bash
# Installs what the local stack and the tests need, skipping whatever is already there:
# the Rust toolchain of rust-toolchain.toml; Debian packages (redis, nginx, curl, chromium);
# built once with Go into $GITTIX_TOOLS_DIR, a pinned nats-server, Mailpit, helm and the
# FerretDB stand-in for MongoDB; and the Python venv of the fault harness and the API
# fuzzing (pymongo, nats-py, schemathesis: e2e/chaos/requirements.txt).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

# Rust: the toolchain rust-toolchain.toml pins (its channel, with rustfmt and clippy), which
# rustup runs for every cargo call in the checkout. Missing, rustup would download it (or
# fail: RUSTUP_AUTO_INSTALL=0); an installed toolchain of that very release (a `stable` that
# is it) is linked under its name instead, which downloads nothing. rustup refuses `toolchain
# link` for a release's name, so the link is the symlink it would make. It follows its
# target: once that moves on (`rustup update`), the check below fails and this runs again.
rust_channel=$(sed -n 's/^channel *= *"\([^"]*\)".*/\1/p' "$GITTIX_ROOT/rust-toolchain.toml")
[ -n "$rust_channel" ] || die "rust-toolchain.toml names no channel"
# What make test runs: rustc of that release, rustfmt and clippy.
rust_ready() {
  [[ "$(rustup run "$rust_channel" rustc --version 2>/dev/null)" == "rustc $rust_channel "* ]] \
    && rustup run "$rust_channel" cargo-fmt --version >/dev/null 2>&1 \
    && rustup run "$rust_channel" cargo-clippy --version >/dev/null 2>&1
}
if ! command -v rustup >/dev/null; then
  command -v cargo >/dev/null || die "Rust is missing: install rustup (https://rustup.rs); rust-toolchain.toml pins $rust_channel"
  [[ "$(rustc --version)" == "rustc $rust_channel "* ]] \
    || warn "no rustup: building with $(rustc --version), not the $rust_channel of rust-toolchain.toml"
elif ! rust_ready; then
  toolchains="$(rustup show home)/toolchains"
  # A link left from an earlier run whose target is another release by now.
  for link in "$toolchains/$rust_channel"-*; do
    if [ -L "$link" ]; then rm "$link"; fi
  done
  if rustup toolchain list | grep -q "^$rust_channel-"; then
    log "Rust $rust_channel: adding rustfmt and clippy"
    rustup component add --toolchain "$rust_channel" rustfmt clippy
  else
    while read -r tc _; do
      [[ "$(rustup run "$tc" rustc --version 2>/dev/null)" == "rustc $rust_channel "* ]] || continue
      sysroot=$(rustup run "$tc" rustc --print sysroot)
      [ -x "$sysroot/bin/cargo-fmt" ] && [ -x "$sysroot/bin/cargo-clippy" ] || continue
      link="$toolchains/$rust_channel-$(rustup run "$tc" rustc -vV | sed -n 's/^host: //p')"
      ln -s "$sysroot" "$link"
      if rust_ready; then
        log "Rust $rust_channel: linked the installed $tc, the same release"
        break
      fi
      rm "$link"
    done < <(rustup toolchain list)
    if ! rust_ready; then
      log "Rust $rust_channel: installing it with rustup (rust-toolchain.toml)"
      rustup toolchain install "$rust_channel" --profile minimal --component rustfmt,clippy
    fi
  fi
  rust_ready || die "Rust $rust_channel of rust-toolchain.toml, with rustfmt and clippy, is still missing (rustup toolchain list)"
fi

apt_packages=()
command -v redis-server >/dev/null || apt_packages+=(redis-server)
command -v nginx >/dev/null || apt_packages+=(nginx)
command -v curl >/dev/null || apt_packages+=(curl)
# `make bench`: HTTP load for the request-path figures.
command -v wrk >/dev/null || apt_packages+=(wrk)
# The browser test: Debian's Chromium (with a font: --no-install-recommends drops it)
# driven by playwright-core on Node.js 20 or newer.
command -v chromium >/dev/null || apt_packages+=(chromium fonts-dejavu-core)
command -v node >/dev/null || apt_packages+=(nodejs)
command -v npm >/dev/null || apt_packages+=(npm)
# The harness's venv (scripts/lib.sh py_venv) needs Python's venv and pip bootstrap.
command -v python3 >/dev/null || apt_packages+=(python3)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || apt_packages+=(python3-venv)
if [ "${#apt_packages[@]}" -gt 0 ]; then
  log "installing Debian packages: ${apt_packages[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi

mkdir -p "$GITTIX_TOOLS_DIR"

# NATS with JetStream: the pinned release built with Go; Debian's (older) package otherwise.
nats_bin="$GITTIX_TOOLS_DIR/nats-server"
if [ ! -x "$nats_bin" ] || [ "$("$nats_bin" --version 2>/dev/null | awk '{print $NF}')" != "$NATS_SERVER_VERSION" ]; then
  if command -v go >/dev/null; then
    log "building nats-server $NATS_SERVER_VERSION (once)"
    GOBIN="$GITTIX_TOOLS_DIR" GOFLAGS=-buildvcs=false go install "github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION"
  elif ! command -v nats-server >/dev/null; then
    warn "Go is missing: falling back to Debian's nats-server (2.9; JetStream works, filter_subjects does not)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null
  fi
fi

# The MongoDB-compatible server, unless a mongod is on the PATH. Built even when MONGO_URL
# or TEST_MONGO_URL name a server of the user's: the restart test and the fault harness run
# private stacks whose MongoDB they stop and kill.
if ! command -v mongod >/dev/null; then
  src="$GITTIX_ROOT/tools/ferretdb"
  stamp="$GITTIX_TOOLS_DIR/ferretdb.stamp"
  want=$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-16)
  if [ ! -x "$GITTIX_TOOLS_DIR/ferretdb" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    command -v go >/dev/null || die "Go is needed to build FerretDB; or set MONGO_URL to a MongoDB of yours"
    log "building FerretDB 1.24 (once; a few minutes)"
    (cd "$src" && GOBIN="$GITTIX_TOOLS_DIR" GOFLAGS=-buildvcs=false go install .)
    echo "$want" >"$stamp"
  fi
fi

# Mailpit: the local SMTP server and mail viewer that `make up` and the notification tests
# send to (its version is not printed by the binary: a stamp records it).
mailpit_stamp="$GITTIX_TOOLS_DIR/mailpit.version"
if [ ! -x "$GITTIX_TOOLS_DIR/mailpit" ] || [ "$(cat "$mailpit_stamp" 2>/dev/null)" != "$MAILPIT_VERSION" ]; then
  command -v go >/dev/null || die "Go is needed to build Mailpit"
  log "building Mailpit $MAILPIT_VERSION (once)"
  GOBIN="$GITTIX_TOOLS_DIR" GOFLAGS=-buildvcs=false go install "github.com/axllent/mailpit@$MAILPIT_VERSION"
  echo "$MAILPIT_VERSION" >"$mailpit_stamp"
fi

# Helm: kustomize renders the vendored NATS chart with it (`kubectl kustomize --enable-helm`,
# infra/k8s/nats); make test's infra checks and deploy.yml render that way. Built from its
# Go module like the servers (a `go install` build does not print its full version: a stamp
# records it).
helm_stamp="$GITTIX_TOOLS_DIR/helm.version"
if [ ! -x "$GITTIX_TOOLS_DIR/helm" ] || [ "$(cat "$helm_stamp" 2>/dev/null)" != "$HELM_VERSION" ]; then
  command -v go >/dev/null || die "Go is needed to build helm"
  log "building helm $HELM_VERSION (once; a few minutes)"
  GOBIN="$GITTIX_TOOLS_DIR" GOFLAGS=-buildvcs=false go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  echo "$HELM_VERSION" >"$helm_stamp"
fi

# `make test`'s unused-dependency check, built once with cargo like the Go tools.
if [ "$("$GITTIX_TOOLS_DIR/cargo-machete" --version 2>/dev/null | awk '{print $NF}')" != "$CARGO_MACHETE_VERSION" ]; then
  log "building cargo-machete $CARGO_MACHETE_VERSION (once)"
  cargo install --quiet --locked "cargo-machete@$CARGO_MACHETE_VERSION" --root "$GITTIX_TOOLS_DIR/cargo-machete.build"
  mv "$GITTIX_TOOLS_DIR/cargo-machete.build/bin/cargo-machete" "$GITTIX_TOOLS_DIR/cargo-machete"
  rm -rf "$GITTIX_TOOLS_DIR/cargo-machete.build"
fi

# The fault harness (make chaos, scripts/test.d/chaos.sh) and the NATS durability test.
py_venv >/dev/null
