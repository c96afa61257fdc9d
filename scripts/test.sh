#!/usr/bin/env bash
# Runs every Cobble test on SQLite and on a real PostgreSQL (see scripts/with-postgres.sh
# for where the PostgreSQL comes from), with Debian's certbot, lego, Ruby acme-client gem and
# acme Python library for the real-client tests; then instant-acme's Pebble suite against the
# Pebble drop-in, then the client matrix (conformance/clients/run).
# Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[test.sh] %s\n' "$*" >&2; }

# Real ACME client programs and libraries the tests drive, and Pebble (Debian package names).
missing=()
for client in certbot lego curl; do
  command -v "$client" >/dev/null 2>&1 || missing+=("$client")
done
# Debian's Pebble 2.4 (pebble and pebble-challtestsrv): the conformance suite's fairness run
# and the drop-in comparisons run against it side by side.
command -v pebble >/dev/null 2>&1 && command -v pebble-challtestsrv >/dev/null 2>&1 || missing+=(pebble)
# The Ruby acme-client gem and the acme Python library have no command: check that they load.
ruby -e 'require "acme-client"' >/dev/null 2>&1 || missing+=(ruby-acme-client)
/usr/bin/python3 -c 'import acme' >/dev/null 2>&1 || missing+=(python3-acme)
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

# A current certbot from PyPI beside Debian's 2.1, whose error path loses the server's problem
# text ("AttributeError: can't set attribute"): the operator tests assert on what certbot prints.
venv="${COBBLE_CERTBOT_VENV:-target/certbot-venv}"
if [ -z "${COBBLE_TEST_NO_CLIENTS:-}" ] && [ ! -x "$venv/bin/certbot" ]; then
  log "installing a current certbot from PyPI into $venv"
  python3 -m venv "$venv" && "$venv/bin/pip" install -q certbot >/dev/null \
    || log "could not install certbot from PyPI: the operator tests fall back to Debian's"
fi
if [ -x "$venv/bin/certbot" ]; then
  COBBLE_TEST_CERTBOT="$(cd "$venv/bin" && pwd)/certbot"
  export COBBLE_TEST_CERTBOT
fi

# What a run needs on disk: about 8 GB for target/ and 1-2 GB for the throwaway PostgreSQL
# (tests drop the databases of ended test binaries: cobble_store::testdb). A full disk shows
# up as PostgreSQL's "No space left on device" in whichever test runs at that moment.
avail_kb=$(df -Pk . | awk 'NR==2 {print $4}')
log "disk: $((avail_kb / 1024 / 1024)) GB free here"
[ "$avail_kb" -ge $((10 * 1024 * 1024)) ] || log "less than 10 GB free: the run may fail for want of disk"

scripts/with-postgres.sh cargo test --workspace --locked "$@"

# The Pebble drop-in under instant-acme's own Pebble suite, then the client matrix against
# Cobble (conformance/clients/). One after the other: the suite numbers its listeners from a
# fixed port (5555) up and binds its challenge servers on the wildcard address; in one CI run
# with the matrix running beside it, some of those ports were taken ("Address already in
# use", then a TLS handshake answered in plain text), and alone it has not failed so.
if [ -z "${COBBLE_TEST_NO_CLIENTS:-}" ]; then
  status=0
  scripts/instant-acme-pebble target/debug/cobble || status=1
  conformance/clients/run --cobble target/debug/cobble >target/client-matrix.txt 2>&1 \
    || { status=1; log "client matrix failed"; }
  cat target/client-matrix.txt >&2
  exit $status
fi
