# syntax=docker/dockerfile:1
# One image per GitTix service, all from this file: the build argument SERVICE names the
# binary (auth, tickets, orders, payments, expiration, notifications or client).
#
#   docker build --build-arg SERVICE=auth -t gittix/auth .
#
# Dependencies are compiled once by cargo-chef in a layer of their own, shared by every
# service and rebuilt only when Cargo.toml or Cargo.lock change; a code change recompiles
# the workspace crates alone. CARGO_PROFILE=dev (skaffold's dev loop) trades speed of the
# binary for speed of the build; images that ship use the default, release.

# --- toolchain: Rust and cargo-chef, pinned ----------------------------------------------------
# The tag's Rust release is rust-toolchain.toml's channel (make test checks they agree). The
# file itself stays out of the context (.dockerignore): here it would only make rustup
# download rustfmt and clippy, which no image build runs.
FROM rust:1.95.0-slim-bookworm AS chef
WORKDIR /build
RUN cargo install cargo-chef --locked --version 0.1.77

# --- planner: reduce the workspace to its dependency recipe ---------------------------------
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# --- builder: dependencies (cached layer), then the one service -----------------------------
FROM chef AS builder
ARG CARGO_PROFILE=release
COPY --from=planner /build/recipe.json recipe.json
# The dependencies of the whole workspace: one layer for all six images.
RUN cargo chef cook --locked --profile "${CARGO_PROFILE}" --recipe-path recipe.json
COPY . .
ARG SERVICE
RUN test -n "${SERVICE}" && test -f "services/${SERVICE}/Cargo.toml" \
      || { echo "set --build-arg SERVICE=<a folder of services/>, e.g. SERVICE=auth" >&2; exit 1; }
RUN cargo build --locked --profile "${CARGO_PROFILE}" --bin "${SERVICE}" \
    && out="target/$([ "${CARGO_PROFILE}" = dev ] && echo debug || echo "${CARGO_PROFILE}")" \
    && cp "${out}/${SERVICE}" /build/service

# --- runtime: glibc and CA certificates, no shell, no package manager, not root ------------
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=builder /build/service /usr/local/bin/service
# Kubernetes sets the rest (infra/k8s); these defaults make `docker run -p 3000:3000` work.
ENV PORT=3000 LOG_FORMAT=json
EXPOSE 3000
# The distroless nonroot user, by number so Kubernetes can verify runAsNonRoot.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/service"]
