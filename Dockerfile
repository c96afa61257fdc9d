# syntax=docker/dockerfile:1
# A small `cobble` image in two stages: build with the Rust toolchain, run on Debian slim as
# a non-root user. Used by docker-compose.yml (the staging topology); see README "Staging".
#   docker build -t cobble:staging .

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p cobble \
 && strip target/release/cobble \
 && cp target/release/cobble /usr/local/bin/cobble

FROM debian:bookworm-slim
# curl for the health check, openssl for `cobble-staging cert` (the balancer's certificate).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl openssl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 cobble \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/cobble --create-home cobble
COPY --from=build /usr/local/bin/cobble /usr/local/bin/cobble
COPY scripts/staging /usr/local/bin/cobble-staging
USER cobble
WORKDIR /var/lib/cobble
ENV COBBLE_DATA_DIR=/var/lib/cobble \
    COBBLE_LISTEN=0.0.0.0:14000 \
    COBBLE_ADMIN_LISTEN=0.0.0.0:15000
EXPOSE 14000 15000
# /health on the management listener: the process is up (see README "The management listener").
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=5 \
  CMD curl -fsS --max-time 2 --cacert "$COBBLE_DATA_DIR/tls/ca.pem" https://localhost:15000/health || exit 1
ENTRYPOINT ["cobble"]
CMD ["serve"]
