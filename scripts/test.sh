#!/usr/bin/env bash
# Runs every Cobble test on SQLite and on a real PostgreSQL (see scripts/with-postgres.sh
# for where the PostgreSQL comes from), with Debian's certbot, lego and Ruby acme-client gem for
# the real-client tests.
# Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[test.sh] %s\n' "$*" >&2; }

# Real ACME client programs and libraries the tests drive (Debian package names).
missing=()
for client in certbot lego curl; do
  command -v "$client" >/dev/null 2>&1 || missing+=("$client")
done
# The Ruby acme-client gem has no command: check that Ruby loads it.
ruby -e 'require "acme-client"' >/dev/null 2>&1 || missing+=(ruby-acme-client)
if [ -z "${COBBLE_TEST_NO_CLIENTS:-}" ] && [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    log "installing Debian's ${missing[*]} for the real-client tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; }
  else
    log "${missing[*]} missing and not root: install them or set COBBLE_TEST_NO_CLIENTS=1"
  fi
fi

# The staging tests (crates/cobble/tests/staging.rs): HAProxy as the balancer, openssl for
# its certificate, and Debian's docker-compose to validate docker-compose.yml (without
# docker.io, which it only recommends: no container is run).
staging_missing=()
for tool in haproxy openssl docker-compose; do
  command -v "$tool" >/dev/null 2>&1 || staging_missing+=("$tool")
done
if [ ${#staging_missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    log "installing Debian's ${staging_missing[*]} for the staging tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "${staging_missing[@]}" >/dev/null 2>&1 \
      || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${staging_missing[@]}" >/dev/null; }
  else
    log "${staging_missing[*]} missing and not root: install them for the staging tests"
  fi
fi

exec scripts/with-postgres.sh cargo test --workspace --locked "$@"
