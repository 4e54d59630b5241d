# dialtone in a container: built with the Rust image, run on Debian slim.
#
#   docker build -t dialtone .
#   docker run --rm -p 5060:5060/udp -p 5060:5060/tcp -p 8080:8080 \
#       -e DIALTONE_SIP__LISTEN='["udp:0.0.0.0:5060","tcp:0.0.0.0:5060"]' \
#       -e DIALTONE_HTTP__LISTEN=0.0.0.0:8080 dialtone
#
# Every setting comes from config/dialtone.toml (copied to
# /etc/dialtone/dialtone.toml, the shipped defaults) and is overridden by
# environment variables DIALTONE_<SECTION>__<KEY> (values read as TOML when
# they parse as TOML). docker-compose.yml runs two of these behind Kamailio
# on one PostgreSQL. The embedded SQLite database, when used, lives under
# /var/lib/dialtone/data (a volume).
#
# The CLI works on the same configuration: `docker compose exec dialtone-1
# dialtone user add 1001 --password secret` (exec sees the service's
# environment, hence its database).

# --- build -------------------------------------------------------------------
FROM rust:1-bookworm AS build
# libopus-dev + pkg-config: audiopus links the system libopus (cmake is its
# fallback for building Opus itself)
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake libopus-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The workspace: its members (crates/*, bench/ai-load) and the shipped
# config (a unit test reads it).
COPY Cargo.toml Cargo.lock ./
# .cargo/config.toml: how mimalloc, the allocator, is built
COPY .cargo ./.cargo
COPY crates ./crates
COPY bench/ai-load ./bench/ai-load
COPY config ./config
RUN cargo build --release --locked -p dialtone \
    && cp target/release/dialtone /usr/local/bin/dialtone \
    && /usr/local/bin/dialtone --version

# --- run ---------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libopus0 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /var/lib/dialtone --create-home --shell /usr/sbin/nologin dialtone
COPY --from=build /usr/local/bin/dialtone /usr/local/bin/dialtone
COPY config/dialtone.toml /etc/dialtone/dialtone.toml
USER dialtone
WORKDIR /var/lib/dialtone
VOLUME ["/var/lib/dialtone/data"]
# SIP (UDP and TCP) and HTTP (/healthz, /metrics, /api/v1, /mcp); RTP uses
# media.rtp_ports (publish the range you set, see docker-compose.yml).
EXPOSE 5060/udp 5060/tcp 8080/tcp
ENTRYPOINT ["dialtone", "--config", "/etc/dialtone/dialtone.toml"]
CMD ["run"]
