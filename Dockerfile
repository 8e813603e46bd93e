# marathon-lb (Rust) with Debian's HAProxy 2.6.
#
#   docker build -t marathon-lb .
#   docker run -e PORTS=9090 --net host marathon-lb sse --group external -m http://marathon:8080

# --- build --------------------------------------------------------------------
FROM rust:1.95-bookworm AS builder
# The default label plugin is a wasm32-wasip2 component built by host/mlb/build.rs.
RUN rustup target add wasm32-wasip2
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p marathon-lb

# --- runtime ------------------------------------------------------------------
FROM debian:bookworm-slim
# procps: /usr/bin/kill for the reload command and sysctl for HAPROXY_SYSCTL_PARAMS.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        haproxy ca-certificates tini openssl procps \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/run/haproxy /var/state/haproxy /marathon-lb/templates

COPY --from=builder /src/target/release/marathon-lb /usr/local/bin/marathon-lb
# HAPROXY_HEAD lua-loads these from /marathon-lb/.
COPY host/mlb/lua/getpids.lua host/mlb/lua/getconfig.lua host/mlb/lua/getmaps.lua host/mlb/lua/signalmlb.lua /marathon-lb/
COPY docker/run /marathon-lb/run
RUN chmod 755 /marathon-lb/run

WORKDIR /marathon-lb
# 80/443: HTTP(S) frontends; 9090: stats, health and Lua endpoints; 9091: app-id frontend.
EXPOSE 80 443 9090 9091
ENTRYPOINT ["tini", "-g", "--", "/marathon-lb/run"]
CMD ["sse", "--health-check", "--group", "external"]
