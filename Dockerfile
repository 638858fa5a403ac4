# hotline in a container: a Rust build stage, then a small Debian runtime.
#
#   docker build -t hotline .
#   docker run --rm -p 8080:8080 --stop-timeout 35 hotline
#
# Stop grace: on SIGTERM hotline drains. Live calls get HOTLINE_DRAIN_SECS
# (25 here, the binary's default) to end on their own, then every call is
# closed (up to 5 s for the close handshakes), the records are flushed and
# idle HTTP connections get 2 s more. Give the container a stop timeout of
# at least HOTLINE_DRAIN_SECS + 10 s: `docker stop` waits only 10 s by
# default before SIGKILL, which would cut calls 10 s into a 25 s drain.
# `docker run --stop-timeout 35`, compose's `stop_grace_period: 35s`,
# Kubernetes' terminationGracePeriodSeconds (see deploy/ and docs/deploy.md
# for each platform's setting).

# The toolchain pinned in rust-toolchain.toml (scripts/check-deploy.py
# checks that the two agree).
ARG RUST_VERSION=1.95.0

FROM docker.io/library/rust:${RUST_VERSION}-slim-bookworm AS build
# The guests are wasm32-wasip2 components that host/build.rs compiles with a
# nested cargo; ring and wasmtime compile a little C (gcc is in the image).
RUN rustup target add wasm32-wasip2
WORKDIR /src
COPY . .
# The cache mounts keep the registry and the target directory between
# builds (BuildKit and buildah both support them); the binary is copied out
# of the mounted target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin hotline \
    && install -D -m 0755 target/release/hotline /out/hotline

FROM docker.io/library/debian:bookworm-slim AS runtime
# Provider requests verify TLS against the system's roots: ca-certificates.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# A fixed, non-root uid: the compile cache is trusted only in a directory
# this user owns and nobody else can write (mode 0700), so the Kubernetes
# manifests run as this same uid.
RUN groupadd --gid 10001 hotline \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/hotline --shell /usr/sbin/nologin hotline \
    && install -d -m 0700 -o hotline -g hotline /var/lib/hotline /var/cache/hotline
COPY --from=build /out/hotline /usr/local/bin/hotline

ENV PORT=8080 \
    HOTLINE_DATA_DIR=/var/lib/hotline \
    HOTLINE_CACHE_DIR=/var/cache/hotline \
    HOTLINE_DRAIN_SECS=25

USER 10001:10001
# The built-in guest, precompiled into the image's cache directory, so the
# first call is not held while it compiles. A container whose CPU or sandbox
# settings (HOTLINE_GUEST_MEMORY_MB, ...) differ from this build's misses
# the entry (it is keyed by them) and compiles at start (~0.5 s), as
# without it.
RUN hotline guest compile

EXPOSE 8080
# Liveness only (/readyz is 503 while draining or at the call limit, which
# is no reason to restart). bash's /dev/tcp: the image needs no curl.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PORT:-8080} && printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && read -r status code rest <&3 && [ \"$code\" = 200 ]"]
# hotline drains on SIGTERM (Docker's default stop signal, stated here so a
# base image or an override cannot change it silently).
STOPSIGNAL SIGTERM
ENTRYPOINT ["hotline"]
CMD ["serve"]
