# marathon-lb (Rust) on Debian bookworm with Debian's HAProxy 2.6 (Lua 5.3,
# Prometheus exporter). Build and run (docs/migrating.md):
#
#   docker build -t marathon-lb .
#   docker run -d -e PORTS=9090 --privileged --net=host marathon-lb \
#     sse --marathon http://marathon.mesos:8080 --group external
#
# Layout (checked by host/mlb/tests/it/container.rs): the binary in
# /usr/local/bin; the entrypoint, health check, Lua services (installed by
# the binary at start), templates and haproxy.cfg in /marathon-lb;
# certificates in /etc/ssl; HAProxy's sockets in /var/run/haproxy and its
# server states in /var/state/haproxy.

# --- build --------------------------------------------------------------------
FROM rust:1.95-bookworm AS builder
# The default label plugin is a wasm32-wasip2 component built by host/plugin-host/build.rs.
RUN rustup target add wasm32-wasip2
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p marathon-lb \
    && strip target/release/marathon-lb

# --- runtime ------------------------------------------------------------------
FROM debian:bookworm-slim
# haproxy: Debian's 2.6 build, with Lua and the Prometheus exporter.
# tini: PID 1 (reaps orphans, forwards signals to the process group).
# openssl: the self-signed certificate when none is given.
# procps: sysctl for HAPROXY_SYSCTL_PARAMS.
# ca-certificates: verified TLS to Marathon.
# Versions follow the bookworm release and its security updates, not exact
# pins (an exact pin breaks the build when Debian replaces the version).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        haproxy ca-certificates tini openssl procps \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /marathon-lb/templates /var/run/haproxy /var/state/haproxy

COPY --from=builder /src/target/release/marathon-lb /usr/local/bin/marathon-lb
COPY docker/run docker/healthcheck /marathon-lb/
RUN chmod 755 /marathon-lb/run /marathon-lb/healthcheck

WORKDIR /marathon-lb
# 80/443: HTTP(S) frontends; 9090: stats, health and Lua endpoints; 9091: app-id frontend.
EXPOSE 80 443 9090 9091
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/marathon-lb/healthcheck"]
ENTRYPOINT ["tini", "-g", "--", "/marathon-lb/run"]
CMD ["sse", "--health-check", "--group", "external"]
