# syntax=docker/dockerfile:1
#
# abacus: A2A v1.0 math agent server.
#
#   docker build -t abacus:0.1.0 .
#   docker run --rm -p 8002:8002 -p 8090:8090 -e ABACUS_METRICS_PORT=8090 abacus:0.1.0
#
# Requires BuildKit (the default builder since Docker 23) for the cache mounts:
# the cargo registry, git checkouts and target/ persist between builds, so a
# source-only change recompiles only the workspace crates.

############################ builder ############################
FROM rust:1-bookworm AS builder
WORKDIR /build

# The whole workspace (root crate + layers/); .dockerignore keeps target/,
# data/ and .git out of the context.
COPY . .

# target/ lives in a cache mount, so the binary is copied out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git/db,sharing=locked \
    --mount=type=cache,target=/build/target,sharing=locked \
    cargo build --release --locked --bin abacus \
 && install -D -m 0755 target/release/abacus /out/abacus

############################ runtime ############################
FROM debian:bookworm-slim AS runtime

# ca-certificates: TLS to PostgreSQL and the external math services.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# Fixed non-root uid/gid 10001 (numeric, so Kubernetes runAsNonRoot can verify it).
# /data holds the SQLite store when DATABASE_URL is not set.
RUN groupadd --system --gid 10001 abacus \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin abacus \
 && mkdir -p /data \
 && chown 10001:10001 /data

COPY --from=builder /out/abacus /usr/local/bin/abacus

# Listen on all interfaces inside the container; keep state under /data.
# The separate metrics listener is opt-in: set ABACUS_METRICS_PORT=8090
# (docker-compose.yml and deploy/k8s do). /metrics is also served on 8002.
ENV A2A_HOST=0.0.0.0 \
    A2A_PORT=8002 \
    ABACUS_DATA_DIR=/data

VOLUME ["/data"]
USER 10001:10001

# 8002: A2A JSON-RPC, agent card, /health, /health/detailed, /metrics
# 8090: metrics-only listener (when ABACUS_METRICS_PORT=8090)
EXPOSE 8002 8090

# No HEALTHCHECK: the image has no curl/wget. The orchestrator probes instead:
# liveness GET /health, readiness GET /health/detailed (see deploy/README.md);
# docker-compose.yml uses a bash /dev/tcp probe.
# SIGTERM triggers a graceful drain (ABACUS_SHUTDOWN_DRAIN_SECS, default 10 s).
STOPSIGNAL SIGTERM

ENTRYPOINT ["/usr/local/bin/abacus"]
CMD ["serve"]
